"""Images: natural sort, folders, bit depths, colour -> luminance, multi-page TIFF, PNG writer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from angioseg.errors import InputError
from angioseg.io import (
    list_image_files,
    natural_sort_key,
    read_image,
    read_image_folder,
    read_video,
    write_frame_pngs,
)
from angioseg.types import Video


def test_natural_sort_numbers_as_integers() -> None:
    names = ["f10.png", "f2.png", "f1.png", "f100.png", "f20.png"]
    assert sorted(names, key=natural_sort_key) == ["f1.png", "f2.png", "f10.png", "f20.png", "f100.png"]


def test_natural_sort_mixed_case_and_no_digits() -> None:
    names = ["B.png", "a10.png", "A2.png", "c.png", "a.png", "frame.png"]
    assert sorted(names, key=natural_sort_key) == ["a.png", "A2.png", "a10.png", "B.png", "c.png", "frame.png"]


def test_natural_sort_is_total_on_awkward_names() -> None:
    names = ["a1x", "a1x2", "a01", "A1", "1", "", "x2y3", "x2y"]
    ordered = sorted(names, key=natural_sort_key)  # must not raise on mixed str/int parts
    assert ordered.index("a1x") < ordered.index("a1x2") and ordered[0] == ""


def _write(path: Path, pixels: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), pixels)
    return path


def test_folder_is_read_in_natural_order(tmp_path: Path) -> None:
    for index in (1, 2, 10, 11):
        _write(tmp_path / f"frame{index}.png", np.full((6, 7), index * 10, dtype=np.uint8))
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in list_image_files(tmp_path)] == ["frame1.png", "frame2.png", "frame10.png", "frame11.png"]
    video = read_video(tmp_path)
    assert video.shape == (4, 6, 7)
    np.testing.assert_allclose(video.frames[:, 0, 0], np.array([10, 20, 100, 110]) / 255.0, atol=1e-6)
    assert video.metadata["source_kind"] == "images" and video.metadata["source_name"] == tmp_path.name


def test_sixteen_bit_png(tmp_path: Path) -> None:
    raw = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    path = _write(tmp_path / "deep.png", raw)
    np.testing.assert_allclose(read_image(path), raw / 65535.0, atol=1e-7)
    video = read_video(path)
    assert video.shape == (1, 2, 2) and video.metadata["bit_depth"] == 16


def test_rgb_to_luminance_hand_computed(tmp_path: Path) -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    path = _write(tmp_path / "colour.png", rgb[..., ::-1])  # OpenCV writes BGR
    expected = np.array([[0.299, 0.587], [0.114, (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255.0]])
    np.testing.assert_allclose(read_image(path), expected, atol=1e-6)
    rgba = np.dstack([rgb[..., ::-1], np.full((2, 2), 7, np.uint8)])
    np.testing.assert_allclose(read_image(_write(tmp_path / "alpha.png", rgba)), expected, atol=1e-6)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp", ".tif"])
def test_other_formats_by_content(tmp_path: Path, suffix: str) -> None:
    pixels = np.tile(np.arange(0, 240, 15, dtype=np.uint8), (16, 1))
    path = _write(tmp_path / f"img{suffix}", pixels)
    renamed = path.rename(tmp_path / "no_suffix.data")  # detection is by content, not suffix
    video = read_video(renamed)
    assert video.shape == (1, 16, 16)
    assert np.abs(video.frames[0] - pixels / 255.0).max() < 0.05


def test_multipage_tiff_is_many_frames(tmp_path: Path) -> None:
    pages = [np.full((5, 6), value, dtype=np.uint8) for value in (0, 100, 200)]
    path = tmp_path / "stack.tiff"
    assert cv2.imwritemulti(str(path), pages)
    video = read_video(path)
    assert video.shape == (3, 5, 6)
    np.testing.assert_allclose(video.frames[:, 0, 0], [0.0, 100 / 255, 200 / 255], atol=1e-6)


def test_float_tiff_is_clipped(tmp_path: Path) -> None:
    path = _write(tmp_path / "float.tif", np.array([[-0.5, 0.25], [0.75, 3.0]], dtype=np.float32))
    np.testing.assert_allclose(read_image(path), [[0.0, 0.25], [0.75, 1.0]], atol=1e-7)


@pytest.mark.parametrize("bits", [8, 16])
def test_write_frame_pngs_round_trip(tmp_path: Path, bits: int) -> None:
    video = Video(frames=np.random.default_rng(1).random((3, 4, 5)).astype(np.float32))
    folder = write_frame_pngs(video, tmp_path / "frames", bits=bits)
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00001.png", "00002.png"]
    back = read_image_folder(folder)
    assert np.abs(back.frames - video.frames).max() <= 0.5 / ((1 << bits) - 1) + 1e-6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_write_frame_pngs_rejects_bad_bits(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        write_frame_pngs(Video(frames=np.zeros((1, 2, 2), np.float32)), tmp_path / "x", bits=12)
