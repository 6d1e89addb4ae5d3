"""DICOM angiography runs: reading (single/multi-frame files and series folders) and writing.

Reading normalises the stored pixels to [0, 1] by the range the bit depth allows, mapped
through the modality rescale (see `normalise_grey`), inverts MONOCHROME1, turns colour into
luminance and takes the frame rate and pixel spacing from the usual tags.

Writing (`write_dicom`) produces multi-frame explicit-VR-little-endian files whose round trip
through `read_dicom` gives back the frames within one quantisation step, 1 / (2^bits - 1).
Rescale convention: with ``rescale=(slope, intercept)`` the file's modality values are
``v = intercept + slope * q`` where ``q = round(x * (2^bits - 1))`` is the quantised frame, so
the stored raw value is ``raw = (v - intercept) / slope = q`` (for a negative slope
``raw = 2^bits - 1 - q``, because the reader then inverts). Since the reader maps the rescaled
range of the stored bits onto [0, 1], a positive linear rescale never changes the [0, 1] frames.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.datadict
import pydicom.pixels
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import UID, generate_uid
from pydicom.valuerep import DSfloat

from angioseg.errors import InputError
from angioseg.io.arrays import (
    CORRUPT_DATA_ERRORS,
    UnrecognisedFormatError,
    integer_to_unit,
    luminance,
    make_video,
    one_line,
)
from angioseg.io.atomic import atomic_file
from angioseg.io.images import natural_sort_key
from angioseg.types import Video

#: Tags giving the frame rate, in priority order.
FPS_TAGS = ("FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate")
#: File suffixes taken as DICOM inside a folder even without the 'DICM' marker.
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
_SOP_BY_MODALITY = {
    "XA": pydicom.uid.XRayAngiographicImageStorage,
    "RF": pydicom.uid.XRayRadiofluoroscopicImageStorage,
}
_SC_BYTE = pydicom.uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage
_SC_WORD = pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
_DICOM_ERRORS = (*CORRUPT_DATA_ERRORS, InvalidDicomError, BytesLengthException)


# ----------------------------------------------------------------------------- sniffing


def has_dicom_marker(path: str | os.PathLike[str]) -> bool:
    """True when the file holds 'DICM' at byte offset 128 (the standard file preamble)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_dicom_candidate(path: str | os.PathLike[str]) -> bool:
    """A file that a DICOM series folder should include: 'DICM' marker or a DICOM suffix."""
    path = Path(path)
    if path.name.upper() == "DICOMDIR":
        return False
    return path.suffix.lower() in DICOM_SUFFIXES or has_dicom_marker(path)


# ----------------------------------------------------------------------------- reading


#: Quoted text in a parser's message (it may be an element's value, e.g. a patient's name).
_QUOTED = re.compile(r"""b?'[^']*'?|b?"[^"]*"?""")


def safe_reason(exc: BaseException) -> str:
    """A parser's exception as one short line that never echoes element values: its type and
    its message with every quoted part replaced by '...'."""
    text = _QUOTED.sub("'...'", one_line(exc, limit=400))
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{type(exc).__name__}: {text}"


def _convert_elements(path: Path, ds: Dataset) -> None:
    """Convert every top-level element now, so that a corrupt value fails here; the error
    names the element (tag, keyword, VR) but never its value."""
    for tag in list(ds.keys()):
        try:
            ds[tag]
        except _DICOM_ERRORS:
            raw = ds._dict.get(tag)
            vr = getattr(raw, "VR", None) or "?"
            keyword = pydicom.datadict.keyword_for_tag(tag) or "private"
            raise InputError(f"{path} has a corrupt value in element {Tag(tag)} {keyword} (VR {vr})") from None


def _looks_like_dicom(ds: Dataset) -> bool:
    """Whether a dataset parsed with force=True really is DICOM (not bytes read as tags)."""
    return any(keyword in ds for keyword in ("PixelData", "SOPClassUID", "Rows", "Modality"))


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Parse a DICOM file, with or without the 128-byte preamble, into a pydicom Dataset.

    Raises `UnrecognisedFormatError` (an InputError) when the bytes are not DICOM at all and
    InputError when a DICOM file is truncated or corrupt.
    """
    path = Path(path)
    marked = has_dicom_marker(path)
    try:
        with warnings.catch_warnings():  # garbage read with force=True warns on every element
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=not marked)
            _convert_elements(path, getattr(ds, "file_meta", None) or Dataset())
            _convert_elements(path, ds)
    except InputError:
        if not marked:
            raise UnrecognisedFormatError(f"{path} is not a DICOM file") from None
        raise
    except _DICOM_ERRORS as exc:
        if not marked:
            raise UnrecognisedFormatError(f"{path} is not a DICOM file") from None
        raise InputError(f"{path} is not a readable DICOM file (truncated or corrupt): {safe_reason(exc)}") from None
    if not marked and not _looks_like_dicom(ds):
        raise UnrecognisedFormatError(f"{path} is not a DICOM file")
    _ensure_transfer_syntax(ds)
    return ds


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Fill in the transfer syntax of a preamble-less file from the encoding it was read with."""
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" in ds.file_meta:
        return
    implicit, little = ds.original_encoding
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    elif little is False:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    else:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian


def _quiet_uid(value: Any) -> UID:
    """UID(value) without pydicom's validation warning for malformed values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return UID(str(value or ""))


def transfer_syntax(path: Path, ds: Dataset) -> UID:
    """The dataset's transfer syntax; InputError when it is missing or not a known syntax."""
    syntax = _quiet_uid(ds.file_meta.get("TransferSyntaxUID", ""))
    if not syntax.is_transfer_syntax:
        raise InputError(f"{path} declares an unknown transfer syntax {str(syntax)!r}")
    return syntax


def _check_decodable(path: Path, syntax: UID) -> None:
    """InputError naming the syntax (name and UID) and what to install when nothing decodes it."""
    if not syntax.is_compressed:
        return
    try:
        decoder = pydicom.pixels.get_decoder(syntax)
    except NotImplementedError:
        raise InputError(f"{path} uses transfer syntax {syntax.name} ({syntax}), which pydicom cannot decode") from None
    if decoder.is_available:
        return
    options = "; ".join(decoder.missing_dependencies) or "a suitable pydicom decoding plugin"
    raise InputError(
        f"{path} uses the compressed transfer syntax {syntax.name} ({syntax}) and no installed decoder "
        f"handles it; install one of: {options}"
    )


def _expected_native_bytes(ds: Dataset, frames: int) -> int:
    """Bytes of native (uncompressed) pixel data the header announces."""
    pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1) * frames
    allocated = int(ds.BitsAllocated)
    return (pixels * allocated + 7) // 8


def _number_of_frames(path: Path, ds: Dataset) -> int:
    """NumberOfFrames (1 when absent or empty); InputError when it is not a positive integer."""
    value = ds.get("NumberOfFrames", 1)
    if value in (None, ""):
        return 1
    try:
        frames = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{path} declares a NumberOfFrames that is not an integer") from None
    if frames < 1:
        raise InputError(f"{path} declares NumberOfFrames {frames}; a run has at least one frame")
    return frames


def _check_pixel_header(path: Path, ds: Dataset, frames: int) -> None:
    """InputError for BitsAllocated that DICOM does not allow, or an image whose decoded size
    exceeds this machine's memory."""
    allocated = int(ds.BitsAllocated)
    if allocated != 1 and (allocated % 8 or not 8 <= allocated <= 64):
        raise InputError(f"{path} declares BitsAllocated {allocated}; DICOM allows 1 or a multiple of 8 up to 64 "
                         "(12-bit images are stored in 16 bits allocated)")
    rows, columns = int(ds.Rows), int(ds.Columns)
    if rows < 1 or columns < 1:
        raise InputError(f"{path} declares an image of {rows} x {columns} pixels")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    needed = rows * columns * samples * frames * 8  # decoded values and their float32 frames
    available = _physical_memory()
    if needed > available:
        raise InputError(f"{path} declares {frames} frames of {rows} x {columns} pixels, about {needed / 1e9:.3g} GB "
                         f"to decode: more than this machine's memory ({available / 1e9:.3g} GB)")


def _physical_memory() -> int:
    """Bytes of physical memory (a large default where the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def _check_native_size(path: Path, ds: Dataset, frames: int) -> None:
    """Compare the native pixel data with the header: too few bytes for the frames
    (truncated, or SamplesPerPixel claiming colour on grey data), or whole frames beyond
    NumberOfFrames."""
    expected, present = _expected_native_bytes(ds, frames), len(ds.PixelData)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frame_bytes = max(expected // frames, 1)
    if present < expected:
        if samples > 1 and present - expected // samples in (0, 1):  # exactly one sample per pixel (+ padding)
            raise InputError(f"{path} declares SamplesPerPixel {samples} (colour) but its pixel data holds one sample "
                             f"per pixel ({present} of {expected} bytes)")
        raise InputError(f"{path} is a truncated DICOM file: its pixel data holds {present} of {expected} bytes")
    if present >= expected + frame_bytes and frame_bytes > 1:
        raise InputError(f"{path} declares NumberOfFrames {frames} but its pixel data holds {present // frame_bytes} frames")


def _decode_pixels(path: Path, ds: Dataset) -> np.ndarray:
    """Decoded pixels as `(T, H, W)` or `(T, H, W, 3)`; YBR colour is converted to RGB."""
    syntax = transfer_syntax(path, ds)
    _check_decodable(path, syntax)
    frames = _number_of_frames(path, ds)
    _check_pixel_header(path, ds, frames)
    if not syntax.is_compressed:
        _check_native_size(path, ds, frames)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = pydicom.pixels.pixel_array(ds)
    except Exception as exc:  # decoders raise many exception types for corrupt data
        raise InputError(f"{path} has pixel data that cannot be decoded ({syntax.name}): {safe_reason(exc)}") from None
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if pixels.ndim == (2 if samples == 1 else 3):
        pixels = pixels[None]
    return pixels


def _raw_range(bits: int, signed: bool) -> tuple[int, int]:
    """Range of stored values: unsigned [0, 2^b - 1]; signed [-2^(b-1), 2^(b-1) - 1]."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def normalise_grey(raw: np.ndarray, *, bits: int, signed: bool, slope: float, intercept: float) -> np.ndarray:
    """Stored grey values `(T, H, W)` -> float32 in [0, 1].

    v = slope * raw + intercept (modality LUT); [lo, hi] = the allowed raw range mapped through
    the same rescale (sorted); x = clip((v - lo) / (hi - lo), 0, 1). A negative slope inverts.
    Computed in float32 as x = raw * a + b with a = slope / (hi - lo), b = (intercept - lo) / (hi - lo).
    """
    raw_lo, raw_hi = _raw_range(bits, signed)
    lo, hi = sorted((slope * raw_lo + intercept, slope * raw_hi + intercept))
    unit = raw.astype(np.float32)
    unit *= np.float32(slope / (hi - lo))
    unit += np.float32((intercept - lo) / (hi - lo))
    return np.clip(unit, 0.0, 1.0, out=unit)


def _rescale(path: Path, ds: Dataset) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept), defaulting to (1, 0)."""
    slope = ds.get("RescaleSlope", None)
    intercept = ds.get("RescaleIntercept", None)
    slope = 1.0 if slope in (None, "") else float(slope)
    intercept = 0.0 if intercept in (None, "") else float(intercept)
    if slope == 0 or not np.isfinite(slope) or not np.isfinite(intercept):
        raise InputError(f"{path} has an invalid rescale (slope {slope}, intercept {intercept})")
    return slope, intercept


def _stored_bits(path: Path, ds: Dataset) -> int:
    """BitsStored (else BitsAllocated), checked to lie in 1..32."""
    bits = int(ds.get("BitsStored", None) or ds.BitsAllocated)
    if not 1 <= bits <= 32:
        raise InputError(f"{path} declares an invalid bit depth of {bits} bits stored")
    return bits


def _to_unit(path: Path, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Decoded pixels -> `(T, H, W)` float32 in [0, 1] following the photometric interpretation."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    bits = _stored_bits(path, ds)
    if photometric == "PALETTE COLOR":
        return luminance(integer_to_unit(pydicom.pixels.apply_color_lut(pixels, ds)))
    if pixels.ndim == 4:
        top = float((1 << bits) - 1)
        return np.clip(luminance(pixels) / top, 0.0, 1.0).astype(np.float32)
    slope, intercept = _rescale(path, ds)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    unit = normalise_grey(pixels, bits=bits, signed=signed, slope=slope, intercept=intercept)
    if photometric == "MONOCHROME1":
        np.subtract(np.float32(1.0), unit, out=unit)
    return unit


def _values(value: Any) -> list[float]:
    """A DICOM single or multi-valued number as a list of floats."""
    items: Iterable[Any] = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    return [float(v) for v in items]


def _fps_from(keyword: str, value: Any) -> float | None:
    """Frame rate from one tag: Frame Time (ms) -> 1000 / ft; Frame Time Vector -> 1000 / mean
    increment (a leading 0 ignored); Cine Rate and Recommended Display Frame Rate as they are."""
    numbers = _values(value)
    if keyword == "FrameTimeVector":
        if numbers and numbers[0] == 0:
            numbers = numbers[1:]
        mean = float(np.mean(numbers)) if numbers else 0.0
        fps = 1000.0 / mean if mean > 0 else None
    elif keyword == "FrameTime":
        fps = 1000.0 / numbers[0] if numbers and numbers[0] > 0 else None
    else:
        fps = numbers[0] if numbers else None
    return fps if fps is not None and np.isfinite(fps) and fps > 0 else None


def dicom_fps(ds: Dataset) -> tuple[float | None, str | None]:
    """(fps, keyword of the tag that gave it), trying `FPS_TAGS` in order; (None, None) if absent."""
    for keyword in FPS_TAGS:
        value = ds.get(keyword, None)
        if value in (None, ""):
            continue
        try:
            fps = _fps_from(keyword, value)
        except (TypeError, ValueError):
            fps = None
        if fps is not None:
            return fps, keyword
    return None, None


def dicom_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """((row, col) mm, source keyword) from PixelSpacing, else ImagerPixelSpacing."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword, None)
        if value in (None, ""):
            continue
        try:
            numbers = _values(value)
        except (TypeError, ValueError):
            continue
        if len(numbers) == 2 and min(numbers) > 0 and all(np.isfinite(numbers)):
            return (numbers[0], numbers[1]), keyword
    return None, None


def _metadata(path: Path, ds: Dataset, fps_source: str | None, spacing_source: str | None) -> dict[str, Any]:
    """Non-identifying facts about the file (never patient data)."""
    syntax = transfer_syntax(path, ds)
    sop = _quiet_uid(ds.get("SOPClassUID", ""))
    slope, intercept = _rescale(path, ds)
    return {
        "source_kind": "dicom",
        "source_name": path.name,
        "bit_depth": _stored_bits(path, ds),
        "bits_allocated": int(ds.BitsAllocated),
        "signed": int(ds.get("PixelRepresentation", 0) or 0) == 1,
        "modality": str(ds.get("Modality", "") or "") or None,
        "sop_class": (sop.name if sop else None),
        "sop_class_uid": str(sop) or None,
        "transfer_syntax": syntax.name,
        "transfer_syntax_uid": str(syntax),
        "photometric": str(ds.get("PhotometricInterpretation", "") or "") or None,
        "fps_source": fps_source,
        "pixel_spacing_source": spacing_source,
        "rescale_slope": slope,
        "rescale_intercept": intercept,
    }


def _dataset_frames(path: Path, ds: Dataset) -> np.ndarray:
    """`(T, H, W)` float32 frames in [0, 1] of a parsed dataset."""
    if "PixelData" not in ds:
        hint = "" if "Rows" in ds else " (no image header either, so it may be truncated)"
        raise InputError(f"{path} is a DICOM file without pixel data{hint}")
    try:
        return _to_unit(path, ds, _decode_pixels(path, ds))
    except InputError:
        raise
    except (AttributeError, *_DICOM_ERRORS) as exc:
        raise InputError(f"{path} has an invalid or incomplete DICOM image header: {safe_reason(exc)}") from None


def _header_facts(path: Path, ds: Dataset) -> tuple[float | None, tuple[float, float] | None, dict[str, Any]]:
    """(fps, pixel spacing, metadata) of a dataset; malformed header values become InputError."""
    try:
        fps, fps_source = dicom_fps(ds)
        spacing, spacing_source = dicom_spacing(ds)
        return fps, spacing, _metadata(path, ds, fps_source, spacing_source)
    except InputError:
        raise
    except (AttributeError, *_DICOM_ERRORS) as exc:
        raise InputError(f"{path} has an invalid DICOM header: {safe_reason(exc)}") from None


def dataset_to_video(path: str | os.PathLike[str], ds: Dataset) -> Video:
    """Convert a parsed dataset to a `Video` (frames `(T, H, W)` float32 in [0, 1])."""
    path = Path(path)
    frames = _dataset_frames(path, ds)
    fps, spacing, meta = _header_facts(path, ds)
    return make_video(path, frames, fps=fps, pixel_spacing=spacing, metadata=meta)


def read_dicom(path: str | os.PathLike[str]) -> Video:
    """Read a single- or multi-frame DICOM file into a `Video` with frames `(T, H, W)` in [0, 1].

    Grey: x = (slope * raw + intercept - lo) / (hi - lo) over the allowed range (see
    `normalise_grey`); MONOCHROME1: 1 - x; RGB/YBR/palette: Y = 0.299 R + 0.587 G + 0.114 B
    scaled by the stored bit range. fps from Frame Time, Frame Time Vector, Cine Rate or
    Recommended Display Frame Rate (first present); spacing from PixelSpacing or
    ImagerPixelSpacing.
    """
    path = Path(path)
    _require_file(path)
    return dataset_to_video(path, read_dataset(path))


def _require_file(path: Path) -> None:
    """InputError unless `path` is an existing non-empty file."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")


def _series_key(item: tuple[Path, Dataset]) -> tuple[Any, ...]:
    """Sort by InstanceNumber (files without one last), then natural file name order."""
    path, ds = item
    number = ds.get("InstanceNumber", None)
    try:
        number = int(number) if number not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    return (number is None, number or 0, natural_sort_key(path.name))


def read_dicom_folder(folder: str | os.PathLike[str], files: list[Path] | None = None) -> Video:
    """Read a folder of (usually single-frame) DICOM files as one `Video` `(T, H, W)`.

    Files are ordered by InstanceNumber, then natural name order; `files` defaults to every
    non-hidden file with a 'DICM' marker or a DICOM suffix. Frame size must not change.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    if files is None:
        files = [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and is_dicom_candidate(f)]
    if not files:
        raise InputError(f"{folder} contains no DICOM files")
    series = sorted(((f, read_dataset(f)) for f in files), key=_series_key)
    chunks: list[np.ndarray] = []
    for file, ds in series:
        frames = _dataset_frames(file, ds)
        if chunks and frames.shape[1:] != chunks[0].shape[1:]:
            raise InputError(
                f"{file} has frames of {frames.shape[1:]} pixels but earlier files in {folder} have "
                f"{chunks[0].shape[1:]} (frames of mixed sizes)"
            )
        chunks.append(frames)
    fps, spacing, meta = _header_facts(series[0][0], series[0][1])
    meta.update(source_name=folder.name, files=len(series))
    return make_video(folder, np.concatenate(chunks), fps=fps, pixel_spacing=spacing, metadata=meta)


# ----------------------------------------------------------------------------- writing


def _check_write_options(bits_stored: int, modality: str, photometric: str, fps_tag: str) -> None:
    """InputError for an unsupported writer option."""
    if bits_stored not in (8, 12, 16):
        raise InputError(f"DICOM bits_stored must be 8, 12 or 16; got {bits_stored}")
    if modality not in ("XA", "RF", "OT"):
        raise InputError(f"DICOM modality must be 'XA', 'RF' or 'OT'; got {modality!r}")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(f"DICOM photometric must be 'MONOCHROME1' or 'MONOCHROME2'; got {photometric!r}")
    if fps_tag not in FPS_TAGS:
        raise InputError(f"DICOM fps_tag must be one of {', '.join(FPS_TAGS)}; got {fps_tag!r}")


def quantise_for_dicom(frames: np.ndarray, *, bits_stored: int, photometric: str, slope: float) -> np.ndarray:
    """`(T, H, W)` in [0, 1] -> stored raw values (uint8 for 8 bits, else uint16).

    q = round(x * (2^b - 1)); MONOCHROME1 stores top - q; a negative rescale slope flips once
    more (the reader inverts for it), so reading returns x within 1 / (2^b - 1).
    """
    top = (1 << bits_stored) - 1
    raw = np.round(np.clip(frames, 0.0, 1.0).astype(np.float64) * top).astype(np.int64)
    if (photometric == "MONOCHROME1") != (slope < 0):
        raw = top - raw
    return raw.astype(np.uint8 if bits_stored == 8 else np.uint16)


def _sop_class(modality: str, bits_stored: int) -> UID:
    """XA / XRF storage, or multi-frame grayscale byte/word secondary capture for 'OT'."""
    if modality == "OT":
        return _SC_BYTE if bits_stored == 8 else _SC_WORD
    return _SOP_BY_MODALITY[modality]


def file_meta(sop_class: UID, sop_instance: UID) -> FileMetaDataset:
    """Group 0002 for an explicit VR little endian file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "ANGIOSEG_010"
    return meta


def _identity(ds: Dataset, sop_class: UID, modality: str) -> None:
    """Patient/study/series/instance attributes; patient ones present but empty (type 2)."""
    now = _dt.datetime.now()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImageType = ["DERIVED", "SECONDARY"] if modality == "OT" else ["DERIVED", "PRIMARY", "SINGLE PLANE"]
    if modality == "OT":
        ds.ConversionType = "WSD"


def _image_pixels(ds: Dataset, raw: np.ndarray, bits_stored: int, photometric: str) -> None:
    """Image Pixel module for `(T, H, W)` raw values (padded to an even byte count)."""
    ds.NumberOfFrames = int(raw.shape[0])
    ds.Rows, ds.Columns = int(raw.shape[1]), int(raw.shape[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits_stored == 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    data = raw.astype("<u1" if bits_stored == 8 else "<u2").tobytes()
    ds.PixelData = data + b"\0" if len(data) % 2 else data
    ds["PixelData"].VR = "OB" if bits_stored == 8 else "OW"


def _cine(ds: Dataset, fps: float, fps_tag: str, frames: int) -> None:
    """Write the frame rate in exactly one tag: Frame Time (ms), Frame Time Vector
    ([0, ft, ft...], ms), Cine Rate or Recommended Display Frame Rate (integers: round(fps))."""
    frame_time = 1000.0 / fps
    if fps_tag == "FrameTime":
        ds.FrameTime = DSfloat(frame_time, auto_format=True)
        ds.FrameIncrementPointer = Tag("FrameTime")
    elif fps_tag == "FrameTimeVector":
        vector = [0.0] + [frame_time] * (frames - 1) if frames > 1 else [frame_time]
        ds.FrameTimeVector = [DSfloat(v, auto_format=True) for v in vector]
        ds.FrameIncrementPointer = Tag("FrameTimeVector")
    elif fps_tag == "CineRate":
        ds.CineRate = max(1, int(round(fps)))
    else:
        ds.RecommendedDisplayFrameRate = max(1, int(round(fps)))


def write_dicom(
    video: Video,
    path: str | os.PathLike[str],
    *,
    bits_stored: int = 8,
    modality: str = "XA",
    photometric: str = "MONOCHROME2",
    rescale: tuple[float, float] | None = None,
    fps_tag: str = "FrameTime",
    pixel_spacing: tuple[float, float] | None = None,
) -> Path:
    """Write `video` (frames `(T, H, W)` in [0, 1]) as one multi-frame DICOM file. Atomic.

    Explicit VR little endian with file meta and fresh UIDs; SOP class XA (or XRF for 'RF'),
    multi-frame grayscale byte/word secondary capture for 'OT'. Frames are quantised to
    `bits_stored` (8 -> 8 allocated, 12/16 -> 16 allocated): q = round(x * (2^b - 1)).
    MONOCHROME1 stores 2^b - 1 - q. `rescale=(slope, intercept)` writes Rescale Slope /
    Intercept with modality values v = intercept + slope * q, i.e. raw = (v - intercept) / slope
    (see the module docstring). The frame rate goes into the single tag `fps_tag` (Cine Rate
    and Recommended Display Frame Rate are integers, so round(fps)). Pixel spacing (argument,
    else the video's) goes into ImagerPixelSpacing for XA/RF and PixelSpacing for OT.
    """
    _check_write_options(bits_stored, modality, photometric, fps_tag)
    slope, intercept = (1.0, 0.0) if rescale is None else (float(rescale[0]), float(rescale[1]))
    if slope == 0 or not np.isfinite(slope) or not np.isfinite(intercept):
        raise InputError(f"DICOM rescale slope must be non-zero and finite; got {rescale!r}")
    sop_class = _sop_class(modality, bits_stored)
    ds = Dataset()
    ds.file_meta = file_meta(sop_class, generate_uid())
    _identity(ds, sop_class, modality)
    raw = quantise_for_dicom(video.frames, bits_stored=bits_stored, photometric=photometric, slope=slope)
    _image_pixels(ds, raw, bits_stored, photometric)
    if rescale is not None:
        ds.RescaleSlope = DSfloat(slope, auto_format=True)
        ds.RescaleIntercept = DSfloat(intercept, auto_format=True)
        ds.RescaleType = "US"
    if video.fps is not None:
        _cine(ds, video.fps, fps_tag, raw.shape[0])
    spacing = pixel_spacing if pixel_spacing is not None else video.pixel_spacing
    if spacing is not None:
        values = [DSfloat(float(s), auto_format=True) for s in spacing]
        setattr(ds, "PixelSpacing" if modality == "OT" else "ImagerPixelSpacing", values)
    path = Path(path)
    with atomic_file(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
