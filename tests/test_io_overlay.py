"""Overlays: shape, colours inside labels, untouched grey background, legend, writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from angioseg.io import (
    OVERLAY_COLOURS,
    overlay_colour,
    read_video,
    render_overlay,
    write_overlay_png,
    write_overlay_video,
)
from angioseg.types import DEFAULT_LABELS, Video


def _scene(size: int = 128) -> tuple[Video, np.ndarray]:
    frames = np.full((2, size, size), 0.5, dtype=np.float32)
    labels = np.zeros((2, size, size), dtype=np.uint8)
    labels[:, size // 2 : size // 2 + 10, size // 4 : 3 * size // 4] = 1  # vessel band
    labels[:, size - 20 : size - 10, size - 20 : size - 10] = 2  # catheter block
    labels[1, 2:6, size - 8 : size - 2] = 2  # frame 1 differs from frame 0
    return Video(frames=frames, fps=10.0), labels


def test_overlay_colours_cycle() -> None:
    assert overlay_colour(1) == OVERLAY_COLOURS[1]
    assert overlay_colour(len(OVERLAY_COLOURS) + 1) == OVERLAY_COLOURS[1]
    red, green, blue = OVERLAY_COLOURS[1]
    assert red > green and red > blue  # vessel is red-ish


@pytest.mark.parametrize("size", [128, 1024])
def test_render_overlay(size: int) -> None:
    video, labels = _scene(size)
    rgb = render_overlay(video, labels, DEFAULT_LABELS)
    assert rgb.shape == (2, size, size, 3) and rgb.dtype == np.uint8
    inside = rgb[0, size // 2 + 5, size // 2]  # interior vessel pixel
    assert inside[0] > inside[1] + 40 and inside[0] > inside[2] + 40
    background = rgb[:, size - 5, 5]  # far from legend and labels
    assert np.all(background == 128)
    edge = rgb[0, size // 2, size // 2]  # outline pixel in full colour
    assert tuple(edge) == OVERLAY_COLOURS[1]
    legend = rgb[0, : size // 8, : size // 4]
    assert (legend != 128).any()  # the legend box is drawn


def test_legend_can_be_turned_off() -> None:
    video, labels = _scene()
    rgb = render_overlay(video, labels, DEFAULT_LABELS, legend=False)
    assert np.all(rgb[:, :10, :10] == 128)


def test_write_overlay_png_and_video(tmp_path: Path) -> None:
    video, labels = _scene(64)
    png = write_overlay_png(video, labels, DEFAULT_LABELS, tmp_path / "frame.png", frame=1)
    with Image.open(png) as image:
        assert image.size == (64, 64) and image.mode == "RGB"
    out = write_overlay_video(video, labels, DEFAULT_LABELS, tmp_path / "overlay.mp4")
    assert out.exists()
    if out.suffix == ".mp4":
        back = read_video(out)
        assert back.shape == (2, 64, 64) and back.fps == pytest.approx(10.0)
    gif = write_overlay_video(video, labels, DEFAULT_LABELS, tmp_path / "overlay.gif", fps=4)
    with Image.open(gif) as image:
        assert image.n_frames == 2


def test_gif_fallback_without_encoders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import angioseg.io.overlay as overlay

    monkeypatch.setattr(overlay, "has_encoder", lambda name: False)
    video, labels = _scene(32)
    out = write_overlay_video(video, labels, DEFAULT_LABELS, tmp_path / "overlay.mp4")
    assert out == tmp_path / "overlay.gif" and out.exists()
    assert not (tmp_path / "overlay.mp4").exists()
