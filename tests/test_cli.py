"""The command line end to end: phantom data sets, info, make-videos, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from angioseg.cli.main import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "set"
    assert main(["data", "phantom", "--out", str(out), "--n", "2", "--seed", "0", "--size", "64", "--frames", "8", "--fps", "7.5"]) == 0
    return out


def info_json(capsys, path: Path) -> dict:
    code, out, err = run_cli(capsys, "info", "--json", path)
    assert code == 0, err
    return json.loads(out)


def test_phantom_writes_davis_folder_dicom_and_overlay(phantom_folder, capsys):
    meta = json.loads((phantom_folder / "meta.json").read_text())
    assert meta["label_table"] == {"0": "background", "1": "vessel", "2": "catheter"}
    assert sorted(meta["sequences"]) == ["phantom_000", "phantom_001"]
    for name in meta["sequences"]:
        assert len(list((phantom_folder / "JPEGImages" / name).glob("*.png"))) == 8
        assert len(list((phantom_folder / "Annotations" / name).glob("*.png"))) == 8
        assert (phantom_folder / "Motion" / f"{name}.npz").exists()
    dicom = info_json(capsys, phantom_folder / "DICOM" / "phantom_000.dcm")
    assert dicom["frames"] == 8 and dicom["source_kind"] == "dicom"
    assert dicom["fps"] == pytest.approx(7.5, abs=1e-3)
    overlay = info_json(capsys, phantom_folder / "Overlays" / "phantom_000.mp4")
    assert overlay["frames"] == 8 and overlay["source_kind"] == "video"
    assert overlay["fps"] == pytest.approx(7.5, abs=1e-3)


def test_info_prints_aligned_text(phantom_folder, capsys):
    code, out, _ = run_cli(capsys, "info", phantom_folder / "DICOM" / "phantom_001.dcm")
    assert code == 0
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert lines["frames"].strip() == "8"
    assert lines["source_kind"].strip() == "dicom"


def test_same_seed_gives_byte_identical_masks(phantom_folder, tmp_path):
    again = tmp_path / "again"
    assert main(["data", "phantom", "--out", str(again), "--n", "2", "--seed", "0", "--size", "64", "--frames", "8", "--fps", "7.5", "--no-dicom", "--no-overlay"]) == 0
    for first in sorted((phantom_folder / "Annotations").rglob("*.png")):
        second = again / first.relative_to(phantom_folder)
        assert first.read_bytes() == second.read_bytes()
    other = tmp_path / "other"
    assert main(["data", "phantom", "--out", str(other), "--n", "1", "--seed", "1", "--size", "64", "--frames", "8", "--no-dicom", "--no-overlay", "--no-motion"]) == 0
    assert (other / "Annotations/phantom_000/00004.png").read_bytes() != (again / "Annotations/phantom_000/00004.png").read_bytes()


def test_davis_folder_reads_back(phantom_folder):
    from angioseg.data.davis import DavisFolder

    folder = DavisFolder(phantom_folder)
    sequence = folder.load("phantom_000")
    assert sequence.video.shape == (8, 64, 64)
    assert sequence.video.fps == pytest.approx(7.5)
    assert sequence.masks is not None and set(np.unique(sequence.masks.labels)) <= {0, 1, 2}
    assert sequence.masks.label_table[2] == "catheter"
    assert sequence.flow_backward.shape == (7, 64, 64, 2)


def write_png(path: Path, array: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_make_videos_from_image_and_mask_folders(tmp_path, capsys):
    image = np.full((64, 64), 200, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    image[30:34, 5:60] = 90
    mask[30:34, 5:60] = 255
    for name in ("a2", "a10"):
        write_png(tmp_path / "img" / f"{name}.png", image)
        write_png(tmp_path / "msk" / f"{name}.png", mask)
    out = tmp_path / "videos"
    code, _, err = run_cli(capsys, "data", "make-videos", "--images", tmp_path / "img", "--masks", tmp_path / "msk", "--out", out, "--frames", "6", "--seed", "0")
    assert code == 0, err
    meta = json.loads((out / "meta.json").read_text())
    assert list(meta["sequences"]) == ["a2", "a10"]
    assert meta["label_table"] == {"0": "background", "1": "vessel"}
    assert len(list((out / "Annotations" / "a10").glob("*.png"))) == 6


def bad_inputs(root: Path) -> dict[str, Path]:
    """A corpus of bad inputs for `angioseg info`, each made here."""
    root.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Path] = {"missing": root / "does-not-exist.dcm"}
    (root / "empty.dcm").write_bytes(b"")
    cases["empty file"] = root / "empty.dcm"
    (root / "random.dcm").write_bytes(np.random.default_rng(0).bytes(4096))
    cases["random bytes"] = root / "random.dcm"
    (root / "text.mp4").write_text("this is not a video\n")
    cases["text as mp4"] = root / "text.mp4"
    good_png = root / "good.png"
    write_png(good_png, np.full((32, 32), 128, np.uint8))
    (root / "truncated.png").write_bytes(good_png.read_bytes()[:40])
    cases["truncated png"] = root / "truncated.png"
    (root / "no-images").mkdir(exist_ok=True)
    (root / "no-images" / "notes.txt").write_text("nothing here")
    cases["folder without images"] = root / "no-images"
    write_png(root / "mixed" / "1.png", np.zeros((16, 16), np.uint8))
    write_png(root / "mixed" / "2.png", np.zeros((16, 20), np.uint8))
    cases["mixed sizes"] = root / "mixed"
    np.save(root / "nan.npy", np.full((2, 8, 8), np.nan, np.float32))
    cases["npy with NaN"] = root / "nan.npy"
    np.save(root / "five_d.npy", np.zeros((1, 2, 3, 4, 5), np.float32))
    cases["npy of wrong rank"] = root / "five_d.npy"
    np.savez(root / "none.npz")
    cases["npz without arrays"] = root / "none.npz"
    cases["truncated dicom"] = _truncated_dicom(root)
    return cases


def _truncated_dicom(root: Path) -> Path:
    from angioseg.io import write_dicom
    from angioseg.types import Video

    full = root / "full.dcm"
    write_dicom(Video(np.random.default_rng(1).random((4, 32, 32)).astype(np.float32), fps=15), full, bits_stored=8)
    data = full.read_bytes()
    (root / "truncated.dcm").write_bytes(data[: len(data) - 2000])
    return root / "truncated.dcm"


def test_bad_input_corpus_gives_one_line_and_exit_2(tmp_path, capsys):
    cases = bad_inputs(tmp_path / "bad")
    assert len(cases) >= 10
    for label, path in cases.items():
        code, out, err = run_cli(capsys, "info", path)
        assert code == 2, f"{label}: exit {code}"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("angioseg: error: "), f"{label}: {err!r}"
        assert path.name in lines[0], f"{label}: message does not name the file: {lines[0]}"
        assert "Traceback" not in err and out == ""


def test_make_videos_mask_size_mismatch_leaves_no_output(tmp_path, capsys):
    write_png(tmp_path / "img" / "1.png", np.full((32, 32), 100, np.uint8))
    write_png(tmp_path / "img" / "2.png", np.full((32, 32), 100, np.uint8))
    ok_mask = np.zeros((32, 32), np.uint8)
    ok_mask[10:14, 2:30] = 255
    write_png(tmp_path / "msk" / "1.png", ok_mask)
    write_png(tmp_path / "msk" / "2.png", np.zeros((40, 32), np.uint8))
    out = tmp_path / "videos"
    code, _, err = run_cli(capsys, "data", "make-videos", "--images", tmp_path / "img", "--masks", tmp_path / "msk", "--out", out, "--frames", "4")
    assert code == 2
    assert "2.png" in err and "32x40" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["data", "phantom", "--out", "x", "--n", "0"], "positive integer"),
        (["data", "phantom", "--out", "x", "--fps", "abc"], "frame rate"),
        (["data", "phantom"], "--out"),
        (["nonsense-verb"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, fragment):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err


def test_console_script_exit_code_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "angioseg.cli.main", "info", str(tmp_path / "missing.avi")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "missing.avi" in result.stderr
