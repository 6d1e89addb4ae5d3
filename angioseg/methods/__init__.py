"""Segmentation methods behind one interface: `get(name, **options).segment(video)`."""

from angioseg.methods.base import Segmentation, Segmenter, available, get, get_from_spec, parse_method_spec, register, temporal_filter

__all__ = ["Segmentation", "Segmenter", "available", "get", "get_from_spec", "parse_method_spec", "register", "temporal_filter"]
