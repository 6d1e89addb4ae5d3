"""DICOM reading (hand-built datasets) and the write -> read round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from angioseg.errors import InputError
from angioseg.io import read_dicom, read_video, write_dicom
from angioseg.types import Video

XA = pydicom.uid.XRayAngiographicImageStorage


def make_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    signed: bool = False,
    syntax: UID = ExplicitVRLittleEndian,
    preamble: bool = True,
    **attrs: object,
) -> Path:
    """Write a minimal DICOM file by hand; `pixels` is (H, W), (T, H, W) or (..., 3) RGB."""
    pixels = np.asarray(pixels)
    colour = photometric == "RGB"
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else 1
    rows, cols = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    allocated = pixels.dtype.itemsize * 8
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XA
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = XA, meta.MediaStorageSOPInstanceUID
    ds.Modality = "XA"
    ds.PatientName, ds.PatientID = "Doe^Jane", "12345"
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    if syntax.is_compressed:
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(range(60))] * frames)
    else:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    raw = np.array([[0, 64], [128, 255]], dtype=np.uint8)
    video = read_video(make_dicom(tmp_path / "m1.dcm", raw, photometric="MONOCHROME1"))
    np.testing.assert_allclose(video.frames[0], 1.0 - raw / 255.0, atol=1e-6)
    assert video.metadata["photometric"] == "MONOCHROME1"
    assert video.metadata["source_kind"] == "dicom" and video.metadata["bit_depth"] == 8


@pytest.mark.parametrize("bits", [16, 12])
def test_bits_stored_scaling(tmp_path: Path, bits: int) -> None:
    raw = np.array([[0, 1000], [2047, (1 << bits) - 1]], dtype=np.uint16)
    video = read_dicom(make_dicom(tmp_path / "w.dcm", raw, bits_stored=bits))
    np.testing.assert_allclose(video.frames[0], raw / float((1 << bits) - 1), atol=1e-6)
    assert video.metadata["bit_depth"] == bits


def test_signed_pixels_use_signed_range(tmp_path: Path) -> None:
    raw = np.array([[-2048, 0], [1000, 2047]], dtype=np.int16)
    video = read_dicom(make_dicom(tmp_path / "s.dcm", raw, bits_stored=12, signed=True))
    np.testing.assert_allclose(video.frames[0], (raw + 2048) / 4095.0, atol=1e-6)


def test_rescale_maps_the_rescaled_range_to_unit(tmp_path: Path) -> None:
    """v = slope * raw + intercept; the allowed raw range mapped the same way becomes [0, 1]."""
    raw = np.array([[0, 100], [200, 4095]], dtype=np.uint16)
    positive = read_dicom(make_dicom(tmp_path / "p.dcm", raw, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1024))
    # lo = -1024, hi = 2 * 4095 - 1024, so x = (2 raw - 1024 + 1024) / (2 * 4095) = raw / 4095
    np.testing.assert_allclose(positive.frames[0], raw / 4095.0, atol=1e-6)
    assert positive.metadata["rescale_slope"] == 2 and positive.metadata["rescale_intercept"] == -1024
    negative = read_dicom(make_dicom(tmp_path / "n.dcm", raw, bits_stored=12, RescaleSlope=-1, RescaleIntercept=4095))
    np.testing.assert_allclose(negative.frames[0], 1.0 - raw / 4095.0, atol=1e-6)


def test_rgb_dicom_becomes_luminance(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[1, 0] = (0, 0, 255)
    rgb[1, 1] = (100, 150, 200)
    video = read_dicom(make_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB"))
    expected = np.array([[0.299, 0.587], [0.114, (0.299 * 100 + 0.587 * 150 + 0.114 * 200) / 255]])
    np.testing.assert_allclose(video.frames[0], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("keyword", "value", "fps"),
    [
        ("FrameTime", "66.6666666666667", 15.0),
        ("FrameTimeVector", ["0", "40", "40", "40"], 25.0),
        ("CineRate", 30, 30.0),
        ("RecommendedDisplayFrameRate", 7, 7.0),
    ],
)
def test_fps_from_each_tag(tmp_path: Path, keyword: str, value: object, fps: float) -> None:
    pixels = np.zeros((4, 3, 3), dtype=np.uint8)
    video = read_dicom(make_dicom(tmp_path / "f.dcm", pixels, **{keyword: value}))
    assert video.fps == pytest.approx(fps, rel=1e-9)
    assert video.metadata["fps_source"] == keyword


def test_fps_priority_and_absence(tmp_path: Path) -> None:
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)
    both = read_dicom(make_dicom(tmp_path / "b.dcm", pixels, FrameTime="100", CineRate=30))
    assert both.fps == pytest.approx(10.0) and both.metadata["fps_source"] == "FrameTime"
    none = read_dicom(make_dicom(tmp_path / "n.dcm", pixels))
    assert none.fps is None and none.metadata["fps_source"] is None


def test_pixel_spacing_prefers_pixelspacing(tmp_path: Path) -> None:
    pixels = np.zeros((3, 3), dtype=np.uint8)
    imager = read_dicom(make_dicom(tmp_path / "i.dcm", pixels, ImagerPixelSpacing=["0.3", "0.25"]))
    assert imager.pixel_spacing == (0.3, 0.25)
    both = read_dicom(
        make_dicom(tmp_path / "b.dcm", pixels, ImagerPixelSpacing=["0.3", "0.3"], PixelSpacing=["0.2", "0.1"])
    )
    assert both.pixel_spacing == (0.2, 0.1)


def test_no_patient_data_in_metadata(tmp_path: Path) -> None:
    video = read_dicom(make_dicom(tmp_path / "p.dcm", np.zeros((3, 3), dtype=np.uint8)))
    text = repr(video.metadata)
    assert "Doe" not in text and "12345" not in text


def test_folder_sorted_by_instance_number(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    # names in reverse of the instance order, so name order alone would be wrong
    for instance, name in [(3, "a.dcm"), (1, "c.dcm"), (2, "b.dcm")]:
        make_dicom(folder / name, np.full((4, 5), instance * 50, dtype=np.uint8), InstanceNumber=instance)
    video = read_video(folder)
    assert video.shape == (3, 4, 5)
    np.testing.assert_allclose(video.frames[:, 0, 0], [50 / 255, 100 / 255, 150 / 255], atol=1e-6)
    assert video.metadata["source_kind"] == "dicom" and video.metadata["source_name"] == "series"


def test_preamble_less_dicom(tmp_path: Path) -> None:
    raw = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    path = make_dicom(tmp_path / "nopreamble", raw, preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    video = read_video(path)
    np.testing.assert_allclose(video.frames[0], raw / 255.0, atol=1e-6)


def test_compressed_syntax_without_decoder(tmp_path: Path) -> None:
    syntax = next(
        (
            UID(uid)
            for uid in (pydicom.uid.JPEGLSLossless, pydicom.uid.HTJ2KLossless, pydicom.uid.JPEGLosslessSV1)
            if not pydicom.pixels.get_decoder(UID(uid)).is_available
        ),
        None,
    )
    if syntax is None:
        pytest.skip("every candidate compressed syntax has a decoder installed")
    path = make_dicom(tmp_path / "jls.dcm", np.zeros((8, 8), dtype=np.uint8), syntax=syntax)
    with pytest.raises(InputError) as info:
        read_video(path)
    message = str(info.value)
    assert syntax.name in message and str(syntax) in message and "jls.dcm" in message
    assert "install" in message and "\n" not in message


@pytest.mark.parametrize("bits", [8, 12, 16])
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_write_read_round_trip(tmp_path: Path, bits: int, photometric: str) -> None:
    rng = np.random.default_rng(bits)
    video = Video(frames=rng.random((4, 9, 11)).astype(np.float32), fps=12.5, pixel_spacing=(0.2, 0.3))
    path = write_dicom(video, tmp_path / "run.dcm", bits_stored=bits, photometric=photometric)
    back = read_video(path)
    assert back.shape == video.shape
    assert np.abs(back.frames - video.frames).max() <= 1.0 / ((1 << bits) - 1)
    assert back.fps == pytest.approx(12.5) and back.pixel_spacing == (0.2, 0.3)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == XA and ds.BitsStored == bits and ds.PhotometricInterpretation == photometric
    assert ds.PatientName == "" and ds.PatientID == "" and "PatientName" in ds


@pytest.mark.parametrize("rescale", [(2.0, -1024.0), (0.5, 10.0), (-1.0, 4095.0)])
def test_write_with_rescale_round_trips(tmp_path: Path, rescale: tuple[float, float]) -> None:
    video = Video(frames=np.linspace(0, 1, 60, dtype=np.float32).reshape(1, 6, 10))
    path = write_dicom(video, tmp_path / "r.dcm", bits_stored=12, rescale=rescale)
    ds = pydicom.dcmread(path)
    assert float(ds.RescaleSlope) == rescale[0] and float(ds.RescaleIntercept) == rescale[1]
    q = np.round(video.frames * 4095)
    raw = ds.pixel_array.reshape(q.shape)
    np.testing.assert_array_equal(raw, q if rescale[0] > 0 else 4095 - q)  # raw = (v - c) / m with v = c + m q
    assert np.abs(read_video(path).frames - video.frames).max() <= 1.0 / 4095


@pytest.mark.parametrize("fps_tag", ["FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate"])
def test_writer_uses_only_the_chosen_fps_tag(tmp_path: Path, fps_tag: str) -> None:
    video = Video(frames=np.zeros((3, 4, 4), dtype=np.float32), fps=20.0)
    path = write_dicom(video, tmp_path / "c.dcm", fps_tag=fps_tag, modality="OT", bits_stored=16)
    ds = pydicom.dcmread(path)
    present = [k for k in ("FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate") if k in ds]
    assert present == [fps_tag]
    assert ds.SOPClassUID == pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    back = read_video(path)
    assert back.fps == pytest.approx(20.0) and back.metadata["fps_source"] == fps_tag


def test_writer_rejects_bad_options(tmp_path: Path) -> None:
    video = Video(frames=np.zeros((1, 2, 2), dtype=np.float32))
    with pytest.raises(InputError):
        write_dicom(video, tmp_path / "x.dcm", bits_stored=10)
    with pytest.raises(InputError):
        write_dicom(video, tmp_path / "x.dcm", fps_tag="Bogus")
    assert not (tmp_path / "x.dcm").exists()


def test_compressed_syntaxes_with_a_decoder(tmp_path: Path) -> None:
    import cv2

    video = Video(frames=np.linspace(0, 1, 3 * 16 * 16, dtype=np.float32).reshape(3, 16, 16))
    rle = pydicom.dcmread(write_dicom(video, tmp_path / "w.dcm", bits_stored=16))
    rle.compress(pydicom.uid.RLELossless)
    rle.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    back = read_video(tmp_path / "rle.dcm")
    assert back.metadata["transfer_syntax"] == "RLE Lossless"
    assert np.abs(back.frames - video.frames).max() <= 1 / 65535
    if not pydicom.pixels.get_decoder(pydicom.uid.JPEGBaseline8Bit).is_available:
        pytest.skip("no JPEG baseline decoder installed")
    jpeg = pydicom.dcmread(write_dicom(video, tmp_path / "b.dcm", bits_stored=8))
    quality = [cv2.IMWRITE_JPEG_QUALITY, 95]
    jpeg.PixelData = encapsulate([cv2.imencode(".jpg", f, quality)[1].tobytes() for f in jpeg.pixel_array])
    jpeg["PixelData"].VR = "OB"
    jpeg.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    jpeg.save_as(tmp_path / "jpeg.dcm", enforce_file_format=True)
    back = read_video(tmp_path / "jpeg.dcm")
    assert back.shape == video.shape and np.abs(back.frames - video.frames).max() < 0.02


def test_secondary_capture_byte_for_eight_bits(tmp_path: Path) -> None:
    video = Video(frames=np.full((2, 3, 3), 0.5, dtype=np.float32), pixel_spacing=(0.4, 0.4))
    path = write_dicom(video, tmp_path / "sc.dcm", modality="OT", bits_stored=8)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == pydicom.uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage
    assert ds.Modality == "OT" and ds.BitsAllocated == 8
    back = read_video(path)
    assert back.pixel_spacing == (0.4, 0.4) and back.metadata["pixel_spacing_source"] == "PixelSpacing"
    assert back.metadata["sop_class"] == "Multi-frame Grayscale Byte Secondary Capture Image Storage"
