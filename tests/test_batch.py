"""`angioseg batch`: discovery, the manifest, retries, status, summaries, no patient identifier,
Ray workers, and resuming after ``kill -9`` with every run finished exactly once."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from angioseg.cli.main import main
from angioseg.errors import InputError
from angioseg.io import write_dicom
from angioseg.pipelines.batch import run_batch
from angioseg.pipelines.batch_inputs import content_hash, discover, output_name
from angioseg.pipelines.batch_manifest import Manifest
from angioseg.types import Video

METHOD = "sato"
FRAMES, SIZE = 6, 48
PATIENT_NAME, PATIENT_ID = "Quixote^Alonso", "PID-8675309"
ANGIOSEG = [sys.executable, "-m", "angioseg.cli.main"]


def frames(seed: int, count: int = FRAMES) -> np.ndarray:
    """A small run: a dark vertical bar (a 'vessel') over noise, moving with the seed."""
    rng = np.random.default_rng(seed)
    video = 0.7 + 0.05 * rng.standard_normal((count, SIZE, SIZE))
    column = 10 + seed % 28
    video[:, :, column:column + 4] -= 0.4
    return np.clip(video, 0, 1).astype(np.float32)


def make_npy_runs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"run{i:02d}.npy" for i in range(n)]
    for i, path in enumerate(paths):
        np.save(path, frames(i))
    return paths


def make_identified_dicom(path: Path, seed: int, *, count: int = FRAMES, series: dict[str, object] | None = None) -> Path:
    """A DICOM run with a patient name and ID filled in (`series`: more attributes to set, e.g.
    the study and series UIDs that make single-frame files one series)."""
    write_dicom(Video(frames(seed, count), fps=15.0), path)
    ds = pydicom.dcmread(path)
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    for key, value in (series or {}).items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def manifest_rows(out: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(out / "batch.sqlite") as db:
        return {k: (s, a) for k, s, a in db.execute("SELECT input, status, attempts FROM runs")}


def completions(out: Path) -> dict[str, int]:
    manifest = Manifest.open(out, create=False)
    try:
        return manifest.completions()
    finally:
        manifest.close()


def masks_of(out: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p / "masks.npz")["labels"] for p in sorted((out / "runs").iterdir())}


# ----------------------------------------------------------------------------- discovery


def test_discovery_of_files_folders_and_list_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_npy_runs(data / "arrays", 2)
    (data / "images").mkdir()
    for i in range(3):
        Image.fromarray((frames(i)[0] * 255).astype(np.uint8)).save(data / "images" / f"{i:03d}.png")
    (data / "series").mkdir()
    for i in range(3):
        make_identified_dicom(data / "series" / f"slice{i}.dcm", i, count=1)
    make_identified_dicom(data / "cine.dcm", 7)
    (data / "notes.txt").write_text("not a run")
    (data / ".hidden").mkdir()
    np.save(data / ".hidden" / "x.npy", frames(0))

    found = discover([str(data)])
    kinds = {run.relative: (run.kind, run.dicom) for run in found.runs}
    assert kinds == {"data/arrays/run00.npy": ("file", False), "data/arrays/run01.npy": ("file", False),
                     "data/images": ("image-folder", False), "data/series": ("dicom-series", True),
                     "data/cine.dcm": ("file", True)}
    assert [name for name, _ in found.skipped] == ["data/notes.txt"]

    listing = tmp_path / "list.txt"
    listing.write_text("# runs\ndata/cine.dcm\n\ndata/arrays\n")
    assert [r.relative for r in discover([f"@{listing}"]).runs] == ["arrays/run00.npy", "arrays/run01.npy", "cine.dcm"]
    assert [r.relative for r in discover([str(data / "cine.dcm")]).runs] == ["cine.dcm"]
    with pytest.raises(InputError, match="does not exist"):
        discover([str(tmp_path / "missing")])
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no runs here")
    with pytest.raises(InputError, match="no runs found"):
        discover([str(tmp_path / "nothing")])


def test_names_and_content_hashes(tmp_path: Path) -> None:
    name = output_name("a b/ü?x.npy")
    assert name.startswith("a_b__x.npy-") and all(c.isalnum() or c in "._-" for c in name)
    assert output_name("a/b") != output_name("a_b") and len(output_name("x" * 500)) <= 91
    paths = make_npy_runs(tmp_path / "d", 1)
    run = discover([str(paths[0])]).runs[0]
    before = content_hash(run)
    np.save(paths[0], frames(5))
    assert content_hash(run) != before


# ----------------------------------------------------------------------------- manifest


def test_manifest_states(tmp_path: Path) -> None:
    manifest = Manifest.open(tmp_path)
    manifest.sync([("a", "file", "h1", "a-1"), ("b", "file", "h2", "b-1"), ("c", "file", "h3", "c-1")])
    assert manifest.counts() == {"pending": 3, "running": 0, "done": 0, "failed": 0}
    manifest.mark_running("a")
    manifest.mark_done("a", seconds=1.0, frames=6, stats={"fps": None})
    manifest.mark_running("b")
    assert manifest.mark_failed_attempt("c", error="bad", seconds=0.1, retries=1) == "pending"
    assert manifest.mark_failed_attempt("c", error="bad again", seconds=0.1, retries=1) == "failed"
    assert manifest.counts() == {"pending": 0, "running": 1, "done": 1, "failed": 1}
    # a crash left b running, a's bundle is gone: both pending; c stays failed unless asked
    assert sorted(manifest.recover(lambda output: False)) == ["a", "b"]
    assert manifest.row("c").status == "failed" and manifest.row("c").error == "bad again"
    assert manifest.recover(lambda output: True, retry_failed=True) == ["c"]
    assert manifest.row("c").attempts == 0
    manifest.sync([("a", "file", "changed", "a-1")])
    assert manifest.row("a").content_sha256 == "changed" and manifest.completions() == {"a": 1}
    manifest.check_settings({"method": "sato"})
    with pytest.raises(InputError, match="method=sato"):
        manifest.check_settings({"method": "cenet"})
    manifest.close()


# ----------------------------------------------------------------------------- the command


def test_batch_retries_then_records_failure_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    make_npy_runs(data, 3)
    (data / "broken.npy").write_bytes(b"\x93NUMPY not really")
    out = tmp_path / "out"
    assert main(["batch", str(data), "-o", str(out), "--method", METHOD, "--retries", "2", "--threads", "1"]) == 1
    printed = capsys.readouterr()
    assert "4 runs: 0 pending, 0 running, 3 done, 1 failed" in printed.out
    assert "data/broken.npy:" in printed.out and "Traceback" not in printed.out + printed.err
    rows = manifest_rows(out)
    assert rows["data/broken.npy"] == ("failed", 3) and rows["data/run00.npy"] == ("done", 1)

    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["input"] for r in summary] == ["data/broken.npy", "data/run00.npy", "data/run01.npy", "data/run02.npy"]
    done = summary[1]
    assert done["status"] == "done" and done["frames"] == str(FRAMES) and float(done["area_mean_px"]) > 0
    assert float(done["area_min_px"]) <= float(done["area_mean_px"]) <= float(done["area_max_px"])
    assert summary[0]["status"] == "failed" and "broken.npy" in summary[0]["error"]
    lines = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert [r["input"] for r in lines] == [r["input"] for r in summary] and lines[1]["frames"] == FRAMES
    bundle = out / "runs" / done["run"]
    assert {"masks.npz", "probabilities.npz", "report.json", "masks"} <= {p.name for p in bundle.iterdir()}

    (out / "summary.csv").unlink()
    assert main(["batch", "--status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "3 done, 1 failed" in status and "data/broken.npy: " in status and (out / "summary.csv").is_file()

    # the same command again: nothing redone
    assert main(["batch", str(data), "-o", str(out), "--method", METHOD, "--threads", "1"]) == 1
    assert completions(out) == {f"data/run0{i}.npy": 1 for i in range(3)}
    assert manifest_rows(out)["data/broken.npy"] == ("failed", 3)


def test_bad_uses_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    make_npy_runs(data, 1)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    cases = [
        (["batch", "--status", str(tmp_path / "nothing")], "no batch manifest"),
        (["batch", str(data), "-o", str(foreign), "--method", METHOD], "not an angioseg batch"),
        (["batch", str(data), "-o", str(data / "out"), "--method", METHOD], "inside the input folder"),
        (["batch", str(data), "-o", str(tmp_path / "o"), "--no-ray", "--workers", "2"], "--no-ray"),
        (["batch", str(data), "-o", str(tmp_path / "o2"), "--method", "nosuchmethod"], "nosuchmethod"),
        (["batch", str(data), "-o", str(tmp_path / "o3"), "--method", METHOD, "--dicom-seg"], "DICOM"),
        (["batch", str(data)], "-o OUT"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (argv, err)
    assert (foreign / "mine.txt").read_text() == "keep" and not (data / "out").exists()
    monkeypatch.setattr("angioseg.pipelines.batch.ray_available", lambda: False)
    assert main(["batch", str(data), "-o", str(tmp_path / "o4"), "--method", METHOD, "--workers", "2"]) == 2
    assert "pip install 'angioseg[batch]'" in capsys.readouterr().err
    out = tmp_path / "first"
    assert main(["batch", str(data), "-o", str(out), "--method", METHOD, "--threads", "1"]) == 0
    assert main(["batch", str(data), "-o", str(out), "--method", "frangi"]) == 2
    assert "method=sato" in capsys.readouterr().err


def test_recovery_redoes_missing_and_changed_runs_only(tmp_path: Path) -> None:
    paths = make_npy_runs(tmp_path / "data", 3)
    out = tmp_path / "out"
    run_batch([str(tmp_path / "data")], out, method=METHOD, threads=1)
    runs = out / "runs"
    names = sorted(p.name for p in runs.iterdir())
    import shutil

    shutil.rmtree(runs / names[0])                       # a done run's bundle went missing
    (runs / f".{names[1]}.abcd1234.tmp").mkdir()         # a temporary a killed writer left
    np.save(paths[2], frames(9))                         # an input changed
    with sqlite3.connect(out / "batch.sqlite") as db:   # a crash left a row running
        db.execute("UPDATE runs SET status = 'running' WHERE input = 'data/run01.npy'")
    result = run_batch([str(tmp_path / "data")], out, method=METHOD, threads=1)
    assert result.counts["done"] == 3 and result.processed == 3
    assert completions(out) == {"data/run00.npy": 2, "data/run01.npy": 2, "data/run02.npy": 2}
    assert sorted(p.name for p in runs.iterdir()) == names
    assert run_batch([str(tmp_path / "data")], out, method=METHOD, threads=1).processed == 0


def test_no_patient_identifier_anywhere(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    make_identified_dicom(data / "cine.dcm", 3)
    (data / "series").mkdir()
    uids = {"StudyInstanceUID": pydicom.uid.generate_uid(), "SeriesInstanceUID": pydicom.uid.generate_uid()}
    for i in range(3):
        make_identified_dicom(data / "series" / f"{i}.dcm", i, count=1, series={**uids, "InstanceNumber": i + 1})
    out = tmp_path / "out"
    assert main(["batch", str(data), "-o", str(out), "--method", METHOD, "--dicom-seg", "--threads", "1"]) == 0
    assert main(["batch", "--status", str(out)]) == 0
    captured = capfd.readouterr()
    log = captured.out + captured.err
    texts = [log, (out / "summary.csv").read_text(), (out / "summary.jsonl").read_text()]
    texts += [p.read_text() for p in (out / "runs").glob("*/report.json")]
    names = [str(p.relative_to(out)) for p in out.rglob("*")]
    assert len(list((out / "runs").glob("*/segmentation.dcm"))) == 2
    for identifier in (PATIENT_NAME, PATIENT_ID, "Quixote", "8675309"):
        assert not any(identifier in text for text in texts), identifier
        assert not any(identifier in name for name in names), identifier
    with sqlite3.connect(out / "batch.sqlite") as db:
        dump = "\n".join(db.iterdump())
    assert "Quixote" not in dump and "8675309" not in dump


# ----------------------------------------------------------------------------- Ray


def test_ray_workers_give_the_same_bundles(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'angioseg[batch]')")
    make_npy_runs(tmp_path / "data", 4)
    local, cluster = tmp_path / "local", tmp_path / "ray"
    run_batch([str(tmp_path / "data")], local, method=METHOD, threads=1)
    try:
        result = run_batch([str(tmp_path / "data")], cluster, method=METHOD, workers=2, threads=2)
    except InputError as error:
        if "could not start" in str(error):
            pytest.skip(f"Ray cannot start here: {error}")
        raise
    assert result.counts["done"] == 4
    expected, got = masks_of(local), masks_of(cluster)
    assert expected.keys() == got.keys() and all(np.array_equal(expected[k], got[k]) for k in expected)


# ----------------------------------------------------------------------------- kill -9 and resume


def _done_count(out: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out / 'batch.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _start_batch(data: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*ANGIOSEG, "batch", str(data), "-o", str(out), "--method", METHOD, "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)


def _kill_after_progress(process: subprocess.Popen, out: Path, rng: random.Random) -> None:
    """Wait until the batch has committed one more run, then kill -9 its process group at a
    random moment soon after."""
    before = _done_count(out)
    deadline = time.monotonic() + 60
    while _done_count(out) <= before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.15))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_kill_9_three_times_then_resume_finishes_every_run_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_npy_runs(data, 20)
    reference = tmp_path / "reference"
    run_batch([str(data)], reference, method=METHOD, threads=1)

    out, rng = tmp_path / "out", random.Random(18)
    for _ in range(3):
        _kill_after_progress(_start_batch(data, out), out, rng)
    assert 0 < _done_count(out) < 20, "the kills should land mid-batch"
    final = _start_batch(data, out)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()

    assert completions(out) == {f"data/run{i:02d}.npy": 1 for i in range(20)}
    assert set(manifest_rows(out).values()) == {("done", 1)}
    expected, got = masks_of(reference), masks_of(out)
    assert expected.keys() == got.keys() and all(np.array_equal(expected[k], got[k]) for k in expected)
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]
