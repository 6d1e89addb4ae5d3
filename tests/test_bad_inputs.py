"""Bad-input corpus through the command line (issue 18): every bad input gives exit code 2 and
one line naming the problem on stderr, no traceback, no output folder, its own bytes
unchanged and no patient identifier anywhere; every valid odd input gives a correct result."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pydicom
import pydicom.encaps
import pytest

from angioseg.cli.main import main
from angioseg.data.davis import DavisWriter
from angioseg.io import read_video, write_dicom, write_video_file
from angioseg.types import LabelMap, Video

PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "SECRETPID123"
IDENTIFIERS = (PATIENT_NAME, PATIENT_ID, "DOE", "JANE")
METHOD = "sato"


# ----------------------------------------------------------------------------- helpers


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fingerprint(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file under a folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def assert_one_line_error(code: int, err: str, *, naming: str | None = None) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("angioseg: error: "), err
    assert "Traceback" not in err
    if naming is not None:
        assert naming in lines[0], f"{naming!r} not named in {lines[0]!r}"


def assert_no_identifiers(*texts: str, folder: Path | None = None) -> None:
    blobs = [t.encode() for t in texts]
    if folder is not None and folder.exists():
        for path in folder.rglob("*"):
            blobs.append(str(path.relative_to(folder)).encode())
            if path.is_file():
                blobs.append(path.read_bytes())
    for blob in blobs:
        for identifier in IDENTIFIERS:
            assert identifier.encode() not in blob, identifier


def strict_json(path: Path) -> dict:
    def reject(token: str) -> None:
        raise AssertionError(f"{path} holds {token}")

    return json.loads(path.read_text(), parse_constant=reject)


def _grey(count: int = 3, height: int = 24, width: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, height, width)).astype(np.float32)


def _dicom(tmp_path: Path, name: str = "run.dcm", frames: int = 4, **fields: object) -> Path:
    """A 16-bit multi-frame DICOM with patient identifiers, `fields` set afterwards."""
    path = write_dicom(Video(_grey(frames), fps=10.0), tmp_path / name, bits_stored=16)
    ds = pydicom.dcmread(path)
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    for key, value in fields.items():
        setattr(ds, key, value)
    ds.save_as(path)
    return path


def _png(path: Path, image: np.ndarray) -> Path:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def _random_bytes(path: Path, seed: int) -> Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


# ----------------------------------------------------------------------------- bad inputs


def empty_file(tmp_path: Path) -> Path:
    (tmp_path / "empty.dcm").write_bytes(b"")
    return tmp_path / "empty.dcm"


def empty_npy(tmp_path: Path) -> Path:
    (tmp_path / "empty.npy").write_bytes(b"")
    return tmp_path / "empty.npy"


def truncated_dicom(tmp_path: Path) -> Path:
    data = _dicom(tmp_path, "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) * 2 // 3])
    return tmp_path / "cut.dcm"


def truncated_png(tmp_path: Path) -> Path:
    data = _png(tmp_path / "full.png", (_grey(1)[0] * 255).astype(np.uint8)).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.png"


def truncated_npy(tmp_path: Path) -> Path:
    np.save(tmp_path / "full.npy", _grey())
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.npy"


def truncated_npz(tmp_path: Path) -> Path:
    np.savez_compressed(tmp_path / "full.npz", frames=_grey())
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.npz"


def _random_case(suffix: str, seed: int) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        return _random_bytes(tmp_path / f"random{suffix}", seed)

    make.__name__ = f"random_bytes{suffix.replace('.', '_')}"
    return make


RANDOM_CASES = [_random_case(s, i) for i, s in enumerate((".dcm", ".png", ".jpg", ".tif", ".mp4", ".avi", ".npy", ".npz"))]


def dicom_without_pixels(tmp_path: Path) -> Path:
    path = _dicom(tmp_path, "no_pixels.dcm")
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    return path


def dicom_zero_frames(tmp_path: Path) -> Path:
    return _dicom(tmp_path, "zero_frames.dcm", NumberOfFrames=0)


def dicom_fewer_frames_declared(tmp_path: Path) -> Path:
    return _dicom(tmp_path, "four_of_eight.dcm", frames=8, NumberOfFrames=4)


def dicom_compressed_without_decoder(tmp_path: Path) -> Path:
    path = _dicom(tmp_path, "htj2k.dcm")
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.HTJ2KLossless
    ds.PixelData = pydicom.encaps.encapsulate([bytes(100)] * int(ds.NumberOfFrames))
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_bits_allocated_12(tmp_path: Path) -> Path:
    return _dicom(tmp_path, "bits12.dcm", BitsAllocated=12)


def dicom_colour_declared_on_grey(tmp_path: Path) -> Path:
    return _dicom(tmp_path, "spp3.dcm", SamplesPerPixel=3)


def dicom_huge_declared(tmp_path: Path) -> Path:
    return _dicom(tmp_path, "huge.dcm", Rows=60000, Columns=60000, NumberOfFrames=60000)


def dicom_corrupt_patient_id_vr(tmp_path: Path) -> Path:
    data = _dicom(tmp_path, "full.dcm").read_bytes()
    at = data.find(PATIENT_ID.encode())
    (tmp_path / "bad_vr.dcm").write_bytes(data[: at - 4] + b"FD" + data[at - 2 :])  # 12 bytes as 8-byte floats
    return tmp_path / "bad_vr.dcm"


def npy_zero_frames(tmp_path: Path) -> Path:
    np.save(tmp_path / "zero.npy", np.zeros((0, 8, 8), np.uint8))
    return tmp_path / "zero.npy"


def npy_huge_header(tmp_path: Path) -> Path:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"
    header = header.ljust(117) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(64)
    (tmp_path / "huge.npy").write_bytes(data)
    return tmp_path / "huge.npy"


def _npy(name: str, array: np.ndarray) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        np.save(tmp_path / name, array)
        return tmp_path / name

    make.__name__ = name.replace(".", "_")
    return make


def _npz_spacing(name: str, spacing: list[float]) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        np.savez(tmp_path / name, frames=_grey(), pixel_spacing=np.array(spacing))
        return tmp_path / name

    make.__name__ = name.replace(".", "_")
    return make


def folder_of_mixed_sizes(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    _png(folder / "f1.png", np.zeros((24, 24), np.uint8))
    _png(folder / "f2.png", np.zeros((24, 30), np.uint8))
    return folder


def truncated_video(tmp_path: Path) -> Path:
    write_video_file((_grey(5, 32, 32) * 255).astype(np.uint8), tmp_path / "full.mp4", fps=5)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:200])
    return tmp_path / "cut.mp4"


def zero_frame_video(tmp_path: Path) -> Path:
    path = tmp_path / "no_frames.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)
    assert path.stat().st_size > 0
    return path


BAD_INPUTS = [
    empty_file, empty_npy, truncated_dicom, truncated_png, truncated_npy, truncated_npz, *RANDOM_CASES,
    dicom_without_pixels, dicom_zero_frames, dicom_fewer_frames_declared, dicom_compressed_without_decoder,
    dicom_bits_allocated_12, dicom_colour_declared_on_grey, dicom_huge_declared, dicom_corrupt_patient_id_vr,
    npy_zero_frames, npy_huge_header,
    _npy("nan.npy", np.full((2, 8, 8), np.nan, np.float32)), _npy("inf.npy", np.full((2, 8, 8), np.inf)),
    _npy("complex.npy", np.ones((2, 8, 8), np.complex64)), _npy("four_d.npy", np.zeros((2, 8, 8, 5), np.uint8)),
    _npy("five_d.npy", np.zeros((2, 2, 8, 8, 3), np.uint8)), _npy("strings.npy", np.array([["a", "b"]])),
    _npz_spacing("nan_spacing.npz", [np.nan, 0.2]), _npz_spacing("inf_spacing.npz", [0.2, np.inf]),
    _npz_spacing("negative_spacing.npz", [-0.2, 0.2]),
    folder_of_mixed_sizes, truncated_video, zero_frame_video,
]

#: Where the message is expected to name something more specific than the file.
EXPECTED_WORDS = {
    "dicom_zero_frames": "NumberOfFrames 0", "dicom_fewer_frames_declared": "holds 8 frames",
    "dicom_bits_allocated_12": "BitsAllocated 12", "dicom_colour_declared_on_grey": "SamplesPerPixel 3",
    "dicom_huge_declared": "memory", "dicom_compressed_without_decoder": "decoder",
    "dicom_corrupt_patient_id_vr": "PatientID", "npy_huge_header": "(100000, 100000, 100000)",
    "nan_spacing_npz": "pixel_spacing", "inf_spacing_npz": "pixel_spacing", "zero_frame_video": "no decodable frames",
}


@pytest.mark.parametrize("verb", ["info", "segment"])
@pytest.mark.parametrize("make", BAD_INPUTS, ids=lambda f: f.__name__)
def test_bad_input(make: Callable[[Path], Path], verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make(tmp_path)
    before = fingerprint(source)
    out = tmp_path / "out"
    argv = ["info", source] if verb == "info" else ["segment", source, "-o", out, "--method", METHOD]
    code, stdout, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, naming=source.name)
    if make.__name__ in EXPECTED_WORDS:
        assert EXPECTED_WORDS[make.__name__] in err
    assert stdout == "" and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert fingerprint(source) == before
    assert_no_identifiers(stdout, err)


# ----------------------------------------------------------------------------- valid odd inputs


def signed_int16_npy(tmp_path: Path) -> Path:
    np.save(tmp_path / "signed.npy", np.linspace(-1000, 1000, 3 * 16 * 16).reshape(3, 16, 16).astype(np.int16))
    return tmp_path / "signed.npy"


def signed_dicom(tmp_path: Path) -> Path:
    path = _dicom(tmp_path, "signed.dcm")
    ds = pydicom.dcmread(path)
    raw = np.linspace(-2000, 2000, ds.pixel_array.size).reshape(ds.pixel_array.shape).astype(np.int16)
    ds.PixelRepresentation, ds.PixelData = 1, raw.tobytes()
    ds.save_as(path)
    return path


def monochrome1_dicom(tmp_path: Path) -> Path:
    return _dicom(tmp_path, "mono1.dcm", PhotometricInterpretation="MONOCHROME1")


def rgb_png(tmp_path: Path) -> Path:
    return _png(tmp_path / "colour.png", np.random.default_rng(5).integers(0, 255, (20, 28, 3), dtype=np.uint8))


def one_by_one(tmp_path: Path) -> Path:
    return _png(tmp_path / "dot.png", np.full((1, 1), 128, np.uint8))


def three_by_five(tmp_path: Path) -> Path:
    np.save(tmp_path / "small.npy", _grey(2, 3, 5))
    return tmp_path / "small.npy"


def one_frame_run(tmp_path: Path) -> Path:
    np.save(tmp_path / "still.npy", _grey(1, 20, 30)[0])
    return tmp_path / "still.npy"


def bool_npy(tmp_path: Path) -> Path:
    np.save(tmp_path / "bool.npy", _grey(2, 16, 16) > 0.5)
    return tmp_path / "bool.npy"


def spaced_unicode_name(tmp_path: Path) -> Path:
    np.save(tmp_path / "run 7 Gefäß 血管.npy", _grey(2, 16, 20))
    return tmp_path / "run 7 Gefäß 血管.npy"


VALID_INPUTS = [signed_int16_npy, signed_dicom, monochrome1_dicom, rgb_png, one_by_one, three_by_five, one_frame_run,
                bool_npy, spaced_unicode_name]


@pytest.mark.parametrize("make", VALID_INPUTS, ids=lambda f: f.__name__)
def test_valid_odd_input(make: Callable[[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make(tmp_path)
    before = fingerprint(source)
    code, stdout, err = run_cli(["info", source], capsys)
    assert code == 0 and err == "" and "frames" in stdout
    out = tmp_path / "out dir ü"
    code, stdout, err = run_cli(["segment", source, "-o", out, "--method", METHOD], capsys)
    assert code == 0, err
    report = strict_json(out / "report.json")
    assert report
    assert fingerprint(source) == before
    assert_no_identifiers(stdout, err, folder=out)


def test_signed_values_map_their_whole_range(tmp_path: Path) -> None:
    frames = read_video(signed_int16_npy(tmp_path)).frames
    assert frames.min() > 0.45 and frames.max() < 0.55  # -1000..1000 of -32768..32767, nothing clipped
    assert len(np.unique(frames)) > 100
    dicom = read_video(signed_dicom(tmp_path)).frames
    assert dicom.min() < 0.5 < dicom.max() and len(np.unique(dicom)) > 100


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    mono2 = read_video(_dicom(tmp_path, "mono2.dcm")).frames
    mono1 = read_video(monochrome1_dicom(tmp_path)).frames
    assert np.allclose(mono1, 1.0 - mono2, atol=1e-6)


# ----------------------------------------------------------------------------- outputs


@pytest.fixture
def good_input(tmp_path: Path) -> Path:
    np.save(tmp_path / "good.npy", _grey())
    return tmp_path / "good.npy"


def test_output_that_is_a_file(good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("mine")
    code, _, err = run_cli(["segment", good_input, "-o", tmp_path / "taken", "--method", METHOD], capsys)
    assert_one_line_error(code, err, naming="taken")
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize("where", ["under_a_file", "proc", "long_name", "long_parent"])
def test_unwritable_outputs(where: str, good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").write_text("x")
    out = {"under_a_file": tmp_path / "plain" / "out", "proc": Path("/proc/angioseg-out"),
           "long_name": tmp_path / ("n" * 256), "long_parent": tmp_path / ("p" * 300) / "out"}[where]
    code, _, err = run_cli(["segment", good_input, "-o", out, "--method", METHOD], capsys)
    assert_one_line_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npy", "plain"]


def test_output_dot(good_input: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["segment", good_input, "-o", ".", "--method", METHOD], capsys)
    assert_one_line_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npy"]


def test_input_name_over_255_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["info", tmp_path / ("x" * 300 + ".npy")], capsys)
    assert_one_line_error(code, err)


# ----------------------------------------------------------------------------- masks and data sets


def test_propagate_mask_of_another_size(good_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mask = _png(tmp_path / "mask.png", np.ones((10, 12), np.uint8))
    code, _, err = run_cli(["propagate", good_input, "--mask", mask, "--frame", 0, "-o", tmp_path / "out",
                            "--method", "flow-propagate"], capsys)
    assert_one_line_error(code, err, naming="mask.png")
    assert not (tmp_path / "out").exists()


def test_propagate_mask_with_labels_outside_the_table(good_input: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    labels = np.zeros((24, 24), np.uint8)
    labels[4:9, 4:9], labels[12:16, 12:16] = 1, 7
    mask = _png(tmp_path / "mask.png", labels)
    code, _, err = run_cli(["propagate", good_input, "--mask", mask, "--frame", 0, "--labels", '{"1": "vessel"}',
                            "-o", tmp_path / "out", "--method", "flow-propagate"], capsys)
    assert_one_line_error(code, err, naming="mask.png")
    assert "[7]" in err and not (tmp_path / "out").exists()


def _davis(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    labels = np.zeros((3, 24, 24), np.uint8)
    labels[:, 8:14, 4:20] = 1
    with DavisWriter(root, label_table={0: "background", 1: "vessel"}) as writer:
        writer.add("seq0", Video(_grey(), fps=10.0, pixel_spacing=(0.2, 0.2)), LabelMap(labels, {0: "background", 1: "vessel"}),
                   flow_backward=np.zeros((2, 24, 24, 2), np.float32))
    return root


def _edit_meta(root: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads((root / "meta.json").read_text())
    edit(meta)
    (root / "meta.json").write_text(json.dumps(meta))


META_EDITS: dict[str, Callable[[dict], None]] = {
    "fps_string": lambda m: m["sequences"]["seq0"].update(fps="fast"),
    "label_keys_not_integers": lambda m: m.update(label_table={"zero": "background", "one": "vessel"}),
    "label_table_list": lambda m: m.update(label_table=["background", "vessel"]),
    "sequences_list": lambda m: m.update(sequences=[m["sequences"]["seq0"]]),
    "spacing_scalar": lambda m: m["sequences"]["seq0"].update(pixel_spacing=0.2),
    "spacing_nan": lambda m: m["sequences"]["seq0"].update(pixel_spacing=[float("nan"), 0.2]),
}


def _evaluate(root: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: object) -> tuple[int, str, str]:
    return run_cli(["evaluate", "--method", METHOD, "--data", root, "-o", out, *extra], capsys)


@pytest.mark.parametrize("edit", sorted(META_EDITS))
def test_evaluate_bad_meta(edit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _davis(tmp_path)
    _edit_meta(root, META_EDITS[edit])
    before = fingerprint(root)
    code, _, err = _evaluate(root, tmp_path / "REPORT", capsys)
    assert_one_line_error(code, err, naming="meta.json")
    assert not list(tmp_path.glob("REPORT*")) and fingerprint(root) == before


def test_evaluate_truncated_motion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _davis(tmp_path)
    motion = root / "Motion" / "seq0.npz"
    motion.write_bytes(motion.read_bytes()[:100])
    code, _, err = _evaluate(root, tmp_path / "REPORT", capsys)
    assert_one_line_error(code, err, naming="seq0.npz")
    assert not list(tmp_path.glob("REPORT*"))


def test_evaluate_masks_of_another_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _davis(tmp_path)
    for path in (root / "Annotations" / "seq0").iterdir():
        _png(path, np.zeros((12, 12), np.uint8))
    code, _, err = _evaluate(root, tmp_path / "REPORT", capsys)
    assert_one_line_error(code, err, naming="seq0")
    assert not list(tmp_path.glob("REPORT*"))


def test_evaluate_masks_with_labels_outside_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _davis(tmp_path)
    first = sorted((root / "Annotations" / "seq0").iterdir())[0]
    labels = np.zeros((24, 24), np.uint8)
    labels[2:6, 2:6] = 5
    _png(first, labels)
    code, _, err = _evaluate(root, tmp_path / "REPORT", capsys)
    assert_one_line_error(code, err, naming="seq0")
    assert "[5]" in err and not list(tmp_path.glob("REPORT*"))


def test_evaluate_absent_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _evaluate(_davis(tmp_path), tmp_path / "REPORT", capsys, "--label", 99)
    assert_one_line_error(code, err, naming="label 99")
    assert not list(tmp_path.glob("REPORT*"))


def test_evaluate_writes_both_reports_or_neither(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _davis(tmp_path)
    (tmp_path / "REPORT.md").mkdir()
    code, _, err = _evaluate(root, tmp_path / "REPORT", capsys)
    assert_one_line_error(code, err, naming="REPORT.md")
    assert not (tmp_path / "REPORT.json").exists()
    (tmp_path / "REPORT.md").rmdir()
    code, _, err = _evaluate(root, tmp_path / "REPORT", capsys)
    assert code == 0, err
    assert strict_json(tmp_path / "REPORT.json")["cases"] == 1 and (tmp_path / "REPORT.md").read_text()


def test_train_leaves_no_output_on_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "not_data").mkdir()
    code, _, err = run_cli(["train", "cenet", "--data", tmp_path / "not_data", "--out", tmp_path / "run",
                            "--steps", 1], capsys)
    assert_one_line_error(code, err, naming="not_data")
    assert not (tmp_path / "run").exists()


def test_no_input_error_message_lacks_its_file(tmp_path: Path) -> None:
    """Every reader's error names the input (each case above checks it through the CLI; this
    guards the library entry point for a sample of them)."""
    from angioseg.errors import InputError

    for make in (npy_huge_header, dicom_zero_frames, _npz_spacing("nan.npz", [np.nan, 1.0])):
        path = make(tmp_path)
        with pytest.raises(InputError) as caught:
            read_video(path)
        assert str(path) in str(caught.value) and os.linesep not in str(caught.value)


# ----------------------------------------------------------------------------- the corpus as a batch


def test_the_corpus_as_one_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every case of the corpus in one archive through `angioseg batch`: each bad input becomes
    a failed row with a one-line error, each valid one a finished run, no crash, no traceback,
    no identifier in the summary, the inputs unchanged."""
    import sqlite3

    corpus = tmp_path / "archive"
    sources: dict[str, Path] = {}
    for make in (*BAD_INPUTS, *VALID_INPUTS):
        case = corpus / make.__name__
        case.mkdir(parents=True)
        sources[make.__name__] = make(case)
    before = {name: fingerprint(path) for name, path in sources.items()}
    out = tmp_path / "batch"
    code, stdout, err = run_cli(["batch", corpus, "-o", out, "--method", METHOD, "--retries", "0", "--no-ray"], capsys)
    assert code == 1, err  # some runs failed, the batch finished
    assert "Traceback" not in err and "Traceback" not in stdout
    with sqlite3.connect(out / "batch.sqlite") as db:
        rows = {path: (status, error) for path, status, error in db.execute("SELECT input, status, error FROM runs")}
    assert len(rows) >= 30 and {s for s, _ in rows.values()} <= {"done", "failed"}
    bad = {make.__name__ for make in BAD_INPUTS}
    for name, source in sources.items():  # a case folder may also hold the valid file it was made from
        relative = source.relative_to(tmp_path)  # an image is read as its folder's image sequence
        status, error = rows.get(relative.as_posix()) or rows[relative.parent.as_posix()]
        if name in bad:
            assert status == "failed" and error and "\n" not in error, name
        else:
            assert status == "done", (name, error)
    assert {name: fingerprint(path) for name, path in sources.items()} == before
    assert_no_identifiers(stdout, err, (out / "summary.csv").read_text(), (out / "summary.jsonl").read_text())
