"""Optical flow between the frames of a run (backends: OpenCV DIS; RAFT comes later)."""

from angioseg.flow.dis import dis_flow, estimate_flows, sample_along

__all__ = ["dis_flow", "estimate_flows", "sample_along"]
