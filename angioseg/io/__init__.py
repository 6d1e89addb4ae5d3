"""Readers and writers: DICOM, video files, images, NumPy arrays, label masks and overlays.

`read_video` is the single entry point for inputs; it recognises the format by content.
This package imports only numpy, scipy, OpenCV, pydicom, PyAV, Pillow and `angioseg.types` /
`angioseg.errors`.
"""

from angioseg.io.arrays import read_array, write_video_npz
from angioseg.io.atomic import atomic_directory, atomic_file
from angioseg.io.detect import describe, read_video
from angioseg.io.dicom import read_dicom, read_dicom_folder, write_dicom
from angioseg.io.images import (
    list_image_files,
    natural_sort_key,
    read_image,
    read_image_file,
    read_image_folder,
    write_frame_pngs,
)
from angioseg.io.labels import (
    read_label_image,
    read_label_pngs,
    read_labels_npz,
    read_probabilities_npz,
    write_label_pngs,
    write_labels_npz,
    write_probabilities_npz,
)
from angioseg.io.overlay import render_overlay, write_overlay_png, write_overlay_video
from angioseg.io.palette import DAVIS_PALETTE, OVERLAY_COLOURS, overlay_colour
from angioseg.io.video_file import has_encoder, read_video_file, write_video_file

__all__ = [
    "DAVIS_PALETTE",
    "OVERLAY_COLOURS",
    "atomic_directory",
    "atomic_file",
    "describe",
    "has_encoder",
    "list_image_files",
    "natural_sort_key",
    "overlay_colour",
    "read_array",
    "read_dicom",
    "read_dicom_folder",
    "read_image",
    "read_image_file",
    "read_image_folder",
    "read_label_image",
    "read_label_pngs",
    "read_labels_npz",
    "read_probabilities_npz",
    "read_video",
    "read_video_file",
    "render_overlay",
    "write_dicom",
    "write_frame_pngs",
    "write_label_pngs",
    "write_labels_npz",
    "write_overlay_png",
    "write_overlay_video",
    "write_probabilities_npz",
    "write_video_file",
    "write_video_npz",
]
