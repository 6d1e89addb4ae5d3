"""DICOM SEG of angiography runs (`angioseg.io.dicom_seg`, `angioseg.pipelines.dicom_seg`,
`angioseg segment --dicom-seg`): frame-by-frame references, round trips through pydicom,
highdicom and `read_dicom_seg`, dciodvfy, bad inputs, and patient identifiers kept out of
reports, messages and logs."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from angioseg.cli.main import main
from angioseg.errors import InputError
from angioseg.io import read_dicom_folder, write_dicom, write_video_file
from angioseg.io.dicom_seg import (
    GENERIC_CONCEPT,
    SEGMENTATION_STORAGE,
    read_dicom_seg,
    read_segments,
    segment_concept,
    write_dicom_seg,
)
from angioseg.pipelines.dicom_seg import export_dicom_seg

FRAMES, SIZE = 30, 64
TABLE = {0: "background", 1: "vessel", 2: "catheter"}
PATIENT_NAME, PATIENT_ID, BIRTH_DATE = "Quixote^Alonso", "PID-8675309", "19471105"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 30-frame 64x64 phantom XA run (vessel + catheter) written by angioseg's DICOM writer,
    with patient identifiers filled in, and its exact label map."""
    from angioseg.data.phantom import PhantomParams, generate_phantom

    params = PhantomParams.sample(np.random.default_rng(3), size=SIZE, frames=FRAMES, fps=15.0)
    run = generate_phantom(params, seed=3)
    assert run.masks.label_table == TABLE
    path = tmp_path_factory.mktemp("source") / "run.dcm"
    write_dicom(run.video, path, bits_stored=8, fps_tag="FrameTime", pixel_spacing=(0.3, 0.3))
    ds = pydicom.dcmread(path)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = PATIENT_NAME, PATIENT_ID, BIRTH_DATE, "O"
    ds.AccessionNumber, ds.StudyID = "ACC-4711", "S-17"
    ds.save_as(path, enforce_file_format=True)
    labels = run.masks.labels.astype(np.uint8)
    assert set(np.unique(labels)) == {0, 1, 2}
    return path, labels


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's lines that start with 'Error' (the test skips where dciodvfy is absent)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; scripts/setup.sh installs it")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    assert any("Segmentation" in line for line in lines), lines  # it recognised the IOD
    return [line for line in lines if line.startswith("Error")]


def single_frame_series(source: Path, folder: Path, count: int) -> list[str]:
    """`count` single-frame secondary-capture instances of the source's first frames, their
    InstanceNumbers reversed against their file names; returns their SOP Instance UIDs in
    InstanceNumber order (the order angioseg reads them in)."""
    ds = pydicom.dcmread(source)
    pixels = ds.pixel_array
    folder.mkdir()
    uids = {}
    for index in range(count):
        one = copy.deepcopy(ds)
        for keyword in ("NumberOfFrames", "FrameTime", "FrameIncrementPointer"):
            delattr(one, keyword)
        one.SOPClassUID = one.file_meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
        one.SOPInstanceUID = one.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        one.Modality, one.ConversionType = "OT", "WSD"
        one.InstanceNumber = count - index
        one.PixelData = pixels[index].tobytes()
        one.save_as(folder / f"img{index:02d}.dcm", enforce_file_format=True)
        uids[count - index] = one.SOPInstanceUID
    return [uids[n] for n in sorted(uids)]


# ----------------------------------------------------------------------------- the object


def test_multiframe_xa_round_trip_references_every_frame(phantom, tmp_path):
    source, labels = phantom
    before = sha(source)
    out = write_dicom_seg(source, labels, TABLE, tmp_path / "seg.dcm")
    assert out == tmp_path / "seg.dcm" and sha(source) == before
    src = pydicom.dcmread(source, stop_before_pixels=True)
    seg = pydicom.dcmread(out)
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert int(seg.NumberOfFrames) == 2 * FRAMES and (seg.Rows, seg.Columns) == (SIZE, SIZE)
    assert [(s.SegmentNumber, s.SegmentLabel) for s in seg.SegmentSequence] == [(1, "vessel"), (2, "catheter")]
    assert seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeValue == "19923001"
    assert seg.StudyInstanceUID == src.StudyInstanceUID and seg.SeriesInstanceUID != src.SeriesInstanceUID
    assert "FrameOfReferenceUID" not in seg
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    for index, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        segment, frame = divmod(index, FRAMES)
        reference = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert reference.ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert reference.ReferencedSOPClassUID == src.SOPClassUID
        assert int(reference.ReferencedFrameNumber) == frame + 1
        assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
        assert item.SegmentIdentificationSequence[0].ReferencedSegmentNumber == segment + 1
        assert list(item.FrameContentSequence[0].DimensionIndexValues) == [segment + 1, frame + 1]
    expected = np.concatenate([labels == 1, labels == 2]).astype(np.uint8)
    assert np.array_equal(seg.pixel_array, expected)
    back, table = read_dicom_seg(out)
    assert back.dtype == np.uint8 and np.array_equal(back, labels) and table == TABLE


def test_highdicom_reads_the_seg(phantom, tmp_path):
    hd = pytest.importorskip("highdicom")
    source, labels = phantom
    out = write_dicom_seg(source, labels, TABLE, tmp_path / "seg.dcm")
    seg = hd.seg.segread(out)
    src = pydicom.dcmread(source, stop_before_pixels=True)
    assert seg.number_of_segments == 2
    assert [seg.get_segment_description(n).segment_label for n in (1, 2)] == ["vessel", "catheter"]
    combined = seg.get_pixels_by_source_frame(source_sop_instance_uid=src.SOPInstanceUID,
                                              source_frame_numbers=list(range(1, FRAMES + 1)), combine_segments=True)
    assert np.array_equal(combined, labels)


def test_dciodvfy_accepts_binary_and_fractional(phantom, tmp_path):
    source, labels = phantom
    binary = write_dicom_seg(source, labels, TABLE, tmp_path / "binary.dcm")
    assert dciodvfy_errors(binary) == []
    probabilities = np.random.default_rng(0).random((FRAMES, 2, SIZE, SIZE), dtype=np.float32)
    fractional = write_dicom_seg(source, labels, TABLE, tmp_path / "fractional.dcm", probabilities=probabilities, fractional=True)
    assert dciodvfy_errors(fractional) == []


def test_fractional_round_trip_within_one_step(phantom, tmp_path):
    source, labels = phantom
    rng = np.random.default_rng(1)
    probabilities = rng.random((FRAMES, 3, SIZE, SIZE), dtype=np.float32)  # (T, C, H, W): the table's three labels
    out = write_dicom_seg(source, labels, TABLE, tmp_path / "fractional.dcm", probabilities=probabilities, fractional=True)
    seg = pydicom.dcmread(out)
    assert seg.SegmentationType == "FRACTIONAL" and seg.SegmentationFractionalType == "PROBABILITY"
    assert int(seg.MaximumFractionalValue) == 255 and int(seg.BitsAllocated) == 8
    segments, table = read_segments(out)
    assert table == {1: "vessel", 2: "catheter"} and segments.shape == (FRAMES, 2, SIZE, SIZE)
    assert np.abs(segments - probabilities[:, 1:]).max() <= 1 / 255
    labels_back, _ = read_dicom_seg(out)  # the most probable segment where its stored value reaches 1/2
    stored = (np.rint(probabilities[:, 1:] * 255) / 255).astype(np.float32)
    expected = np.where(stored.max(axis=1) >= 0.5, stored.argmax(axis=1) + 1, 0)
    assert np.array_equal(labels_back, expected)


def test_pixel_spacing_is_shared_and_the_dataset_source_is_left_alone(phantom, tmp_path):
    source, labels = phantom
    ds = pydicom.dcmread(source)
    ds.PixelSpacing = [0.25, 0.25]
    snapshot = copy.deepcopy(ds)
    out = write_dicom_seg(ds, labels, TABLE, tmp_path / "seg.dcm")
    assert ds == snapshot
    seg = pydicom.dcmread(out)
    assert [float(v) for v in seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing] == [0.25, 0.25]
    assert "PlaneOrientationSequence" not in seg.SharedFunctionalGroupsSequence[0]  # no Frame of Reference in XA
    assert dciodvfy_errors(out) == []


def test_folder_series_is_referenced_in_reading_order(phantom, tmp_path):
    source, labels = phantom
    uids = single_frame_series(source, tmp_path / "series", 5)
    video = read_dicom_folder(tmp_path / "series")
    full = pydicom.dcmread(source).pixel_array
    assert np.allclose(video.frames, full[:5][::-1] / 255.0, atol=1e-6)  # InstanceNumber order: last file first
    series_labels = labels[:5][::-1].copy()
    out = export_dicom_seg(tmp_path / "series", series_labels, TABLE, tmp_path / "seg.dcm")
    seg = pydicom.dcmread(out)
    assert int(seg.NumberOfFrames) == 10
    for index, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        reference = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert reference.ReferencedSOPInstanceUID == uids[index % 5]
        assert "ReferencedFrameNumber" not in reference
    assert len(seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == 5
    back, table = read_dicom_seg(out)
    assert np.array_equal(back, series_labels) and table == TABLE
    assert dciodvfy_errors(out) == []


def test_segment_numbers_follow_label_ids(phantom, tmp_path):
    source, labels = phantom
    relabelled = np.where(labels == 2, 5, labels).astype(np.uint8)
    out = write_dicom_seg(source, relabelled, {0: "background", 1: "vessel", 5: "electrode", 9: "stent graft"}, tmp_path / "seg.dcm")
    seg = pydicom.dcmread(out)
    segments = [(s.SegmentNumber, s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeValue) for s in seg.SegmentSequence]
    assert segments == [(1, "vessel", "59820001"), (2, "electrode", "360129009"), (3, "stent graft", "85756007")]
    back, table = read_dicom_seg(out)
    assert table == {0: "background", 1: "vessel", 2: "electrode", 3: "stent graft"}
    assert np.array_equal(back, np.where(labels == 2, 2, labels))


# ----------------------------------------------------------------------------- coded concepts


@pytest.mark.parametrize("name", ["vessel", "catheter", "guidewire", "marker", "electrode", "sternal_wire", "clip", "liver", "tumour"])
def test_concepts_are_codes_of_the_dicom_standard(name):
    """Every code is one that DICOM PS3.16 lists (pydicom ships its code dictionary)."""
    from pydicom.sr._concepts_dict import concepts

    concept = segment_concept(name)
    assert concept != GENERIC_CONCEPT
    for code in concept:
        meanings = {m.lower() for entry in concepts[code.scheme].values() if code.value in entry
                    for m in [entry[code.value][0]]}
        assert code.meaning.lower() in meanings, (name, code)
    assert concept.category.value in {"91723000", "260787004", "49755003"}


def test_unknown_names_get_the_generic_concept():
    assert segment_concept("stent graft") == GENERIC_CONCEPT
    assert segment_concept("Tumor") == segment_concept("tumour")


# ----------------------------------------------------------------------------- bad inputs


def one_line_error(call) -> str:
    with pytest.raises(InputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_inputs_are_one_line_input_errors(phantom, tmp_path):
    source, labels = phantom
    out = tmp_path / "seg.dcm"
    message = one_line_error(lambda: write_dicom_seg(source, labels[:-1], TABLE, out))
    assert message == f"labels have shape ({FRAMES - 1}, {SIZE}, {SIZE}) but the source run has {FRAMES} frames of {SIZE}x{SIZE} pixels"
    message = one_line_error(lambda: write_dicom_seg(source, labels, {0: "background", 1: "vessel"}, out))
    assert message == "labels [2] are not in the label table (its non-zero ids are [1])"
    assert "needs probabilities" in one_line_error(lambda: write_dicom_seg(source, labels, TABLE, out, fractional=True))
    wrong = np.zeros((FRAMES, 4, SIZE, SIZE), dtype=np.float32)
    assert "4 channels" in one_line_error(lambda: write_dicom_seg(source, labels, TABLE, out, probabilities=wrong, fractional=True))
    assert "no foreground label" in one_line_error(lambda: write_dicom_seg(source, labels * 0, {0: "background"}, out))
    video = tmp_path / "run.mp4"
    write_video_file(np.zeros((4, 32, 32), dtype=np.float32), video, fps=10)
    message = one_line_error(lambda: write_dicom_seg(video, labels, TABLE, out))
    assert message.startswith("DICOM SEG needs a DICOM source run; ") and "run.mp4" in message
    assert not out.exists() and not list(tmp_path.glob(".seg*"))


def test_messages_name_no_patient_data(phantom, tmp_path):
    source, labels = phantom
    ds = pydicom.dcmread(source)
    del ds.SOPInstanceUID
    message = one_line_error(lambda: write_dicom_seg(ds, labels, TABLE, tmp_path / "seg.dcm"))
    assert message == "run.dcm has no SOPInstanceUID, which a DICOM SEG must reference"
    ds.filename = None  # a dataset built in memory is named by its position
    message = one_line_error(lambda: write_dicom_seg([ds], labels, TABLE, tmp_path / "seg.dcm"))
    assert message == "the source dataset has no SOPInstanceUID, which a DICOM SEG must reference"


# ----------------------------------------------------------------------------- command line


def test_cli_video_input_with_dicom_seg_fails_before_writing(tmp_path, capsys):
    video = tmp_path / "VIDEO.mp4"
    write_video_file(np.random.default_rng(0).random((4, 32, 32), dtype=np.float32), video, fps=10)
    out = tmp_path / "seg"
    code = main(["segment", str(video), "-o", str(out), "--dicom-seg", "--method", "frangi", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "DICOM SEG needs a DICOM source run" in captured.err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["VIDEO.mp4"]


def test_cli_bundle_holds_the_seg_and_no_identifier_leaks(phantom, tmp_path, capsys, caplog):
    source, _ = phantom
    out = tmp_path / "bundle"
    with caplog.at_level(logging.DEBUG):
        code = main(["segment", str(source), "-o", str(out), "--dicom-seg", "--method", "frangi", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    seg = pydicom.dcmread(out / "segmentation.dcm")
    assert str(seg.PatientName) == PATIENT_NAME and seg.PatientID == PATIENT_ID and seg.PatientBirthDate == BIRTH_DATE
    labels, table = read_dicom_seg(out / "segmentation.dcm")
    with np.load(out / "masks.npz") as masks:
        assert np.array_equal(labels, masks["labels"])
    report = (out / "report.json").read_text()
    assert json.loads(report)["dicom_seg"] == "segmentation.dcm"
    texts = {"report.json": report, "stdout": captured.out, "stderr": captured.err, "log": caplog.text,
             "names": " ".join(p.name for p in out.rglob("*"))}
    for identifier in (*PATIENT_NAME.split("^"), PATIENT_ID, BIRTH_DATE, "ACC-4711"):
        for where, text in texts.items():
            assert identifier not in text, (identifier, where)
    again = main(["segment", str(source), "-o", str(out), "--dicom-seg", "--method", "frangi", "--threads", "1", "--overwrite"])
    assert again == 0  # a bundle with its SEG is recognised as angioseg's own output
