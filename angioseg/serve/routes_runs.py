"""Routes: browse the root, open or upload a run, list and close runs, frames as PNG."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from angioseg.errors import InputError
from angioseg.serve.codec import frame_png
from angioseg.serve.paths import is_within, relative_name, resolve_under_root
from angioseg.serve.security import LOG
from angioseg.serve.uploads import check_declared_size, store_upload, upload_suffix
from angioseg.serve.workspace import Workspace

router = APIRouter(prefix="/api")
#: Entries a folder listing shows at most.
MAX_ENTRIES = 2000
_RUN_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima", ".npy", ".npz", ".png", ".jpg", ".jpeg", ".bmp", ".tif",
                           ".tiff", ".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".m4v", ".gif"})


def workspace(request: Request) -> Workspace:
    """The app's workspace (a FastAPI dependency)."""
    return request.app.state.workspace


class OpenRequest(BaseModel):
    path: str = Field(max_length=4096, description="a file or folder, relative to the root")


@router.get("/browse")
def browse(path: str = Query("", max_length=4096), ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """The entries of a folder under the root (hidden ones and links out of the root left out)."""
    folder = resolve_under_root(ws.root, path)
    if not folder.is_dir():
        raise InputError("not a folder")
    entries = []
    for entry in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))[:MAX_ENTRIES]:
        if entry.name.startswith("."):
            continue
        try:
            real = entry.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if not is_within(real, ws.root):
            continue
        is_dir = real.is_dir()
        entries.append({"name": entry.name, "path": relative_name(entry.absolute(), ws.root), "kind": "folder" if is_dir else "file",
                        "size": None if is_dir else real.stat().st_size,
                        "likely_run": is_dir or real.suffix.lower() in _RUN_SUFFIXES or not real.suffix})
    here = relative_name(folder, ws.root)
    parent = None if not here else relative_name(folder.parent, ws.root)
    return {"path": here, "parent": parent, "entries": entries}


@router.post("/runs/open")
def open_run(body: OpenRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Read the run at `path` (under the root) and keep it open; an open one is returned as is."""
    from angioseg.io import read_video

    source = resolve_under_root(ws.root, body.path)
    if source == ws.root:
        raise InputError("choose a run inside the root, not the root itself")
    existing = ws.find_run(source)
    if existing is not None:
        return existing.public()
    shown = relative_name(source, ws.root)
    try:
        video = read_video(source)
    except InputError as error:
        raise InputError(str(error).replace(str(source), shown)) from None
    run = ws.add_run(video, name=source.name, source=source, uploaded=False)
    LOG.info("opened run %s from the root (%d frames, %d x %d)", run.id, video.num_frames, video.width, video.height)
    return run.public()


@router.post("/upload")
async def upload(request: Request, name: str = Query("", max_length=1024), ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Store the request body (the run's file) and open it; 413 over the cap."""
    from angioseg.io import read_video
    from starlette.concurrency import run_in_threadpool

    check_declared_size(request.headers.get("content-length"), ws.max_upload_bytes)
    stored = await store_upload(request.stream(), ws.uploads, suffix=upload_suffix(name), limit=ws.max_upload_bytes)
    try:
        video = await run_in_threadpool(read_video, stored.path)
    except InputError as error:
        stored.path.unlink(missing_ok=True)
        LOG.info("upload sha256:%s (%d bytes) is not a readable run", stored.digest, stored.size)
        raise InputError(str(error).replace(str(stored.path), "the upload")) from None
    except BaseException:
        stored.path.unlink(missing_ok=True)
        raise
    display = f"upload-{stored.digest[:8]}{stored.path.suffix}"
    try:
        run = ws.add_run(video, name=display, source=stored.path, uploaded=True)
    except BaseException:
        stored.path.unlink(missing_ok=True)
        raise
    LOG.info("opened run %s from upload sha256:%s (%d bytes, %d frames)", run.id, stored.digest, stored.size, video.num_frames)
    return run.public()


@router.get("/runs")
def list_runs(ws: Workspace = Depends(workspace)) -> list[dict[str, Any]]:
    return [run.public() for run in ws.runs()]


@router.get("/runs/{run_id}")
def get_run(run_id: str, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return ws.run(run_id).public()


@router.delete("/runs/{run_id}")
def close_run(run_id: str, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    ws.remove_run(run_id)
    return {"closed": run_id}


@router.get("/runs/{run_id}/frames/{index}.png")
def frame(run_id: str, index: int, center: float | None = Query(None), width: float | None = Query(None),
          ws: Workspace = Depends(workspace)) -> Response:
    """Frame `index` as an 8-bit grey PNG, windowed when `center` / `width` are given."""
    run = ws.run(run_id)
    run.check_frame(index)
    return Response(frame_png(run.video.frames[index], center=center, width=width), media_type="image/png")

