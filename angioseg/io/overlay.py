"""Colour overlays of label masks on grey angiography frames, for viewing and README pictures."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.io.palette import overlay_colour
from angioseg.io.video_file import has_encoder, write_video_file
from angioseg.types import Video

#: Frame rate used when neither the caller nor the video gives one.
DEFAULT_FPS = 15.0
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LEGEND_SHADE = 0.6  # opacity of the dark box behind the legend
_CROSS = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], dtype=bool)  # (1, 3, 3): no erosion in time


def _check_shapes(video: Video, labels: np.ndarray) -> np.ndarray:
    """Labels as an integer `(T, H, W)` array matching the video."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.shape != video.frames.shape:
        raise InputError(f"labels of shape {labels.shape} do not match the video's {video.frames.shape} (T, H, W)")
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be integers; got {labels.dtype}")
    return labels


def _legend_entries(labels: np.ndarray, label_table: Mapping[int, str]) -> list[tuple[int, str]]:
    """(id, name) for every non-background id in the table, plus unnamed ids present."""
    names = {int(k): str(v) for k, v in label_table.items() if int(k) != 0}
    for label in np.unique(labels).tolist():
        if label != 0:
            names.setdefault(int(label), f"label {label}")
    return sorted(names.items())


def _blend_labels(rgb: np.ndarray, labels: np.ndarray, ids: list[int], alpha: float) -> None:
    """In place on float `(T, H, W, 3)`: out = (1 - alpha) * grey + alpha * colour inside each
    label, and full colour on its 1-pixel outline (mask minus its 4-connected erosion)."""
    for label in ids:
        mask = labels == label
        if not mask.any():
            continue
        colour = np.asarray(overlay_colour(label), dtype=np.float32)
        rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * colour
        edge = mask & ~ndimage.binary_erosion(mask, structure=_CROSS, border_value=1)
        rgb[edge] = colour


def _legend_layout(height: int, width: int) -> tuple[float, int, int]:
    """(font scale, thickness, padding) scaled to the frame size (readable at 128 and 1024 px)."""
    scale = max(0.35, min(height, width) / 800.0)
    thickness = max(1, int(round(scale * 1.5)))
    padding = max(2, int(round(6 * scale)))
    return scale, thickness, padding


def legend_layers(height: int, width: int, entries: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Legend box for the top-left corner: (ink colour `(h, w, 3)` float in 0..255, ink alpha
    `(h, w)` float in [0, 1]); the box size h, w is clipped to the frame size."""
    scale, thickness, pad = _legend_layout(height, width)
    sizes = [cv2.getTextSize(name, _FONT, scale, thickness) for _, name in entries]
    text_h = max(size[0][1] for size in sizes)
    line_h = text_h + max(size[1] for size in sizes) + pad
    box_h = pad + line_h * len(entries)
    box_w = 3 * pad + text_h + max(size[0][0] for size in sizes)
    colour = np.zeros((box_h, box_w, 3), dtype=np.uint8)
    swatches = np.zeros((box_h, box_w), dtype=np.uint8)
    text = np.zeros((box_h, box_w), dtype=np.uint8)
    for row, (label, name) in enumerate(entries):
        top = pad + row * line_h
        corners = (pad, top), (pad + text_h, top + text_h)
        cv2.rectangle(colour, *corners, overlay_colour(label), thickness=-1)
        cv2.rectangle(swatches, *corners, 255, thickness=-1)
        cv2.putText(text, name, (2 * pad + text_h, top + text_h), _FONT, scale, 255, thickness, cv2.LINE_AA)
    colour[text > 0] = 255  # names in white
    ink = np.maximum(swatches, text)
    h, w = min(box_h, height), min(box_w, width)
    return colour[:h, :w].astype(np.float32), ink[:h, :w].astype(np.float32) / 255.0


def _draw_legend(rgb: np.ndarray, entries: list[tuple[int, str]]) -> None:
    """In place on float `(T, H, W, 3)`: darken the legend box, then paint the swatches and names."""
    if not entries:
        return
    colour, ink = legend_layers(rgb.shape[1], rgb.shape[2], entries)
    h, w = ink.shape
    region = rgb[:, :h, :w] * (1.0 - _LEGEND_SHADE)
    rgb[:, :h, :w] = region * (1.0 - ink[..., None]) + colour * ink[..., None]


def render_overlay(
    video: Video,
    labels: np.ndarray,
    label_table: Mapping[int, str],
    *,
    alpha: float = 0.45,
    legend: bool = True,
) -> np.ndarray:
    """Colour overlay of `labels` `(T, H, W)` on `video` frames `(T, H, W)`: `(T, H, W, 3)` uint8.

    Grey g = 255 x becomes (g, g, g); pixels of label k become (1 - alpha) g + alpha c_k with
    c_k = `overlay_colour(k)`, and the 1-pixel outline of each region is c_k itself. With
    `legend`, a box in the top-left corner shows a swatch and the name of every non-background
    label in `label_table`.
    """
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"overlay alpha must lie in [0, 1]; got {alpha}")
    labels = _check_shapes(video, labels)
    entries = _legend_entries(labels, label_table)
    rgb = np.repeat(video.frames[..., None] * np.float32(255.0), 3, axis=-1)
    _blend_labels(rgb, labels, [label for label, _ in entries], alpha)
    if legend:
        _draw_legend(rgb, entries)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def write_gif(frames: np.ndarray, path: str | os.PathLike[str], *, fps: float) -> Path:
    """Write `(T, H, W, 3)` uint8 frames as a looping animated GIF (PIL). Atomic."""
    path = Path(path)
    images = [Image.fromarray(np.ascontiguousarray(frame)) for frame in frames]
    with atomic_file(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(round(1000.0 / fps)), loop=0
        )
    return path


def write_overlay_video(
    video: Video,
    labels: np.ndarray,
    label_table: Mapping[int, str],
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    alpha: float = 0.45,
    legend: bool = True,
) -> Path:
    """Render the overlay (see `render_overlay`) and encode it with `write_video_file`.

    fps defaults to the video's, else 15. Fallback: when this FFmpeg build has neither the
    libx264 nor the mpeg4 encoder (or `path` ends in .gif), an animated GIF is written beside
    the requested name with the suffix .gif. Returns the path actually written.
    """
    path = Path(path)
    rate = float(fps or video.fps or DEFAULT_FPS)
    frames = render_overlay(video, labels, label_table, alpha=alpha, legend=legend)
    if path.suffix.lower() != ".gif" and (has_encoder("libx264") or has_encoder("mpeg4")):
        write_video_file(frames, path, fps=rate)
        return path
    return write_gif(frames, path.with_suffix(".gif"), fps=rate)


def write_overlay_png(
    video: Video,
    labels: np.ndarray,
    label_table: Mapping[int, str],
    path: str | os.PathLike[str],
    *,
    frame: int = 0,
    alpha: float = 0.45,
    legend: bool = True,
) -> Path:
    """Render frame `frame` of the overlay as an RGB PNG `(H, W, 3)`. Atomic."""
    path = Path(path)
    labels = _check_shapes(video, labels)
    if not -video.num_frames <= frame < video.num_frames:
        raise InputError(f"frame {frame} is out of range for a video of {video.num_frames} frames")
    index = frame % video.num_frames
    single = Video(frames=video.frames[index : index + 1], fps=video.fps, pixel_spacing=video.pixel_spacing)
    rgb = render_overlay(single, labels[index : index + 1], label_table, alpha=alpha, legend=legend)[0]
    with atomic_file(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path
