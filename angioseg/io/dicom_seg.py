"""DICOM Segmentation (SEG) objects for X-ray angiography runs, referenced frame by frame.

`write_dicom_seg` turns a `(T, H, W)` label map of a DICOM run (one multi-frame XA/XRF file, or
a folder of single-frame instances ordered as `angioseg.io.dicom.read_dicom_folder` orders
them) into one Segmentation Storage instance (1.2.840.10008.5.1.4.1.1.66.4) in the source's
study; `read_dicom_seg` reads such an object back into a label map.

How the object is built (docs/dicom_seg.md has the full account):

- one segment per non-zero label of the table, numbered 1..S in increasing label id (segment
  number = label id whenever the ids are 1..S), coded by `segment_concept`;
- every source frame is stored for every segment, segment by segment (frame k of segment s is
  SEG frame ``(s - 1) * T + k``), BINARY at 1 bit per pixel or FRACTIONAL (PROBABILITY,
  0..255) at 8 bits;
- each SEG frame's Per-Frame Functional Groups hold Frame Content (Dimension Index Values =
  [segment number, source frame position], Temporal Position Index = source frame position),
  Segment Identification and Derivation Image -> Source Image (SOP class, SOP instance,
  Referenced Frame Number for multi-frame sources, purpose DCM 121322);
- XA/XRF runs have no Frame of Reference, so none is written and the frames are tied to the
  source through these references only (highdicom's `Segmentation` refuses such multi-frame
  sources, its issue #200, hence this pydicom builder). Pixel Measures is shared where the
  source has a Pixel Spacing (Imager Pixel Spacing is at the detector, not in the patient,
  and is not copied); a source with a complete patient geometry (Frame of Reference, one
  Image Orientation, a position per frame) also gets Plane Orientation / Plane Position.

Patient and study attributes are copied from the source (that is what files the SEG with its
run) but never appear in an exception or a log line. The source is never modified.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydicom
import pydicom.pixels
import pydicom.valuerep
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import UID, generate_uid

from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.io.dicom import _DICOM_ERRORS, _series_key, file_meta, has_dicom_marker, is_dicom_candidate
from angioseg.io.images import list_image_files
from angioseg.io.palette import overlay_colour

#: SOP class of the objects written here.
SEGMENTATION_STORAGE = UID("1.2.840.10008.5.1.4.1.1.66.4")
#: Maximum Fractional Value of FRACTIONAL objects: probabilities are stored as round(p * 255).
MAX_FRACTION = 255
#: Patient and study attributes copied from the source (type 2 here: empty when absent).
COPIED_IDENTITY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyID", "AccessionNumber", "StudyDate", "StudyTime", "ReferringPhysicianName",
)
_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")
_NOT_DICOM = "DICOM SEG needs a DICOM source run; {what} is not DICOM (a video, image or array input has no DICOM identifiers to reference)"
_MAX_LABEL_CHARS = 64  # Segment Label and Series Description are LO


# ----------------------------------------------------------------------------- coded concepts


class Code(NamedTuple):
    """One coded concept: (code value, coding scheme designator, code meaning)."""

    value: str
    scheme: str
    meaning: str


class SegmentConcept(NamedTuple):
    """Segmented Property Category and Type of a segment."""

    category: Code
    type: Code


# Categories: DICOM PS3.16 CID 7150 "Segmentation Property Category".
ANATOMICAL_STRUCTURE = Code("91723000", "SCT", "Anatomical Structure")
PHYSICAL_OBJECT = Code("260787004", "SCT", "Physical object")
MORPHOLOGICALLY_ABNORMAL = Code("49755003", "SCT", "Morphologically Abnormal Structure")
TISSUE = Code("85756007", "SCT", "Tissue")

# Types: SNOMED CT codes as listed in DICOM PS3.16 (checked against the code dictionary that
# pydicom ships, pydicom/sr/_concepts_dict.py, and its context groups). CID 7192 "Anatomical
# Structure Segmentation Types", CID 7193 "Physical Object Segmentation Types", CID 7194
# "Morphologically Abnormal Structure Segmentation Types"; the guide wire is from CID 3429
# "Catheterization Devices" (CID 7151 is extensible).
_CONCEPTS: dict[str, SegmentConcept] = {
    # Blood vessel, not "Coronary artery" (41801008): the same label covers DSA runs.
    "vessel": SegmentConcept(ANATOMICAL_STRUCTURE, Code("59820001", "SCT", "Blood vessel")),
    "catheter": SegmentConcept(PHYSICAL_OBJECT, Code("19923001", "SCT", "Catheter")),
    "guidewire": SegmentConcept(PHYSICAL_OBJECT, Code("272224001", "SCT", "Guide wire")),
    "marker": SegmentConcept(PHYSICAL_OBJECT, Code("262301009", "SCT", "Opaque marker")),
    # angioseg's "electrode" is a pacing / EP lead carrying ring electrodes.
    "electrode": SegmentConcept(PHYSICAL_OBJECT, Code("360129009", "SCT", "Cardiac pacemaker lead")),
    # Sternal wires are steel wire sutures closing a sternotomy.
    "sternal_wire": SegmentConcept(PHYSICAL_OBJECT, Code("27065002", "SCT", "Suture")),
    "clip": SegmentConcept(PHYSICAL_OBJECT, Code("77720000", "SCT", "Clip")),
    "liver": SegmentConcept(ANATOMICAL_STRUCTURE, Code("10200004", "SCT", "Liver")),
    "tumour": SegmentConcept(MORPHOLOGICALLY_ABNORMAL, Code("108369006", "SCT", "Neoplasm")),
}
_ALIASES = {"tumor": "tumour", "guide_wire": "guidewire", "vessels": "vessel", "stenal_wire": "sternal_wire"}
#: Concept of a label name angioseg has no code for (the "Tissue" / "Tissue" default that
#: 3D Slicer and dcmqi use for uncoded segments); the free-text name is the Segment Label.
GENERIC_CONCEPT = SegmentConcept(TISSUE, TISSUE)

# DICOM PS3.16 CID 7203 / CID 7202 codes of the derivation and its source.
_SEGMENTATION_DERIVATION = Code("113076", "DCM", "Segmentation")
_SOURCE_PURPOSE = Code("121322", "DCM", "Source image for image processing operation")


def segment_concept(name: str) -> SegmentConcept:
    """(category, type) codes, each (code value, scheme, meaning), for a label name; names
    without a standard code get `GENERIC_CONCEPT`."""
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    return _CONCEPTS.get(_ALIASES.get(key, key), GENERIC_CONCEPT)


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    return item


# ----------------------------------------------------------------------------- the source


@dataclass(frozen=True)
class SourceFrame:
    """One frame of the source run: its instance, and its frame number in a multi-frame file."""

    dataset: Dataset
    frame_number: int | None


def _not_dicom(what: str) -> InputError:
    return InputError(_NOT_DICOM.format(what=what))


def _read_header(path: Path) -> Dataset:
    """The header (no pixel data) of a DICOM file; InputError when `path` is not DICOM."""
    marked = has_dicom_marker(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=not marked)
            for _ in ds:  # convert now, so corrupt values fail here
                pass
    except (*_DICOM_ERRORS, OSError) as error:
        if not marked:
            raise _not_dicom(str(path)) from None
        raise InputError(f"{path} is not a readable DICOM file: {type(error).__name__}") from None
    if not marked and not any(k in ds for k in ("SOPClassUID", "Rows", "Modality")):
        raise _not_dicom(str(path))
    return ds


def read_source_headers(source: str | os.PathLike[str] | Dataset | Sequence[Dataset]) -> list[Dataset]:
    """The source run's instances in frame order: a file, a folder series (ordered by
    InstanceNumber, then natural file name, as `read_dicom_folder` does), one dataset or a
    sequence of datasets (ordered by InstanceNumber, ties in the given order). Headers only
    for paths. InputError (one line) for anything that is not a DICOM run."""
    if isinstance(source, Dataset):
        return [source]
    if isinstance(source, (str, os.PathLike)):
        return _headers_from_path(Path(source))
    datasets = list(source)
    if not datasets or not all(isinstance(ds, Dataset) for ds in datasets):
        raise _not_dicom("the given source (not a path, a dataset or a list of datasets)")
    order = sorted(range(len(datasets)), key=lambda i: (*_series_key((Path(f"{i:09d}"), datasets[i]))[:2], i))
    return [datasets[i] for i in order]


def _headers_from_path(path: Path) -> list[Dataset]:
    """Headers of a DICOM file or of the DICOM series in a folder, in frame order."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_file():
        return [_read_header(path)]
    if not path.is_dir():
        raise InputError(f"{path} is not a regular file or folder")
    if list_image_files(path):
        raise _not_dicom(f"the image folder {path}")
    files = [f for f in path.iterdir() if f.is_file() and not f.name.startswith(".") and is_dicom_candidate(f)]
    if not files:
        raise _not_dicom(f"the folder {path} (it holds no DICOM files)")
    return [ds for _, ds in sorted(((f, _read_header(f)) for f in files), key=_series_key)]


def _name(ds: Dataset, index: int, count: int) -> str:
    """How an instance is named in messages: its file name, else its position (never an identifier)."""
    filename = getattr(ds, "filename", None)
    if isinstance(filename, (str, os.PathLike)) and str(filename):
        return Path(filename).name
    return "the source dataset" if count == 1 else f"source dataset {index + 1}"


def _number_of_frames(ds: Dataset) -> int | None:
    """NumberOfFrames of a multi-frame instance, None for a single-frame one."""
    value = ds.get("NumberOfFrames", None)
    if value in (None, ""):
        return None
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return None


def source_frames(headers: Sequence[Dataset]) -> list[SourceFrame]:
    """Every frame of the run in order; checks what a SEG must reference (UIDs, one study, one
    frame size) with one-line InputErrors that name no identifier."""
    frames: list[SourceFrame] = []
    for index, ds in enumerate(headers):
        missing = [k for k in _REQUIRED if ds.get(k, None) in (None, "")]
        if missing:
            raise InputError(f"{_name(ds, index, len(headers))} has no {missing[0]}, which a DICOM SEG must reference")
        count = _number_of_frames(ds)
        frames.extend(SourceFrame(ds, n) for n in (range(1, count + 1) if count else [None]))
    first = headers[0]
    for index, ds in enumerate(headers[1:], start=1):
        if ds.StudyInstanceUID != first.StudyInstanceUID:
            raise InputError(f"{_name(ds, index, len(headers))} belongs to another study than the first instance of the run")
        if (int(ds.Rows), int(ds.Columns)) != (int(first.Rows), int(first.Columns)):
            raise InputError(f"{_name(ds, index, len(headers))} has frames of {ds.Rows}x{ds.Columns} pixels but the run's "
                             f"first instance has {first.Rows}x{first.Columns}")
    return frames


# ----------------------------------------------------------------------------- checking the inputs


def _segment_ids(label_table: dict[int, str]) -> list[int]:
    """The table's non-zero ids in increasing order (segment k+1 = ids[k]); checks the names."""
    if not isinstance(label_table, dict) or not label_table:
        raise InputError("the label table must be a non-empty dict of label id -> name")
    ids = []
    for key, name in label_table.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise InputError(f"label table ids must be non-negative integers; got {key!r}")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"label {key} has no name in the label table")
        if key != 0 and (len(name) > _MAX_LABEL_CHARS or "\\" in name or not name.isprintable()):
            raise InputError(f"label name {name[:_MAX_LABEL_CHARS]!r} cannot be a DICOM Segment Label "
                             f"(at most {_MAX_LABEL_CHARS} printable characters, no backslash)")
        if key != 0:
            ids.append(int(key))
    if not ids:
        raise InputError("the label table has no foreground label (only 0), so there is no segment to write")
    return sorted(ids)


def _check_labels(labels: np.ndarray, ids: list[int], frames: int, size: tuple[int, int]) -> np.ndarray:
    """`labels` as an integer `(T, H, W)` array matching the run, with only known ids."""
    array = np.asarray(labels)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"labels must be an integer label map; got dtype {array.dtype}")
    if array.ndim != 3:
        raise InputError(f"labels must be a (T, H, W) label map; got shape {array.shape}")
    if array.shape != (frames, *size):
        raise InputError(f"labels have shape {array.shape} but the source run has {frames} frames of "
                         f"{size[0]}x{size[1]} pixels")
    unknown = sorted(set(np.unique(array).tolist()) - {0, *ids})
    if unknown:
        raise InputError(f"labels {unknown} are not in the label table (its non-zero ids are {ids})")
    return array


def _check_probabilities(probabilities: np.ndarray | None, label_table: dict[int, str], ids: list[int],
                         shape: tuple[int, int, int]) -> np.ndarray:
    """`(T, S, H, W)` float32 per-segment probabilities from `(T, H, W)` (one segment only) or
    `(T, L, H, W)` with L = S or L = the table's size (channels in increasing id order)."""
    if probabilities is None:
        raise InputError("a FRACTIONAL DICOM SEG needs probabilities (T, H, W) or (T, L, H, W)")
    array = np.asarray(probabilities, dtype=np.float32)
    frames, rows, columns = shape
    if array.ndim == 3 and len(ids) == 1:
        array = array[:, None]
    if array.ndim != 4 or array.shape[0] != frames or array.shape[2:] != (rows, columns):
        raise InputError(f"probabilities have shape {np.shape(probabilities)}; expected ({frames}, L, {rows}, {columns})"
                         + (f" or ({frames}, {rows}, {columns})" if len(ids) == 1 else ""))
    if array.shape[1] == len(label_table) != len(ids):
        order = sorted(int(k) for k in label_table)
        array = array[:, [order.index(i) for i in ids]]
    elif array.shape[1] != len(ids):
        raise InputError(f"probabilities have {array.shape[1]} channels but the label table has {len(ids)} segments "
                         f"({len(label_table)} labels)")
    if not np.isfinite(array).all() or array.min() < -1e-6 or array.max() > 1 + 1e-6:
        raise InputError("probabilities must be finite and lie in [0, 1]")
    return array


# ----------------------------------------------------------------------------- building the SEG


def _copy_identity(seg: Dataset, source: Dataset) -> None:
    """Patient and study attributes from the source (empty where it has none)."""
    for keyword in COPIED_IDENTITY:
        if keyword in source:
            seg[keyword] = copy.deepcopy(source[keyword])
        else:
            setattr(seg, keyword, "")


def _series_and_equipment(seg: Dataset, source: Dataset, description: str, software_version: str) -> None:
    """General/Segmentation Series, (Enhanced) General Equipment, dates and SOP Common."""
    now = _dt.datetime.now()
    seg.SpecificCharacterSet = "ISO_IR 192"
    seg.SOPClassUID = SEGMENTATION_STORAGE
    seg.SOPInstanceUID = seg.file_meta.MediaStorageSOPInstanceUID
    seg.Modality = "SEG"
    seg.SeriesInstanceUID = generate_uid()
    seg.SeriesNumber = _series_number(source)
    seg.SeriesDescription = description
    seg.SeriesDate = seg.ContentDate = seg.InstanceCreationDate = now.strftime("%Y%m%d")
    seg.SeriesTime = seg.ContentTime = seg.InstanceCreationTime = now.strftime("%H%M%S")
    seg.InstanceNumber = 1
    seg.Manufacturer = "angioseg"
    seg.ManufacturerModelName = "angioseg"
    seg.DeviceSerialNumber = "angioseg"
    seg.SoftwareVersions = software_version


def _series_number(source: Dataset) -> int:
    """The source's Series Number + 1000 (1000 where it has none): a derived series nearby."""
    try:
        return int(source.get("SeriesNumber", 0) or 0) + 1000
    except (TypeError, ValueError):
        return 1000


def _lab_from_rgb(rgb: tuple[int, int, int]) -> list[int]:
    """sRGB (0-255) -> CIELab (D65) scaled as DICOM stores it: L 0..100 and a, b -128..127
    mapped linearly onto 0..65535 (PS3.3 C.10.7.1.1)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = (116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2]))
    scaled = (lab[0] / 100.0, (lab[1] + 128) / 255.0, (lab[2] + 128) / 255.0)
    return [int(round(float(np.clip(v, 0, 1)) * 65535)) for v in scaled]


def _segment_item(number: int, label: int, name: str, software_version: str) -> Dataset:
    """Segment Sequence item `number` for label id `label` (its colour: the overlay's)."""
    concept = segment_concept(name)
    item = Dataset()
    item.SegmentNumber = number
    item.SegmentLabel = name
    item.SegmentedPropertyCategoryCodeSequence = DicomSequence([_code_item(concept.category)])
    item.SegmentedPropertyTypeCodeSequence = DicomSequence([_code_item(concept.type)])
    item.SegmentAlgorithmType = "AUTOMATIC"
    item.SegmentAlgorithmName = f"angioseg {software_version}"[:64]
    item.RecommendedDisplayCIELabValue = _lab_from_rgb(overlay_colour(label))
    return item


def _segmentation_image(seg: Dataset, source: Dataset, fractional: bool, segments: list[Dataset]) -> None:
    """Segmentation Image and General Image modules (Image Pixel attributes but Pixel Data)."""
    seg.ImageType = ["DERIVED", "PRIMARY"]
    seg.PatientOrientation = copy.deepcopy(source.get("PatientOrientation", ""))  # General Image, type 2C
    seg.ContentLabel = "ANGIOSEG"
    seg.ContentDescription = "angioseg segmentation of an angiography run"
    seg.ContentCreatorName = ""
    seg.SamplesPerPixel = 1
    seg.PhotometricInterpretation = "MONOCHROME2"
    seg.PixelRepresentation = 0
    seg.BitsAllocated = seg.BitsStored = 8 if fractional else 1
    seg.HighBit = seg.BitsStored - 1
    seg.LossyImageCompression = "00"
    seg.SegmentationType = "FRACTIONAL" if fractional else "BINARY"
    if fractional:
        seg.SegmentationFractionalType = "PROBABILITY"
        seg.MaximumFractionalValue = MAX_FRACTION
    else:
        seg.SegmentsOverlap = "NO"
    seg.SegmentSequence = DicomSequence(segments)


def _references(seg: Dataset, headers: Sequence[Dataset]) -> None:
    """Common Instance Reference module: every source instance, by series."""
    by_series: dict[str, list[Dataset]] = {}
    for ds in headers:
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    series_items = []
    for series_uid, members in by_series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.ReferencedInstanceSequence = DicomSequence([_instance_reference(ds) for ds in members])
        series_items.append(item)
    seg.ReferencedSeriesSequence = DicomSequence(series_items)


def _instance_reference(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


def _dimensions(seg: Dataset) -> None:
    """Multi-frame Dimension module: segment number, then the source frame's temporal position."""
    organisation = generate_uid()
    item = Dataset()
    item.DimensionOrganizationUID = organisation
    seg.DimensionOrganizationSequence = DicomSequence([item])
    pointers = (("ReferencedSegmentNumber", "SegmentIdentificationSequence", "Segment Number"),
                ("TemporalPositionIndex", "FrameContentSequence", "Source Frame Position"))
    indices = []
    for attribute, group, label in pointers:
        index = Dataset()
        index.DimensionOrganizationUID = organisation
        index.DimensionIndexPointer = Tag(attribute)
        index.FunctionalGroupPointer = Tag(group)
        index.DimensionDescriptionLabel = label
        indices.append(index)
    seg.DimensionIndexSequence = DicomSequence(indices)


def _source_image_item(frame: SourceFrame) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = frame.dataset.SOPClassUID
    item.ReferencedSOPInstanceUID = frame.dataset.SOPInstanceUID
    if frame.frame_number is not None:
        item.ReferencedFrameNumber = frame.frame_number
    item.PurposeOfReferenceCodeSequence = DicomSequence([_code_item(_SOURCE_PURPOSE)])
    item.SpatialLocationsPreserved = "YES"
    return item


def _per_frame_item(segment: int, position: int, frame: SourceFrame, plane: Dataset | None) -> Dataset:
    """Per-Frame Functional Groups item of SEG frame (segment, 1-based source position)."""
    content = Dataset()
    content.DimensionIndexValues = [segment, position]
    content.TemporalPositionIndex = position
    derivation = Dataset()
    derivation.DerivationCodeSequence = DicomSequence([_code_item(_SEGMENTATION_DERIVATION)])
    derivation.SourceImageSequence = DicomSequence([_source_image_item(frame)])
    identification = Dataset()
    identification.ReferencedSegmentNumber = segment
    item = Dataset()
    item.FrameContentSequence = DicomSequence([content])
    item.DerivationImageSequence = DicomSequence([derivation])
    item.SegmentIdentificationSequence = DicomSequence([identification])
    if plane is not None:
        item.PlanePositionSequence = DicomSequence([plane])
    return item


# ----------------------------------------------------------------------------- geometry


def _functional_value(ds: Dataset, frame_number: int | None, group: str, keyword: str) -> Any:
    """`keyword` of a frame: top level, else the frame's Per-Frame item, else the Shared item."""
    if keyword in ds:
        return ds[keyword].value
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", None)
    items = []
    if per_frame and frame_number is not None and frame_number <= len(per_frame):
        items.append(per_frame[frame_number - 1])
    items.extend(ds.get("SharedFunctionalGroupsSequence", None) or [])
    for item in items:
        sequence = item.get(group, None)
        if sequence and keyword in sequence[0]:
            return sequence[0][keyword].value
    return None


def _numbers(value: Any, count: int) -> list[float] | None:
    """`count` finite floats from a DICOM multi-value, else None."""
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _common_measure(frames: Sequence[SourceFrame], keyword: str, count: int) -> list[float] | None:
    """A Pixel Measures value (Pixel Spacing: 2, Slice Thickness: 1) of the source where one
    positive value holds for every frame, else None."""
    values = {tuple(_numbers(_as_list(_functional_value(f.dataset, f.frame_number, "PixelMeasuresSequence", keyword)),
                             count) or ()) for f in frames}
    if len(values) != 1:
        return None
    (value,) = values
    return list(value) if value and min(value) > 0 else None


def _as_list(value: Any) -> Any:
    """A single DICOM number as a one-item list (multi-values as they are)."""
    return [value] if isinstance(value, (int, float, str)) else value


def _patient_geometry(frames: Sequence[SourceFrame]) -> tuple[list[float], list[list[float]]] | None:
    """(Image Orientation, one Image Position per frame) where the source has a Frame of
    Reference, one orientation and a position for every frame; else None (XA/XRF runs)."""
    if any("FrameOfReferenceUID" not in f.dataset for f in frames):
        return None
    if len({str(f.dataset.FrameOfReferenceUID) for f in frames}) != 1:
        return None
    orientations = {tuple(_numbers(_functional_value(f.dataset, f.frame_number, "PlaneOrientationSequence",
                                                     "ImageOrientationPatient"), 6) or ()) for f in frames}
    positions = [_numbers(_functional_value(f.dataset, f.frame_number, "PlanePositionSequence", "ImagePositionPatient"), 3)
                 for f in frames]
    if len(orientations) != 1 or not next(iter(orientations)) or any(p is None for p in positions):
        return None
    return list(next(iter(orientations))), positions  # type: ignore[return-value]


def _shared_groups(seg: Dataset, frames: Sequence[SourceFrame]) -> list[Dataset | None]:
    """Shared Functional Groups (Pixel Measures, Plane Orientation where valid) and the Frame
    of Reference; returns each source frame's Plane Position item (None without a geometry)."""
    shared = Dataset()
    spacing = _common_measure(frames, "PixelSpacing", 2)
    thickness = _common_measure(frames, "SliceThickness", 1)
    if spacing is not None:
        measures = Dataset()
        measures.PixelSpacing = [_ds(v) for v in spacing]
        shared.PixelMeasuresSequence = DicomSequence([measures])
    geometry = _patient_geometry(frames) if spacing is not None and thickness is not None else None
    planes: list[Dataset | None] = [None] * len(frames)
    if geometry is not None:
        measures.SliceThickness = _ds(thickness[0])
        orientation, positions = geometry
        seg.FrameOfReferenceUID = frames[0].dataset.FrameOfReferenceUID
        seg.PositionReferenceIndicator = frames[0].dataset.get("PositionReferenceIndicator", "")
        plane_orientation = Dataset()
        plane_orientation.ImageOrientationPatient = [_ds(v) for v in orientation]
        shared.PlaneOrientationSequence = DicomSequence([plane_orientation])
        planes = [_plane_position(p) for p in positions]
    seg.SharedFunctionalGroupsSequence = DicomSequence([shared])
    return planes


def _ds(value: float) -> pydicom.valuerep.DSfloat:
    """A decimal string value (at most 16 characters)."""
    return pydicom.valuerep.DSfloat(value, auto_format=True)


def _plane_position(position: list[float]) -> Dataset:
    item = Dataset()
    item.ImagePositionPatient = [_ds(v) for v in position]
    return item


# ----------------------------------------------------------------------------- pixels


def _binary_pixels(labels: np.ndarray, ids: list[int]) -> bytes:
    """1-bit frames, segment by segment, packed little-endian across frame borders, even length."""
    masks = np.stack([labels == label for label in ids])  # (S, T, H, W)
    packed = np.packbits(masks.reshape(-1), bitorder="little").tobytes()
    return packed + b"\0" if len(packed) % 2 else packed


def _fractional_pixels(probabilities: np.ndarray) -> bytes:
    """8-bit frames round(p * 255), segment by segment: `probabilities` is `(T, S, H, W)`."""
    values = np.rint(np.clip(probabilities, 0.0, 1.0) * MAX_FRACTION).astype(np.uint8)
    data = np.ascontiguousarray(values.transpose(1, 0, 2, 3)).tobytes()
    return data + b"\0" if len(data) % 2 else data


# ----------------------------------------------------------------------------- writing


def write_dicom_seg(
    source: str | os.PathLike[str] | Dataset | Sequence[Dataset],
    labels: np.ndarray,
    label_table: dict[int, str],
    out: str | os.PathLike[str],
    *,
    probabilities: np.ndarray | None = None,
    fractional: bool = False,
    series_description: str = "angioseg segmentation",
    software_version: str | None = None,
) -> Path:
    """Write a DICOM SEG of `labels` for the run `source`, atomically, to `out`; returns `out`.

    `source`: a DICOM file, a folder series, a dataset or a list of datasets (never modified).
    `labels`: `(T, H, W)` integers, 0 = background, T = the run's frame count. `label_table`:
    id -> name; each non-zero id is a segment. With `fractional`, `probabilities` `(T, H, W)`
    (one segment) or `(T, L, H, W)` (L = segments, or the table's size in increasing id order)
    in [0, 1] are stored as round(p * 255) (FRACTIONAL, PROBABILITY); otherwise the masks of
    `labels` are stored at 1 bit (BINARY). InputError (one line) for any mismatch.
    """
    from angioseg import __version__

    ids = _segment_ids(label_table)
    if len(series_description) > _MAX_LABEL_CHARS or "\\" in series_description:
        raise InputError(f"the series description must be at most {_MAX_LABEL_CHARS} characters without a backslash")
    headers = read_source_headers(source)
    frames = source_frames(headers)
    size = (int(headers[0].Rows), int(headers[0].Columns))
    labels = _check_labels(labels, ids, len(frames), size)
    fractions = _check_probabilities(probabilities, label_table, ids, labels.shape) if fractional else None
    version = str(software_version or __version__)
    seg = Dataset()
    seg.file_meta = file_meta(SEGMENTATION_STORAGE, generate_uid())
    _copy_identity(seg, headers[0])
    _series_and_equipment(seg, headers[0], series_description, version)
    segments = [_segment_item(n, label, label_table[label], version) for n, label in enumerate(ids, start=1)]
    _segmentation_image(seg, headers[0], fractional, segments)
    _references(seg, headers)
    _dimensions(seg)
    planes = _shared_groups(seg, frames)
    seg.PerFrameFunctionalGroupsSequence = DicomSequence([
        _per_frame_item(s, k + 1, frame, planes[k]) for s in range(1, len(ids) + 1) for k, frame in enumerate(frames)])
    seg.NumberOfFrames = len(ids) * len(frames)
    seg.Rows, seg.Columns = size
    seg.PixelData = _fractional_pixels(fractions) if fractions is not None else _binary_pixels(labels, ids)
    seg["PixelData"].VR = "OB"
    out = Path(out)
    with atomic_file(out) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return out


# ----------------------------------------------------------------------------- reading


def _frame_item(seg: Dataset, index: int, group: str) -> Dataset | None:
    """The `group` item of SEG frame `index` (0-based): its per-frame item, else the shared one."""
    per_frame = seg.get("PerFrameFunctionalGroupsSequence", None) or []
    shared = seg.get("SharedFunctionalGroupsSequence", None) or []
    for item in ([per_frame[index]] if index < len(per_frame) else []) + list(shared[:1]):
        sequence = item.get(group, None)
        if sequence:
            return sequence[0]
    return None


def _frame_position(seg: Dataset, index: int) -> int | None:
    """1-based source frame position of SEG frame `index`: Temporal Position Index, else the
    Referenced Frame Number of its source image."""
    content = _frame_item(seg, index, "FrameContentSequence")
    if content is not None and content.get("TemporalPositionIndex", None):
        return int(content.TemporalPositionIndex)
    derivation = _frame_item(seg, index, "DerivationImageSequence")
    for source in (derivation.get("SourceImageSequence", None) or []) if derivation is not None else []:
        if source.get("ReferencedFrameNumber", None):
            return int(source.ReferencedFrameNumber)
    return None


def _read_segmentation(path: Path) -> Dataset:
    """A Segmentation Storage dataset with pixels; InputError otherwise."""
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = pydicom.dcmread(path)
    except (*_DICOM_ERRORS, OSError) as error:
        raise InputError(f"{path} is not a readable DICOM file: {type(error).__name__}") from None
    if str(seg.get("SOPClassUID", "")) != SEGMENTATION_STORAGE or "PixelData" not in seg:
        raise InputError(f"{path} is not a DICOM Segmentation (SOP class {SEGMENTATION_STORAGE})")
    return seg


def read_segments(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[int, str]]:
    """A DICOM SEG's segments as `(T, S, H, W)` float32 in [0, 1] (BINARY 0/1, FRACTIONAL
    value / Maximum Fractional Value) and {segment number: segment label}. Frames are placed
    by their source frame position; positions no frame names stay 0."""
    path = Path(path)
    seg = _read_segmentation(path)
    table = {int(item.SegmentNumber): str(item.get("SegmentLabel", "") or f"segment {item.SegmentNumber}")
             for item in seg.SegmentSequence}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels = pydicom.pixels.pixel_array(seg)
    pixels = pixels.reshape(-1, int(seg.Rows), int(seg.Columns))
    scale = float(seg.get("MaximumFractionalValue", 1) or 1) if seg.get("SegmentationType") == "FRACTIONAL" else 1.0
    placed = []
    for index in range(pixels.shape[0]):
        identification = _frame_item(seg, index, "SegmentIdentificationSequence")
        position = _frame_position(seg, index)
        if identification is None or position is None or int(identification.ReferencedSegmentNumber) not in table:
            raise InputError(f"{path}: frame {index + 1} names no segment or no source frame position")
        placed.append((int(identification.ReferencedSegmentNumber), position))
    numbers = sorted(table)
    segments = np.zeros((max(p for _, p in placed), len(numbers), int(seg.Rows), int(seg.Columns)), dtype=np.float32)
    for index, (number, position) in enumerate(placed):
        segments[position - 1, numbers.index(number)] = pixels[index] / scale
    return segments, {n: table[n] for n in numbers}


def read_dicom_seg(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[int, str]]:
    """A DICOM SEG as a `(T, H, W)` uint8 label map and its table {0: "background", segment
    number: segment label}: each pixel takes the segment of highest value where that value is
    at least one half (FRACTIONAL) or set (BINARY), the lower number on a tie."""
    segments, table = read_segments(path)
    numbers = np.asarray(sorted(table), dtype=np.uint8 if max(table, default=0) < 256 else np.uint16)
    if segments.shape[1] == 0:
        return np.zeros((segments.shape[0], *segments.shape[2:]), dtype=np.uint8), {0: "background"}
    best = np.argmax(segments, axis=1)
    present = np.take_along_axis(segments, best[:, None], axis=1)[:, 0] >= 0.5
    labels = np.where(present, numbers[best], 0).astype(numbers.dtype)
    return labels, {0: "background", **table}
