"""Routes: the methods, segment and propagate jobs (progress, cancel), results, their masks,
plots and downloads."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from typing import Any, AsyncIterator, Union

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from angioseg.errors import InputError
from angioseg.serve.codec import encode_rle, label_png
from angioseg.serve.jobs import TERMINAL, Job
from angioseg.serve.routes_runs import workspace
from angioseg.serve.worker import JobRequest
from angioseg.serve.workspace import NotFound, Workspace

router = APIRouter(prefix="/api")
#: Options a client may not set: the server's device, and anything naming a file to load.
_SERVER_OPTIONS = frozenset({"device"})
_FILE_OPTION = re.compile(r"weights|path|file|checkpoint|dir", re.IGNORECASE)
_VALUE = re.compile(r"^[A-Za-z0-9_.+\-]{0,64}$")
OptionValue = Union[bool, int, float, str]


class SegmentRequest(BaseModel):
    method: str = Field(min_length=1, max_length=200, description="a method name or spec, e.g. sato or cenet:threshold=0.6")
    options: dict[str, OptionValue] = Field(default_factory=dict)
    temporal_filter: int = Field(0, ge=0, le=10)


class PropagateRequest(BaseModel):
    method: str = Field("fsvos", min_length=1, max_length=200)
    options: dict[str, OptionValue] = Field(default_factory=dict)


def method_spec(method: str, options: dict[str, OptionValue], *, propagate: bool) -> str:
    """The spec ``name:key=value,...`` of a request, checked (name, option names, values)
    without building the method; InputError for anything wrong."""
    from angioseg.methods.base import method_class, parse_method_spec
    from angioseg.options import check_options

    name, given = parse_method_spec(method)
    merged = {**given, **{key.replace("-", "_"): value for key, value in options.items()}}
    for key, value in merged.items():
        if not key.isidentifier() or key in _SERVER_OPTIONS or _FILE_OPTION.search(key):
            raise InputError(f"option {key!r} cannot be set from the browser")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if not _VALUE.match(text):
            raise InputError(f"option {key}={text[:20]!r} is not a plain number, word or true/false")
        merged[key] = text
    cls = method_class(name)
    check_options(cls, merged, kind="method", name=name)
    if propagate and not cls.needs_prompt:
        raise InputError(f"method {name!r} does not propagate labelled frames; choose fsvos or flow-propagate")
    if not propagate and cls.needs_prompt:
        raise InputError(f"method {name!r} propagates labelled frames: annotate a frame and use Propagate")
    return name + (":" + ",".join(f"{k}={v}" for k, v in merged.items()) if merged else "")


@router.get("/methods")
def methods() -> list[dict[str, Any]]:
    """Every method: name, description, whether it is ready here, whether it propagates, and
    the options the browser may set (name and default)."""
    from angioseg.methods import available, method_class

    entries = []
    for name, description in available():
        cls = method_class(name)
        entries.append({"name": name, "description": description, "ready": bool(cls.is_ready()),
                        "propagates": bool(cls.needs_prompt), "options": _options(cls)})
    return entries


def _options(cls: type) -> list[dict[str, Any]]:
    """The settable options of `cls` (through its constructors' MRO) with their defaults."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for parameter in list(inspect.signature(init).parameters.values())[1:]:
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD) and parameter.name not in found:
                found[parameter.name] = parameter.default
    options = []
    for key, default in found.items():
        if key in _SERVER_OPTIONS or _FILE_OPTION.search(key):
            continue
        plain = default if isinstance(default, (bool, int, float, str)) or default is None else str(default)
        options.append({"name": key, "default": None if default is inspect.Parameter.empty else plain})
    return options


@router.post("/runs/{run_id}/segment")
def segment(run_id: str, body: SegmentRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Queue a segmentation job with `method` on the run; returns the job."""
    run = ws.run(run_id)
    spec = method_spec(body.method, body.options, propagate=False)
    title = spec + (f" +filter K={body.temporal_filter}" if body.temporal_filter else "")
    job = ws.jobs.submit(
        run_id=run.id, kind="segment", title=title,
        request_for=lambda job_id: JobRequest(job_id, "segment", spec, ws.device, run.video, temporal_filter=body.temporal_filter),
        on_done=lambda job, result: ws.add_result(run.id, title=title, kind="segment", segmentation=result))
    return job.public()


@router.post("/runs/{run_id}/propagate")
def propagate(run_id: str, body: PropagateRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Queue a propagation of the run's annotated frames (forward and backward) with
    `method` (default fsvos); returns the job."""
    from angioseg.pipelines.propagate import check_prompts, prompts_from_masks

    run = ws.run(run_id)
    spec = method_spec(body.method, body.options, propagate=True)
    frames = sorted(run.annotations)
    if not frames:
        raise InputError("annotate at least one frame (brush or pick) before propagating")
    prompts = prompts_from_masks([run.annotations[f] for f in frames], frames, names=run.label_table,
                                 sources=[f"the annotation of frame {f}" for f in frames])
    check_prompts(run.video, prompts)
    title = f"{spec} from frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames))}"
    extra = {"prompt_frames": frames, "prompt_masks": [f"annotation of frame {f}" for f in frames]}
    job = ws.jobs.submit(
        run_id=run.id, kind="propagate", title=title,
        request_for=lambda job_id: JobRequest(job_id, "propagate", spec, ws.device, run.video, prompts=prompts),
        on_done=lambda job, result: ws.add_result(run.id, title=title, kind="propagate", segmentation=result, extra=extra))
    return job.public()


def _job(ws: Workspace, job_id: str) -> Job:
    try:
        return ws.jobs.get(job_id)
    except KeyError:
        raise NotFound(f"no job {job_id!r}") from None


@router.get("/jobs")
def jobs(ws: Workspace = Depends(workspace)) -> list[dict[str, Any]]:
    return [job.public() for job in ws.jobs.jobs()]


@router.get("/jobs/{job_id}")
def job_state(job_id: str, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return _job(ws, job_id).public()


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: str, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Cancel a queued or running job (the state becomes "cancelled" within a moment)."""
    _job(ws, job_id)
    return ws.jobs.cancel(job_id).public()


@router.get("/jobs/{job_id}/events")
async def job_events(job_id: str, ws: Workspace = Depends(workspace)) -> StreamingResponse:
    """Server-Sent Events: the job's state whenever it changes, until it ends."""
    job = _job(ws, job_id)

    async def events() -> AsyncIterator[str]:
        last: dict[str, Any] | None = None
        while True:
            state = job.public()
            if {**state, "elapsed_s": 0} != last:
                yield f"data: {json.dumps(state)}\n\n"
                last = {**state, "elapsed_s": 0}
            if state["state"] in TERMINAL:
                return
            await asyncio.sleep(0.2)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/runs/{run_id}/results")
def results(run_id: str, ws: Workspace = Depends(workspace)) -> list[dict[str, Any]]:
    return [result.public() for result in ws.run(run_id).results.values()]


@router.delete("/runs/{run_id}/results/{result_id}")
def delete_result(run_id: str, result_id: str, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    ws.remove_result(run_id, result_id)
    return {"deleted": result_id}


@router.get("/runs/{run_id}/results/{result_id}/masks/{index}.png")
def mask_png(run_id: str, result_id: str, index: int, ws: Workspace = Depends(workspace)) -> Response:
    """Frame `index` of the result as an 8-bit PNG whose grey value is the label id."""
    run, result = ws.result(run_id, result_id)
    run.check_frame(index)
    return Response(label_png(result.segmentation.masks.labels[index]), media_type="image/png")


@router.get("/runs/{run_id}/results/{result_id}/masks/{index}")
def mask_rle(run_id: str, result_id: str, index: int, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Frame `index` of the result as RLE (`angioseg.serve.codec`)."""
    run, result = ws.result(run_id, result_id)
    run.check_frame(index)
    return {"frame": index, "rle": encode_rle(result.segmentation.masks.labels[index])}


@router.get("/runs/{run_id}/results/{result_id}/stats")
def stats(run_id: str, result_id: str, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Per frame: area per label (pixels, and mm² where the spacing is known), the total, and
    the method's confidence (None when it gives none)."""
    from angioseg.io.palette import overlay_colour

    run, result = ws.result(run_id, result_id)
    labels = result.segmentation.masks.labels
    spacing = run.video.pixel_spacing
    pixel_mm2 = spacing[0] * spacing[1] if spacing else None
    series = []
    for label, name in sorted(result.segmentation.label_table.items()):
        if label == 0:
            continue
        area = (labels == label).sum(axis=(1, 2))
        series.append({"id": label, "name": name, "colour": list(overlay_colour(label)), "area_px": area.tolist(),
                       "area_mm2": None if pixel_mm2 is None else [round(float(a) * pixel_mm2, 4) for a in area]})
    confidence = result.segmentation.confidence
    return {"frames": int(labels.shape[0]), "labels": series, "total_px": (labels > 0).sum(axis=(1, 2)).tolist(),
            "confidence": None if confidence is None else [round(float(c), 4) for c in confidence],
            "pixel_spacing": spacing}


@router.get("/runs/{run_id}/results/{result_id}/download/{kind}")
def download(run_id: str, result_id: str, kind: str, fractional: bool = Query(False),
             ws: Workspace = Depends(workspace)) -> FileResponse:
    """A result file: masks.zip (PNG label maps), masks.npz, probabilities.npz, overlay (mp4,
    or gif without an encoder), report.json, bundle.zip (all of them), seg.dcm (DICOM SEG)."""
    from angioseg.serve.downloads import download as build

    run, result = ws.result(run_id, result_id)
    try:
        path, media = build(run, result, kind, fractional=fractional)
    except KeyError as error:
        raise NotFound(str(error.args[0])) from None
    except InputError as error:
        raise InputError(str(error).replace(str(run.source), run.name)) from None
    name = f"angioseg-{run.id}-{result.id}-{path.name if kind != 'overlay' else 'overlay' + path.suffix}"
    return FileResponse(path, media_type=media, filename=name)
