"""Routes: annotations (brush, eraser, replace), the run's labels, and click to pick."""

from __future__ import annotations

from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from angioseg.serve.codec import decode_mask, encode_rle
from angioseg.serve.routes_runs import workspace
from angioseg.serve.workspace import Workspace, label_colours

router = APIRouter(prefix="/api")


class AnnotateRequest(BaseModel):
    op: Literal["paint", "erase", "replace"] = "paint"
    label: int = Field(1, ge=0, le=255, description="the label painted or erased (erase: 0 = every label)")
    mask: dict[str, Any] = Field(description='{"rle": {...}} or {"png": "<base64>"}: the stroke, or the label map for replace')
    base_result: Optional[str] = Field(None, max_length=40, description="start an unannotated frame from this result")


class LabelRequest(BaseModel):
    name: str = Field(min_length=1, max_length=40)


class PickRequest(BaseModel):
    frame: int = Field(ge=0)
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    filter: Literal["sato", "frangi"] = "sato"
    threshold: Optional[float] = Field(None, gt=0.0, lt=1.0, description="of the [0, 1] response; default Otsu")
    label: int = Field(1, ge=1, le=255)
    apply: bool = Field(True, description="paint the picked component into the frame's annotation")
    base_result: Optional[str] = Field(None, max_length=40)


def _annotation_state(ws: Workspace, run_id: str, frame: int, labels: Any) -> dict[str, Any]:
    run = ws.run(run_id)
    return {"frame": frame, "rle": encode_rle(labels), "annotated_frames": sorted(run.annotations),
            "label_table": {str(k): v for k, v in run.label_table.items()}, "colours": label_colours(run.label_table)}


@router.get("/runs/{run_id}/annotations")
def annotations(run_id: str, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """The annotated frames and the run's label table."""
    run = ws.run(run_id)
    return {"annotated_frames": sorted(run.annotations), "label_table": {str(k): v for k, v in run.label_table.items()},
            "colours": label_colours(run.label_table)}


@router.get("/runs/{run_id}/annotations/{frame}")
def annotation(run_id: str, frame: int, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """The annotation of `frame` as RLE (all background when it has none)."""
    return _annotation_state(ws, run_id, frame, ws.annotation(run_id, frame))


@router.post("/runs/{run_id}/annotations/{frame}")
def annotate(run_id: str, frame: int, body: AnnotateRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Apply a brush stroke (paint / erase) or a whole label map (replace) to `frame`."""
    run = ws.run(run_id)
    run.check_frame(frame)
    mask = decode_mask(body.mask, (run.video.height, run.video.width), binary=body.op != "replace")
    labels = ws.annotate(run_id, frame, op=body.op, label=body.label, mask=mask, base_result=body.base_result)
    return _annotation_state(ws, run_id, frame, labels)


@router.delete("/runs/{run_id}/annotations/{frame}")
def clear(run_id: str, frame: int, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    ws.clear_annotation(run_id, frame)
    return _annotation_state(ws, run_id, frame, ws.annotation(run_id, frame))


@router.post("/runs/{run_id}/labels")
def add_label(run_id: str, body: LabelRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """Add a label to the run's table (an existing name is kept as it is)."""
    table = ws.add_label(run_id, body.name)
    return {"label_table": {str(k): v for k, v in table.items()}, "colours": label_colours(table)}


@router.post("/runs/{run_id}/pick")
def pick(run_id: str, body: PickRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    """The vessel component under the click (`angioseg.serve.pick`), painted into the frame's
    annotation with `label` when `apply`; "pixels" 0 when no vessel is within reach."""
    from angioseg.serve.pick import pick_component

    run = ws.run(run_id)
    run.check_frame(body.frame)
    component = pick_component(ws.pick_response(run_id, body.frame, body.filter), body.x, body.y, threshold=body.threshold)
    state: dict[str, Any] = {"pixels": int(component.sum()), "component": encode_rle(component.astype("uint8"))}
    if body.apply and component.any():
        labels = ws.annotate(run_id, body.frame, op="paint", label=body.label, mask=component, base_result=body.base_result)
        state.update(_annotation_state(ws, run_id, body.frame, labels))
    return state
