"""Bad-input corpus: every case must raise InputError with a one-line message naming the input."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from angioseg.errors import InputError
from angioseg.io import describe, read_video, write_dicom, write_video_file
from angioseg.types import Video


def _dicom_bytes(tmp_path: Path) -> bytes:
    video = Video(frames=np.random.default_rng(0).random((3, 32, 32)).astype(np.float32), fps=10.0)
    return write_dicom(video, tmp_path / "good.dcm", bits_stored=16).read_bytes()


def _png_bytes(height: int = 32, width: int = 32) -> bytes:
    noise = np.random.default_rng(1).integers(0, 255, (height, width), dtype=np.uint8)
    ok, encoded = cv2.imencode(".png", noise)
    assert ok
    return encoded.tobytes()


def missing(tmp_path: Path) -> Path:
    return tmp_path / "does_not_exist.mp4"


def empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    return path


def random_bytes_dcm(tmp_path: Path) -> Path:
    path = tmp_path / "random.dcm"
    path.write_bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def random_bytes_no_suffix(tmp_path: Path) -> Path:
    path = tmp_path / "mystery"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    return path


def truncated_dicom(tmp_path: Path) -> Path:
    data = _dicom_bytes(tmp_path)
    path = tmp_path / "truncated.dcm"
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_dicom_header(tmp_path: Path) -> Path:
    path = tmp_path / "cut_header.dcm"
    path.write_bytes(_dicom_bytes(tmp_path)[:200])
    return path


def dicom_without_pixels(tmp_path: Path) -> Path:
    _dicom_bytes(tmp_path)
    ds = pydicom.dcmread(tmp_path / "good.dcm")
    del ds.PixelData
    path = tmp_path / "no_pixels.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_unknown_transfer_syntax(tmp_path: Path) -> Path:
    data = _dicom_bytes(tmp_path).replace(b"1.2.840.10008.1.2.1", b"1.2.840.10008.9.9.9", 1)
    path = tmp_path / "odd_syntax.dcm"
    path.write_bytes(data)
    return path


def truncated_png(tmp_path: Path) -> Path:
    data = _png_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    return path


def text_named_mp4(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("This is a text file, not a video.\n" * 20)
    return path


def truncated_mp4(tmp_path: Path) -> Path:
    frames = np.random.default_rng(4).integers(0, 255, (5, 32, 32), dtype=np.uint8)
    write_video_file(frames, tmp_path / "full.mp4", fps=5)
    data = (tmp_path / "full.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:64])
    return path


def folder_without_images(tmp_path: Path) -> Path:
    folder = tmp_path / "no_images"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")
    return folder


def folder_of_mixed_sizes(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "f1.png").write_bytes(_png_bytes(32, 32))
    (folder / "f2.png").write_bytes(_png_bytes(32, 40))
    return folder


def npy_with_nan(tmp_path: Path) -> Path:
    path = tmp_path / "nan.npy"
    np.save(path, np.array([[[0.1, np.nan]]], dtype=np.float32))
    return path


def npz_without_arrays(tmp_path: Path) -> Path:
    path = tmp_path / "nothing.npz"
    np.savez(path)
    return path


def npy_wrong_4d_shape(tmp_path: Path) -> Path:
    path = tmp_path / "wrong.npy"
    np.save(path, np.zeros((2, 4, 4, 5), dtype=np.uint8))
    return path


def npy_truncated(tmp_path: Path) -> Path:
    np.save(tmp_path / "full.npy", np.zeros((4, 16, 16), dtype=np.float32))
    path = tmp_path / "cut.npy"
    path.write_bytes((tmp_path / "full.npy").read_bytes()[:300])
    return path


def zip_that_is_not_npz(tmp_path: Path) -> Path:
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hello")
    return path


def complex_npy(tmp_path: Path) -> Path:
    path = tmp_path / "complex.npy"
    np.save(path, np.zeros((1, 2, 2), dtype=np.complex64))
    return path


CASES: list[Callable[[Path], Path]] = [
    missing,
    empty_file,
    random_bytes_dcm,
    random_bytes_no_suffix,
    truncated_dicom,
    truncated_dicom_header,
    dicom_without_pixels,
    dicom_unknown_transfer_syntax,
    truncated_png,
    text_named_mp4,
    truncated_mp4,
    folder_without_images,
    folder_of_mixed_sizes,
    npy_with_nan,
    npz_without_arrays,
    npy_wrong_4d_shape,
    npy_truncated,
    zip_that_is_not_npz,
    complex_npy,
]


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_bad_input_raises_one_line_input_error(
    tmp_path: Path,
    make: Callable[[Path], Path],
    capfd: pytest.CaptureFixture[str],
    recwarn: pytest.WarningsRecorder,
) -> None:
    path = make(tmp_path)
    capfd.readouterr()
    recwarn.clear()
    with pytest.raises(InputError) as info:
        read_video(path)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    assert path.name in message
    assert capfd.readouterr().err == "" and len(recwarn) == 0  # the one line is all a user sees


def test_describe_reports_bad_input_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        describe(empty_file(tmp_path))


def test_specific_messages(tmp_path: Path) -> None:
    expectations = {
        missing: "does not exist",
        empty_file: "empty",
        truncated_dicom: "truncated",
        dicom_without_pixels: "without pixel data",
        dicom_unknown_transfer_syntax: "unknown transfer syntax",
        truncated_png: "truncated",
        folder_without_images: "no images",
        folder_of_mixed_sizes: "mixed sizes",
        npy_with_nan: "NaN",
        npz_without_arrays: "no arrays",
    }
    for make, phrase in expectations.items():
        with pytest.raises(InputError, match=phrase):
            read_video(make(tmp_path))
