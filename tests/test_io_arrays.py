"""NumPy inputs: npy / npz variants, dtype scaling, colour, fps, write -> read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from angioseg.errors import InputError
from angioseg.io import describe, read_array, read_video, write_video_npz
from angioseg.types import Video


def test_npy_uint8_stack(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    np.save(tmp_path / "a.npy", data)
    video = read_video(tmp_path / "a.npy")
    np.testing.assert_allclose(video.frames, data / 255.0, atol=1e-6)
    assert video.metadata == {"bit_depth": 8, "source_kind": "array", "source_name": "a.npy"}


def test_npy_single_frame_uint16_and_bool(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.array([[0, 65535], [32768, 1]], dtype=np.uint16))
    video = read_video(tmp_path / "w.npy")
    assert video.shape == (1, 2, 2) and video.metadata["bit_depth"] == 16
    assert video.frames[0, 0, 1] == 1.0
    np.save(tmp_path / "b.npy", np.array([[True, False]]))
    np.testing.assert_array_equal(read_video(tmp_path / "b.npy").frames, [[[1.0, 0.0]]])


def test_float_in_range_kept_and_out_of_range_rescaled(tmp_path: Path) -> None:
    inside = np.array([[[0.1, 0.9]]], dtype=np.float32)
    np.save(tmp_path / "in.npy", inside)
    video = read_video(tmp_path / "in.npy")
    np.testing.assert_allclose(video.frames, inside)
    assert "rescaled" not in video.metadata
    np.save(tmp_path / "out.npy", np.array([[[-100.0, 0.0, 300.0]]]))
    video = read_video(tmp_path / "out.npy")
    np.testing.assert_allclose(video.frames, [[[0.0, 0.25, 1.0]]], atol=1e-6)
    assert video.metadata["rescaled"] is True


@pytest.mark.parametrize("channels", [3, 4])
def test_rgb_stack_becomes_luminance(tmp_path: Path, channels: int) -> None:
    data = np.zeros((1, 1, 2, channels), dtype=np.uint8)
    data[0, 0, 0, :3] = (255, 255, 0)
    data[0, 0, 1, :3] = (0, 0, 255)
    np.save(tmp_path / "c.npy", data)
    np.testing.assert_allclose(read_video(tmp_path / "c.npy").frames[0, 0], [0.299 + 0.587, 0.114], atol=1e-6)


@pytest.mark.parametrize("key", ["frames", "video", "anything"])
def test_npz_keys_and_fps(tmp_path: Path, key: str) -> None:
    data = np.full((3, 4, 5), 0.5, dtype=np.float32)
    np.savez(tmp_path / "v.npz", **{key: data, "fps": np.float64(12.0)})
    video = read_video(tmp_path / "v.npz")
    assert video.shape == (3, 4, 5) and video.fps == 12.0


def test_npz_prefers_frames_key_and_rejects_ambiguity(tmp_path: Path) -> None:
    np.savez(tmp_path / "two.npz", frames=np.zeros((1, 2, 2)), other=np.ones((1, 2, 2)))
    assert read_array(tmp_path / "two.npz").frames.max() == 0.0
    np.savez(tmp_path / "amb.npz", a=np.zeros((1, 2, 2)), b=np.ones((1, 2, 2)))
    with pytest.raises(InputError, match="amb.npz"):
        read_video(tmp_path / "amb.npz")


def test_write_video_npz_round_trip(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    video = Video(frames=frames, fps=7.5, pixel_spacing=(0.1, 0.2))
    write_video_npz(video, tmp_path / "out.npz")
    back = read_video(tmp_path / "out.npz")
    np.testing.assert_array_equal(back.frames, video.frames)
    assert back.fps == 7.5 and back.pixel_spacing == (0.1, 0.2)
    info = describe(tmp_path / "out.npz")
    assert (info["frames"], info["height"], info["width"], info["fps"]) == (2, 3, 4, 7.5)
    assert info["source_kind"] == "array" and info["bit_depth"] == 32


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="obj.npy"):
        read_video(tmp_path / "obj.npy")
