"""Video files through PyAV: write -> read round trips, codec choice, odd sizes, fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from angioseg.errors import InputError
from angioseg.io import has_encoder, read_video, write_video_file


def _moving_gradient(frames: int = 12, height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth uint8 test clip `(T, H, W)` (compresses well, so errors stay small)."""
    y, x = np.mgrid[0:height, 0:width]
    clip = [(128 + 90 * np.sin((x + 3 * t) / 9.0) * np.cos(y / 11.0)) for t in range(frames)]
    return np.clip(np.stack(clip), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("suffix", "expected"), [(".mp4", ("libx264", "mpeg4")), (".avi", ("mpeg4", "mjpeg"))])
def test_write_read_round_trip(tmp_path: Path, suffix: str, expected: tuple[str, ...]) -> None:
    clip = _moving_gradient()
    codec = write_video_file(clip, tmp_path / f"clip{suffix}", fps=15)
    assert codec in expected
    video = read_video(tmp_path / f"clip{suffix}")
    assert video.shape == clip.shape
    assert video.fps == pytest.approx(15.0)
    assert np.abs(video.frames - clip / 255.0).mean() < 0.03
    assert video.metadata["source_kind"] == "video" and video.metadata["bit_depth"] == 8
    assert video.metadata["codec"] and video.metadata["source_name"] == f"clip{suffix}"


def test_wmv_when_encoder_exists(tmp_path: Path) -> None:
    if not has_encoder("wmv2"):
        pytest.skip("this FFmpeg build has no wmv2 encoder")
    clip = _moving_gradient(frames=6)
    assert write_video_file(clip, tmp_path / "clip.wmv", fps=10) == "wmv2"
    video = read_video(tmp_path / "clip.wmv")
    assert video.shape == clip.shape and video.fps == pytest.approx(10.0)
    assert np.abs(video.frames - clip / 255.0).mean() < 0.05


def test_rgb_frames_and_detection_by_content(tmp_path: Path) -> None:
    grey = _moving_gradient(frames=5)
    rgb = np.stack([grey, grey, grey], axis=-1)
    write_video_file(rgb, tmp_path / "colour.mkv", fps=8)
    renamed = (tmp_path / "colour.mkv").rename(tmp_path / "colour.bin")
    video = read_video(renamed)
    assert video.shape == grey.shape and video.fps == pytest.approx(8.0)
    assert np.abs(video.frames - grey / 255.0).mean() < 0.03


def test_odd_sizes_are_padded_by_one(tmp_path: Path) -> None:
    clip = _moving_gradient(frames=4, height=31, width=45)
    write_video_file(clip, tmp_path / "odd.mp4", fps=5)
    video = read_video(tmp_path / "odd.mp4")
    assert video.shape == (4, 32, 46)
    assert np.abs(video.frames[:, :31, :45] - clip / 255.0).mean() < 0.03


def test_explicit_codec_and_bad_requests(tmp_path: Path) -> None:
    clip = _moving_gradient(frames=3)
    assert write_video_file(clip, tmp_path / "m.avi", fps=5, codec="mjpeg") == "mjpeg"
    with pytest.raises(InputError):
        write_video_file(clip, tmp_path / "x.mp4", fps=5, codec="no-such-codec")
    with pytest.raises(InputError):
        write_video_file(clip, tmp_path / "x.xyz", fps=5)
    with pytest.raises(InputError):
        write_video_file(clip.astype(np.int32), tmp_path / "x.mp4", fps=5)
    with pytest.raises(InputError):
        write_video_file(clip, tmp_path / "x.mp4", fps=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.avi"]  # nothing half-written


def test_deep_pixel_format_keeps_sixteen_bits(tmp_path: Path) -> None:
    if not has_encoder("ffv1"):
        pytest.skip("this FFmpeg build has no ffv1 encoder")
    import av

    raw = np.linspace(0, 65535, 3 * 16 * 16).reshape(3, 16, 16).astype(np.uint16)
    with av.open(str(tmp_path / "deep.mkv"), mode="w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "gray16le"
        for image in raw:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="gray16le")))
        container.mux(stream.encode(None))
    video = read_video(tmp_path / "deep.mkv")
    assert video.metadata["bit_depth"] == 16
    assert np.abs(video.frames - raw / 65535.0).max() < 1e-4
