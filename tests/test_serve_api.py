"""`angioseg serve`'s API through FastAPI's TestClient: browse, open and upload a phantom run,
frames, a segmentation job with progress (SSE and polling), annotations (brush, eraser, PNG,
click to pick), propagation with fsvos, downloads (PNG zip equal to the server's label maps,
NPZ, report.json, overlay, DICOM SEG), bounds, cancellation, and the attacks refused: path
traversal in every spelling, uploads over the cap, cross-origin and foreign-Host requests.
Plus the `angioseg serve` verb itself (one-line errors, the non-loopback warning)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="fastapi is not installed (pip install -e .)")
pytest.importorskip("httpx", reason="httpx is not installed (pip install -e .[dev])")

with warnings.catch_warnings():  # Starlette's notice that its TestClient will move from httpx to httpx2
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient  # noqa: E402

from angioseg.cli.main import main  # noqa: E402
from angioseg.serve import create_app, parse_size  # noqa: E402
from angioseg.serve.codec import decode_rle, encode_rle  # noqa: E402
from angioseg.serve.paths import malformed_reason  # noqa: E402
from serve_helpers import wait_for, write_run  # noqa: E402

ORIGIN = "http://127.0.0.1:8765"
CAP = 400_000
#: A file name that stands for patient data: it must never reach the server log.
SECRET_NAME = "Doe_John_19700101.npz"


def png_array(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict:
    """The root (a phantom run, a sub-folder, a hidden file, links in and out of the root) and
    a secret file beside it that no request may reach."""
    base = tmp_path_factory.mktemp("serve")
    root = base / "root"
    path, video, masks = write_run(root, "run.npz", size=96, frames=8)
    (root / "sub").mkdir()
    (root / "sub" / "notes.txt").write_text("not a run")
    (root / ".hidden").write_text("hidden")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.npz").write_bytes(path.read_bytes())
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "escape.npz").symlink_to(outside / "secret.npz")
    (root / "inside.npz").symlink_to(path)
    return {"root": root, "outside": outside, "video": video, "masks": masks}


@pytest.fixture(scope="module")
def client(tree) -> TestClient:
    app = create_app(tree["root"], max_upload_bytes=CAP, max_results=4)
    with TestClient(app, base_url=ORIGIN, headers={"Origin": ORIGIN}) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def run_id(client) -> str:
    response = client.post("/api/runs/open", json={"path": "run.npz"})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def finish(client: TestClient, job: dict, timeout: float = 60.0) -> dict:
    """Poll a job until it ends; returns its final state."""
    return wait_for(lambda: (s := client.get(f"/api/jobs/{job['id']}").json())["state"] in ("done", "failed", "cancelled") and s,
                    timeout=timeout)


@pytest.fixture(scope="module")
def segmented(client, run_id) -> str:
    """The id of a cenet result of the run, followed through Server-Sent Events."""
    job = client.post(f"/api/runs/{run_id}/segment", json={"method": "cenet", "options": {"threshold": 0.5}}).json()
    states = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as events:
        for line in events.iter_lines():
            if line.startswith("data: "):
                states.append(json.loads(line[6:]))
    assert states[-1]["state"] == "done", states[-1]
    assert states[-1]["progress"] == 1.0
    return states[-1]["result"]


# ---- browsing, opening, uploading ---------------------------------------------------------------


def test_browse_lists_the_root_without_hidden_entries_or_escaping_links(client):
    listing = client.get("/api/browse").json()
    names = {e["name"]: e for e in listing["entries"]}
    assert {"run.npz", "sub", "inside.npz"} <= set(names)
    assert ".hidden" not in names and "escape" not in names and "escape.npz" not in names
    assert names["sub"]["kind"] == "folder" and names["run.npz"]["size"] > 0
    sub = client.get("/api/browse", params={"path": "sub"}).json()
    assert sub["parent"] == "" and [e["name"] for e in sub["entries"]] == ["notes.txt"]


def test_open_run_gives_metadata_and_frames_as_png(client, run_id, tree):
    video = tree["video"]
    info = client.get(f"/api/runs/{run_id}").json()
    assert (info["frames"], info["height"], info["width"], info["fps"]) == (8, 96, 96, video.fps)
    again = client.post("/api/runs/open", json={"path": "run.npz"}).json()
    assert again["id"] == run_id  # an open run is not read twice
    frame = png_array(client.get(f"/api/runs/{run_id}/frames/2.png").content)
    assert frame.shape == (96, 96)
    assert np.abs(frame.astype(int) - np.round(video.frames[2] * 255).astype(int)).max() <= 1
    windowed = png_array(client.get(f"/api/runs/{run_id}/frames/2.png", params={"center": 0.4, "width": 0.2}).content)
    assert not np.array_equal(windowed, frame)
    assert client.get(f"/api/runs/{run_id}/frames/8.png").status_code == 404
    assert client.get("/api/runs/nope/frames/0.png").status_code == 404
    assert client.post("/api/runs/open", json={"path": "sub/notes.txt"}).status_code == 400


def test_upload_is_stored_under_a_hash_and_its_name_never_logged(client, tree, caplog):
    caplog.set_level(logging.INFO, logger="angioseg.serve")
    body = (tree["root"] / "run.npz").read_bytes()
    response = client.post("/api/upload", params={"name": SECRET_NAME}, content=body)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["source"] == "upload" and run["frames"] == 8
    assert run["name"].startswith("upload-") and run["name"].endswith(".npz") and "Doe" not in run["name"]
    assert "Doe" not in caplog.text and "sha256:" in caplog.text
    assert client.delete(f"/api/runs/{run['id']}").status_code == 200
    assert not any(client.app.state.workspace.uploads.iterdir())


# ---- jobs, results, plots -----------------------------------------------------------------------


def test_methods_list_marks_propagation_methods_and_hides_file_options(client):
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert methods["fsvos"]["propagates"] and not methods["cenet"]["propagates"]
    assert all("weights" not in o["name"] and o["name"] != "device" for m in methods.values() for o in m["options"])


def test_segment_job_result_masks_and_stats(client, run_id, segmented):
    _, result = client.app.state.workspace.result(run_id, segmented)
    labels = result.segmentation.masks.labels
    rle = client.get(f"/api/runs/{run_id}/results/{segmented}/masks/3").json()["rle"]
    assert np.array_equal(decode_rle(rle, (96, 96)), labels[3])
    assert np.array_equal(png_array(client.get(f"/api/runs/{run_id}/results/{segmented}/masks/3.png").content), labels[3])
    stats = client.get(f"/api/runs/{run_id}/results/{segmented}/stats").json()
    assert stats["frames"] == 8 and stats["confidence"] is None
    assert stats["labels"][0]["area_px"] == (labels == 1).sum(axis=(1, 2)).tolist()
    assert stats["total_px"] == (labels > 0).sum(axis=(1, 2)).tolist()
    listed = client.get(f"/api/runs/{run_id}/results").json()
    assert any(r["id"] == segmented and r["method"] == "cenet" for r in listed)


def test_downloads_match_the_server_result(client, run_id, segmented):
    _, result = client.app.state.workspace.result(run_id, segmented)
    labels = result.segmentation.masks.labels
    url = f"/api/runs/{run_id}/results/{segmented}/download"
    with zipfile.ZipFile(io.BytesIO(client.get(f"{url}/masks.zip").content)) as archive:
        names = sorted(archive.namelist())
        assert names == [f"masks/{t:05d}.png" for t in range(8)]
        stack = np.stack([png_array(archive.read(n)) for n in names])
    assert np.array_equal(stack, labels)
    with np.load(io.BytesIO(client.get(f"{url}/masks.npz").content)) as npz:
        assert np.array_equal(npz["labels"], labels)
    report = client.get(f"{url}/report.json").json()
    assert report["format"] == "angioseg-segmentation" and len(report["per_frame"]) == 8
    assert report["input"]["name"] == "run.npz"
    overlay = client.get(f"{url}/overlay")
    assert overlay.status_code == 200 and len(overlay.content) > 1000
    assert overlay.headers["content-type"] in ("video/mp4", "image/gif")
    with zipfile.ZipFile(io.BytesIO(client.get(f"{url}/bundle.zip").content)) as archive:
        assert {"report.json", "masks.npz", "probabilities.npz"} <= set(archive.namelist())
    seg = client.get(f"{url}/seg.dcm")
    assert seg.status_code == 400 and "DICOM" in seg.json()["detail"]
    assert client.get(f"{url}/nothing").status_code == 404


def test_dicom_seg_download_for_a_dicom_run(client, tree):
    pytest.importorskip("highdicom", reason="highdicom is not installed (pip install -e .[dev])")
    from angioseg.io import write_dicom

    write_dicom(tree["video"], tree["root"] / "run.dcm")
    run = client.post("/api/runs/open", json={"path": "run.dcm"}).json()
    job = client.post(f"/api/runs/{run['id']}/segment", json={"method": "frangi"}).json()
    result = finish(client, job)["result"]
    seg = client.get(f"/api/runs/{run['id']}/results/{result}/download/seg.dcm")
    assert seg.status_code == 200, seg.text
    assert seg.content[128:132] == b"DICM"
    fractional = client.get(f"/api/runs/{run['id']}/results/{result}/download/seg.dcm", params={"fractional": "true"})
    assert fractional.status_code == 200 and fractional.content != seg.content
    client.delete(f"/api/runs/{run['id']}")


# ---- annotation, pick, propagation ----------------------------------------------------------------


def test_annotate_pick_and_propagate(client, run_id, segmented):
    url = f"/api/runs/{run_id}/annotations/3"
    stroke = np.zeros((96, 96), np.uint8)
    stroke[40:44, 20:60] = 1
    state = client.post(url, json={"op": "paint", "label": 1, "mask": {"rle": encode_rle(stroke)}}).json()
    assert state["annotated_frames"] == [3]
    labels = decode_rle(state["rle"], (96, 96))
    assert (labels[stroke > 0] == 1).all() and labels.sum() == stroke.sum()
    eraser = np.zeros((96, 96), np.uint8)
    eraser[:, 50:] = 1
    labels = decode_rle(client.post(url, json={"op": "erase", "label": 1, "mask": {"rle": encode_rle(eraser)}}).json()["rle"], (96, 96))
    assert labels[:, 50:].sum() == 0 and labels[40:44, 20:50].all()
    catheter = np.zeros((96, 96), np.uint8)
    catheter[10:14, 10:30] = 255
    buffer = io.BytesIO()
    Image.fromarray(catheter).save(buffer, format="PNG")
    png = __import__("base64").b64encode(buffer.getvalue()).decode()
    labels = decode_rle(client.post(url, json={"op": "paint", "label": 2, "mask": {"png": png}}).json()["rle"], (96, 96))
    assert (labels[10:14, 10:30] == 2).all()
    picked = client.post(f"/api/runs/{run_id}/pick", json={"frame": 5, "x": 48, "y": 48, "label": 1, "apply": False}).json()
    assert picked["pixels"] == int(decode_rle(picked["component"], (96, 96)).sum())
    from_result = client.post(f"/api/runs/{run_id}/annotations/6", json={
        "op": "paint", "label": 1, "mask": {"rle": encode_rle(stroke)}, "base_result": segmented}).json()
    _, result = client.app.state.workspace.result(run_id, segmented)
    expected = result.segmentation.masks.labels[6].copy()
    expected[stroke > 0] = 1
    assert np.array_equal(decode_rle(from_result["rle"], (96, 96)), expected)
    assert client.delete(f"/api/runs/{run_id}/annotations/6").json()["annotated_frames"] == [3]

    job = finish(client, client.post(f"/api/runs/{run_id}/propagate", json={"method": "fsvos"}).json())
    assert job["state"] == "done", job
    _, propagated = client.app.state.workspace.result(run_id, job["result"])
    assert np.array_equal(propagated.segmentation.masks.labels[3], client.app.state.workspace.annotation(run_id, 3))
    stats = client.get(f"/api/runs/{run_id}/results/{job['result']}/stats").json()
    assert len(stats["confidence"]) == 8 and stats["confidence"][3] == 1.0
    assert {s["name"] for s in stats["labels"]} == {"vessel", "catheter"}
    report = client.get(f"/api/runs/{run_id}/results/{job['result']}/download/report.json").json()
    assert report["prompt_frames"] == [3] and len(report["confidence"]) == 8

    # correct another frame of the propagated result and propagate again from both frames
    fix = np.zeros((96, 96), np.uint8)
    fix[70:73, 30:60] = 1
    client.post(f"/api/runs/{run_id}/annotations/7", json={"op": "paint", "label": 1, "mask": {"rle": encode_rle(fix)},
                                                          "base_result": job["result"]})
    again = finish(client, client.post(f"/api/runs/{run_id}/propagate", json={}).json())
    assert again["state"] == "done" and "frames 3, 7" in again["title"]


def test_labels_can_be_added(client, run_id):
    table = client.post(f"/api/runs/{run_id}/labels", json={"name": "guidewire"}).json()["label_table"]
    assert table["3"] == "guidewire"
    assert client.post(f"/api/runs/{run_id}/labels", json={"name": "guidewire"}).json()["label_table"] == table


# ---- bad requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("request_body, status", [
    ({"method": "no-such-method"}, 400),
    ({"method": "cenet", "options": {"weights": "x"}}, 400),
    ({"method": "cenet", "options": {"device": "cuda"}}, 400),
    ({"method": "cenet", "options": {"style": "../../etc"}}, 400),
    ({"method": "cenet", "options": {"nonsense": 1}}, 400),
    ({"method": "fsvos"}, 400),
    ({"method": "cenet", "temporal_filter": -1}, 422),
])
def test_bad_segment_requests_are_one_line_4xx(client, run_id, request_body, status):
    response = client.post(f"/api/runs/{run_id}/segment", json=request_body)
    assert response.status_code == status, response.text
    assert "\n" not in response.json()["detail"]


def test_bad_annotation_requests_are_4xx(client, run_id):
    url = f"/api/runs/{run_id}/annotations/1"
    small = encode_rle(np.ones((10, 10), np.uint8))
    assert client.post(url, json={"op": "paint", "mask": {"rle": small}}).status_code == 400
    assert client.post(url, json={"op": "paint", "mask": {"png": "not base64!"}}).status_code == 400
    assert client.post(url, json={"op": "paint", "label": 77, "mask": {"rle": encode_rle(np.ones((96, 96), np.uint8))}}).status_code == 400
    assert client.post(url, json={"op": "smudge", "mask": {}}).status_code == 422
    assert client.post(f"/api/runs/{run_id}/annotations/99", json={"mask": {"rle": small}}).status_code == 404
    assert client.post(f"/api/runs/{run_id}/pick", json={"frame": 0, "x": 500, "y": 1}).status_code == 400
    assert client.post(f"/api/runs/{run_id}/propagate", json={"method": "cenet"}).status_code == 400
    big = client.post(url, content=b"x" * (65 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert big.status_code == 413


# ---- attacks ------------------------------------------------------------------------------------------

PATH_ATTACKS = [
    ("browse", "../"),                                     # parent folder
    ("browse", "sub/../../"),                              # parent after a real folder
    ("browse", "/etc"),                                    # absolute path
    ("browse", "escape"),                                  # symbolic link to a folder outside the root
    ("open", "escape.npz"),                                # symbolic link to a file outside the root
    ("open", "escape/secret.npz"),                         # a file through the escaping link
    ("open", "..%2Foutside%2Fsecret.npz"),                 # URL-encoded traversal
    ("open", "%2e%2e/outside/secret.npz"),                 # URL-encoded dots
    ("open", "%252e%252e%252foutside%252fsecret.npz"),     # double-encoded traversal
    ("open", "..\\outside\\secret.npz"),                   # backslashes
    ("open", "run.npz\x00.png"),                           # NUL byte
    ("open", "C:\\Windows\\win.ini"),                      # a drive letter
    ("open", "//server/share/secret.npz"),                 # a UNC-style absolute path
    ("open", str(Path(__file__).resolve())),               # an absolute path to a real file
]


@pytest.mark.parametrize("verb, path", PATH_ATTACKS)
def test_path_attacks_are_refused_and_logged_without_the_path(client, tree, caplog, verb, path):
    caplog.set_level(logging.INFO, logger="angioseg.serve")
    if verb == "browse":
        response = client.get("/api/browse", params={"path": path})
    else:
        response = client.post("/api/runs/open", json={"path": path})
    assert 400 <= response.status_code < 500 and response.status_code != 404, (path, response.status_code)
    assert "refused" in response.json()["detail"] and "refused" in caplog.text
    assert "outside" not in caplog.text and "secret" not in caplog.text and "etc" not in caplog.text
    assert not any(run["source"] == "root" and run["name"] == "secret.npz" for run in client.get("/api/runs").json())


@pytest.mark.parametrize("url", [
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%2f..%2fapp.py",
    "/static/%252e%252e/app.py",
    "/static/..%5capp.py",
    "/api/runs/r1/frames/%00.png",
])
def test_url_path_attacks_are_refused(client, url, caplog):
    caplog.set_level(logging.INFO, logger="angioseg.serve")
    response = client.get(url)
    assert response.status_code == 400, (url, response.status_code)
    assert "pyproject" not in caplog.text and "app.py" not in caplog.text


def test_upload_attacks_are_refused_before_anything_is_stored(client, caplog):
    caplog.set_level(logging.INFO, logger="angioseg.serve")
    folder = client.app.state.workspace.uploads
    declared = client.post("/api/upload", params={"name": SECRET_NAME}, content=b"\0" * (CAP + 1))
    assert declared.status_code == 413
    assert not any(folder.iterdir())

    def stream():
        for _ in range(CAP // 65536 + 2):
            yield b"\0" * 65536

    streamed = client.post("/api/upload", params={"name": SECRET_NAME}, content=stream())
    assert streamed.status_code == 413
    assert not any(folder.iterdir())
    assert client.post("/api/upload", content=b"").status_code == 400
    garbage = client.post("/api/upload", params={"name": "x.dcm"}, content=b"not a run at all" * 100)
    assert garbage.status_code == 400 and "upload" in garbage.json()["detail"]
    assert not any(folder.iterdir())
    traversal_name = client.post("/api/upload", params={"name": "../../evil.npz"}, content=b"not a run")
    assert traversal_name.status_code == 400 and not any(folder.iterdir())
    assert "Doe" not in caplog.text and "evil" not in caplog.text


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:9999"},
    {"Origin": "null"},
    {"Origin": "", "Referer": "http://evil.example/page"},
    {"Origin": ""},
])
def test_cross_origin_state_changes_are_refused(client, run_id, headers):
    response = client.post(f"/api/runs/{run_id}/labels", json={"name": "x"}, headers=headers)
    assert response.status_code == 403
    assert client.delete(f"/api/runs/{run_id}", headers=headers).status_code == 403
    assert client.get(f"/api/runs/{run_id}").status_code == 200


def test_same_origin_referer_is_enough_and_foreign_host_is_refused(client, run_id):
    ok = client.post(f"/api/runs/{run_id}/labels", json={"name": "marker"}, headers={"Origin": "", "Referer": f"{ORIGIN}/"})
    assert ok.status_code == 200
    rebinding = client.get("/api/runs", headers={"Host": "evil.example:8765"})
    assert rebinding.status_code == 400
    embedded = client.get(f"/api/runs/{run_id}/frames/0.png", headers={"Sec-Fetch-Site": "cross-site"})
    assert embedded.status_code == 403
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # a link to the page itself


def test_a_bug_is_a_500_whose_message_stays_out_of_the_log(client, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="angioseg.serve")

    def broken() -> list:
        raise RuntimeError(f"cannot read /data/{SECRET_NAME}")

    monkeypatch.setattr(client.app.state.workspace, "runs", broken)
    response = client.get("/api/runs")
    assert response.status_code == 500 and "RuntimeError" in response.json()["detail"]
    assert "Doe" not in response.text and "Doe" not in caplog.text and "RuntimeError" in caplog.text


# ---- bounds and cancellation ------------------------------------------------------------------------


def test_results_and_runs_are_bounded(tree):
    from angioseg.methods import Segmentation
    from angioseg.serve.workspace import NotFound, Workspace
    from angioseg.types import LabelMap

    workspace = Workspace(tree["root"], max_upload_bytes=CAP, max_runs=2, max_results=2)
    workspace.jobs.prewarm = lambda: None  # no job runs here: no worker process needed
    try:
        runs = [workspace.add_run(tree["video"], name=f"{i}.npz", source=tree["root"] / f"{i}.npz", uploaded=False) for i in range(3)]
        assert [r.id for r in workspace.runs()] == [runs[1].id, runs[2].id]
        with pytest.raises(NotFound):
            workspace.run(runs[0].id)
        labels = tree["masks"].labels.clip(0, 1).astype(np.uint8)
        segmentation = Segmentation(LabelMap(labels, {0: "background", 1: "vessel"}), labels.astype(np.float32))
        ids = [workspace.add_result(runs[2].id, title=str(i), kind="segment", segmentation=segmentation) for i in range(3)]
        assert list(workspace.run(runs[2].id).results) == ids[1:]
    finally:
        workspace.close()
    assert not workspace.tmp.exists()


def test_a_running_job_can_be_cancelled_and_the_next_one_runs(client, run_id):
    job = client.post(f"/api/runs/{run_id}/segment", json={"method": "denver"}).json()
    wait_for(lambda: client.get(f"/api/jobs/{job['id']}").json()["state"] == "running", timeout=30)
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel").json()
    assert cancelled["state"] in ("running", "cancelled")
    assert finish(client, job, timeout=15)["state"] == "cancelled"
    after = finish(client, client.post(f"/api/runs/{run_id}/segment", json={"method": "frangi"}).json())
    assert after["state"] == "done", after


# ---- pieces and the command line ------------------------------------------------------------------


def test_rle_round_trip_and_path_rules():
    labels = np.random.default_rng(0).integers(0, 4, (7, 9)).astype(np.uint8)
    assert np.array_equal(decode_rle(encode_rle(labels), (7, 9)), labels)
    assert malformed_reason("runs/a b%.dcm") is None and malformed_reason("a/./b") is None
    for bad in ("..", "a/../b", "%2e%2e", "%252e%252e/x", "a\\b", "/x", "c:x", "a\0b"):
        assert malformed_reason(bad) is not None, bad
    assert parse_size("2GB") == 2 * 10**9 and parse_size("1GiB") == 2**30 and parse_size("512") == 512


def test_static_page_requests_nothing_from_other_hosts():
    static = Path(__file__).resolve().parents[1] / "angioseg" / "serve" / "static"
    for path in static.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
        assert "@import" not in text and "fonts.googleapis" not in text, path.name


def test_serve_verb_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["serve", "--root", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert main(["serve", "--max-upload", "12XB"]) == 2
    assert main(["serve", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("angioseg: error:") for line in err)


def test_serve_verb_warns_off_loopback_and_serves_the_page(tmp_path):
    import httpx

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "angioseg.cli.main", "serve", "--host", "0.0.0.0", "--port", "0",
                                "--root", str(tmp_path), "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url_line = process.stdout.readline()
        assert "http://127.0.0.1:" in url_line, url_line
        url = url_line.split()[3]
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "angioseg" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    finally:
        process.terminate()
        process.wait(timeout=20)
    err = process.stderr.read()
    assert "warning: --host 0.0.0.0 is not a loopback address" in err
    assert str(tmp_path) not in err
