"""The bundle writer never destroys data: `angioseg segment -o` refuses the input, the input's
folder and foreign non-empty folders (one line, exit 2, every input byte in place), fails fast
on an unwritable target, locks the target, cleans up after SIGTERM and stale temporaries."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from angioseg.cli.main import main
from angioseg.errors import InputError
from angioseg.io import write_dicom
from angioseg.io.atomic import atomic_directory, output_lock
from angioseg.types import Video


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path -> SHA-256): a byte-for-byte snapshot."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A folder holding a 4-frame DICOM run and a notes file a user keeps beside it."""
    folder = tmp_path / "run"
    folder.mkdir()
    frames = np.full((4, 48, 48), 0.8, np.float32)
    frames[:, 20:24, 4:44] = 0.3
    write_dicom(Video(frames, fps=10), folder / "in.dcm")
    (folder / "notes.txt").write_text("keep me\n")
    return folder


@pytest.fixture
def frames_folder(tmp_path: Path) -> Path:
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        image = np.full((48, 48), 200, np.uint8)
        cv2.line(image, (4, 20 + t), (44, 22 + t), 70, 3)
        cv2.imwrite(str(folder / f"{t:03d}.png"), image)
    return folder


def _refused(capsys, before: dict[str, str], folder: Path, *argv) -> str:
    code, err = run_cli(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert fingerprint(folder) == before
    return err


def test_output_equal_to_the_input_folder_is_refused(frames_folder, capsys):
    before = fingerprint(frames_folder)
    err = _refused(capsys, before, frames_folder, "segment", frames_folder, "-o", frames_folder, "--method", "frangi")
    assert "contains the input" in err


def test_output_equal_to_the_input_files_folder_is_refused(run_folder, capsys):
    before = fingerprint(run_folder)
    err = _refused(capsys, before, run_folder, "segment", run_folder / "in.dcm", "-o", run_folder, "--method", "frangi")
    assert "contains the input" in err
    err = _refused(capsys, before, run_folder, "segment", run_folder / "in.dcm", "-o", run_folder / "in.dcm", "--method", "frangi")
    assert "in.dcm" in err


def test_output_inside_an_input_folder_is_refused(frames_folder, capsys):
    before = fingerprint(frames_folder)
    err = _refused(capsys, before, frames_folder, "segment", frames_folder, "-o", frames_folder / "seg", "--method", "frangi")
    assert "inside the input folder" in err
    assert not (frames_folder / "seg").exists()


def test_a_non_empty_foreign_folder_is_refused_even_with_overwrite(run_folder, tmp_path, capsys):
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.docx").write_bytes(b"years of work")
    before = fingerprint(foreign)
    for extra in ((), ("--overwrite",)):
        err = _refused(capsys, before, foreign, "segment", run_folder / "in.dcm", "-o", foreign, "--method", "frangi", *extra)
        assert "not an angioseg output" in err


def test_an_earlier_bundle_needs_overwrite_and_a_file_in_it_protects_it(run_folder, tmp_path, capsys):
    out = tmp_path / "seg"
    assert run_cli(capsys, "segment", run_folder / "in.dcm", "-o", out, "--method", "frangi")[0] == 0
    first = fingerprint(out)
    code, err = run_cli(capsys, "segment", run_folder / "in.dcm", "-o", out, "--method", "sato")
    assert code == 2 and "--overwrite" in err and fingerprint(out) == first
    assert run_cli(capsys, "segment", run_folder / "in.dcm", "-o", out, "--method", "sato", "--overwrite")[0] == 0
    assert json.loads((out / "report.json").read_text())["method"] == "sato"
    (out / "my_notes.txt").write_text("mine")  # a user's file inside a bundle: no longer only ours
    code, err = run_cli(capsys, "segment", run_folder / "in.dcm", "-o", out, "--method", "frangi", "--overwrite")
    assert code == 2 and (out / "my_notes.txt").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".seg.")]  # no temporary or lock left


def test_an_unwritable_output_fails_before_the_method_runs(tmp_path):
    """A 60-frame 512 x 512 run and DeNVeR, which trains for minutes on it: the refusal comes
    within seconds of the interpreter's start, so the method never ran. (The margin is wide so
    that a busy machine does not fail it; the method alone would take far longer.)"""
    if os.geteuid() == 0:
        target_parent = tmp_path / "a_file"
        target_parent.write_text("not a folder")  # root may write anywhere: a file in the way instead
        out = target_parent / "seg"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        out = locked / "seg"
    frames = np.random.default_rng(0).random((60, 512, 512)).astype(np.float32)
    run = tmp_path / "run.npy"
    np.save(run, frames)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "angioseg.cli.main", "segment", str(run), "-o", str(out),
                             "--method", "denver"], capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot write" in result.stderr or "not a folder" in result.stderr
    assert elapsed < 15.0 + _python_start_seconds(), elapsed
    assert not out.exists()


def _python_start_seconds() -> float:
    """The time a bare `python -c "import angioseg.cli.main"` takes here (not the check's)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import angioseg.cli.main"], check=True)
    return time.perf_counter() - start


def test_output_name_too_long_is_one_line(run_folder, tmp_path, capsys):
    code, err = run_cli(capsys, "segment", run_folder / "in.dcm", "-o", tmp_path / ("x" * 250), "--method", "frangi")
    assert code == 2 and "too long" in err


def test_a_second_writer_to_the_same_folder_fails_at_once(tmp_path):
    target = tmp_path / "out"
    with output_lock(target):
        with pytest.raises(InputError, match="another angioseg run is writing"):
            with atomic_directory(target):
                pass
    with atomic_directory(target) as tmp:  # released: the next writer goes ahead
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_temporaries_of_a_dead_writer_are_removed(tmp_path):
    target = tmp_path / "out"
    stale = tmp_path / ".out.abc12345.tmp"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"half")
    unrelated = tmp_path / ".other.abc12345.tmp"
    unrelated.mkdir()
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    assert not stale.exists() and unrelated.exists()


def test_sigterm_removes_the_temporary_folder(tmp_path):
    """A writer killed with SIGTERM mid-write leaves neither a target nor a temporary."""
    script = (
        "import sys, time\n"
        "from angioseg.cli.main import _terminate\n"
        "import signal; signal.signal(signal.SIGTERM, _terminate)\n"
        "from angioseg.io.atomic import atomic_directory\n"
        f"with atomic_directory({str(tmp_path / 'out')!r}) as tmp:\n"
        "    (tmp / 'part').write_text('x'); print('writing', flush=True); time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143
    assert list(tmp_path.iterdir()) == []


def test_data_commands_refuse_a_foreign_folder_and_replace_their_own(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "photo.jpg").write_bytes(b"\xff\xd8")
    argv = ("data", "phantom", "--out", out, "--n", "1", "--size", "48", "--frames", "3", "--no-overlay", "--no-dicom")
    code, err = run_cli(capsys, *argv)
    assert code == 2 and "not empty" in err and (out / "photo.jpg").exists()
    fresh = tmp_path / "fresh"
    assert run_cli(capsys, *argv[:2], "--out", fresh, *argv[4:])[0] == 0
    assert run_cli(capsys, *argv[:2], "--out", fresh, *argv[4:])[0] == 0  # its own earlier output: replaced
