"""Propagating labelled frames through a run: what `angioseg propagate` calls.

A propagation (one-shot / few-shot video object segmentation) method is one whose
``needs_prompt`` is True: it takes one or more labelled frames (`angioseg.types.Prompt`) and
segments every frame of the run with the same objects. Here the labelled frames come from
label images (indexed or grey PNGs, `angioseg.io.read_label_image`), each holding any number
of objects (ids > 0), paired with frame indices.

The label table is built from the ids the masks hold, named ``object-<id>``, or from a JSON
object ``{"1": "vessel", "2": "catheter"}`` (text or a file) that names every one of them.

The bundle is the one `angioseg segment` writes (`angioseg.pipelines.bundle`), with two more
report.json entries: "prompt_frames" (the labelled frame indices, increasing) and
"prompt_masks" (the label images' file names, in the same order); "confidence" holds the
method's per-frame confidence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from angioseg.errors import InputError
from angioseg.methods import Segmentation, Segmenter
from angioseg.types import Prompt, Video, as_prompts

#: The method `propagate` runs when none is named: the learned memory network.
DEFAULT_PROPAGATION_METHOD = "fsvos"


def parse_label_names(text: str | os.PathLike[str] | Mapping[Any, Any] | None) -> dict[int, str] | None:
    """Label names from a JSON object ``{"1": "vessel", ...}`` given as text, as the path of a
    JSON file, or as a mapping; None stays None. Keys are non-negative integer ids."""
    if text is None:
        return None
    where = "label names"
    if isinstance(text, Mapping):
        raw: Any = dict(text)
    else:
        source = str(text)
        if not source.lstrip().startswith("{"):
            path = Path(source)
            if not path.is_file():
                raise InputError(f"label names {source!r} are neither a JSON object nor a JSON file")
            try:
                source = path.read_text()
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"cannot read the label names in {path}: {error}") from None
            where = f"label names in {path}"
        try:
            raw = json.loads(source)
        except ValueError as error:
            raise InputError(f"{where} are not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise InputError(f'{where} must be a JSON object such as {{"1": "vessel", "2": "catheter"}}')
    names: dict[int, str] = {}
    for key, value in raw.items():
        try:
            label = int(str(key).strip())
        except ValueError:
            label = -1
        if label < 0 or not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: {str(key)[:40]!r}: {str(value)[:40]!r} is not a non-negative id and a non-empty name")
        names[label] = value.strip()
    return names


def prompt_label_table(ids: Sequence[int], names: Mapping[int, str] | None = None) -> dict[int, str]:
    """{0: "background", id: name} for every id > 0 of `ids`: the name from `names` (which must
    name every id) or ``object-<id>``."""
    table: dict[int, str] = {0: (names or {}).get(0, "background")}
    missing = []
    for label in sorted({int(i) for i in ids if int(i) > 0}):
        if names is None:
            table[label] = f"object-{label}"
        elif label in names:
            table[label] = names[label]
        else:
            missing.append(label)
    if missing:
        raise InputError(f"the label names do not name the ids {missing} that the masks hold")
    return table


def prompts_from_masks(
    masks: Sequence[np.ndarray],
    frames: Sequence[int],
    *,
    names: Mapping[int, str] | None = None,
    sources: Sequence[str] | None = None,
) -> tuple[Prompt, ...]:
    """Prompts from `(H, W)` integer masks paired in order with frame indices (sorted by frame).

    Every mask must hold at least one object (id > 0); the shared label table is built from
    the ids of all masks (`prompt_label_table`). `sources` names the masks in messages.
    """
    sources = list(sources) if sources is not None else [f"mask {i + 1}" for i in range(len(masks))]
    if len(masks) != len(frames):
        raise InputError(f"{len(masks)} masks but {len(frames)} frames: give one --frame per --mask, in the same order")
    if not masks:
        raise InputError("propagation needs at least one labelled frame (a mask and its frame index)")
    seen: dict[int, str] = {}
    ids: set[int] = set()
    arrays = []
    for mask, frame, source in zip(masks, frames, sources):
        frame = int(frame)
        if frame < 0:
            raise InputError(f"frame {frame} of {source} is negative; frames count from 0")
        if frame in seen:
            raise InputError(f"{source} and {seen[frame]} both label frame {frame}")
        seen[frame] = source
        array = np.asarray(mask)
        if array.ndim != 2:
            raise InputError(f"{source} must be one (H, W) label image; got shape {array.shape}")
        present = {int(v) for v in np.unique(array) if v > 0}
        if not present:
            raise InputError(f"{source} is empty: it holds no object (no label id > 0)")
        if names is not None and present - set(names):
            raise InputError(f"{source} holds ids {sorted(present - set(names))} that the label names do not name")
        ids |= present
        arrays.append(array)
    table = prompt_label_table(sorted(ids), names)
    return as_prompts([Prompt(int(frame), array, table) for array, frame in zip(arrays, frames)])


def read_prompts(
    masks: Sequence[str | os.PathLike[str]],
    frames: Sequence[int],
    *,
    labels: str | os.PathLike[str] | Mapping[Any, Any] | None = None,
) -> tuple[Prompt, ...]:
    """Prompts from label images (`angioseg.io.read_label_image`) paired in order with frame
    indices; `labels`: the label names (`parse_label_names`). See `prompts_from_masks`."""
    from angioseg.io import read_label_image

    if len(masks) != len(frames):
        raise InputError(f"{len(masks)} masks but {len(frames)} frames: give one --frame per --mask, in the same order")
    names = parse_label_names(labels)
    arrays = [read_label_image(path) for path in masks]
    return prompts_from_masks(arrays, frames, names=names, sources=[Path(p).name for p in masks])


def check_prompts(video: Video, prompts: Sequence[Prompt], *, sources: Sequence[str] | None = None, run: str = "the run") -> None:
    """InputError unless every prompt's frame exists in `video` and its mask has the frames' size."""
    sources = list(sources) if sources is not None else [f"the mask of frame {p.frame}" for p in prompts]
    for prompt, source in zip(prompts, sources):
        if prompt.frame >= video.num_frames:
            raise InputError(f"frame {prompt.frame} ({source}) is out of range: {run} has {video.num_frames} frames "
                             f"(0 to {video.num_frames - 1})")
        if prompt.labels.shape != (video.height, video.width):
            height, width = prompt.labels.shape
            raise InputError(f"{source} is {width} x {height} pixels but the frames of {run} are {video.width} x {video.height}")


def make_propagator(method: str | Segmenter = DEFAULT_PROPAGATION_METHOD, *, device: str = "cpu") -> Segmenter:
    """The segmenter of `method` (spec or instance); InputError unless it takes labelled frames."""
    from angioseg.pipelines.segment import make_segmenter

    segmenter = make_segmenter(method, device=device)
    if not segmenter.needs_prompt:
        raise InputError(f"method {segmenter.name!r} does not propagate labelled frames (it needs none); "
                         f"use 'angioseg segment' for it, or a propagation method such as flow-propagate")
    return segmenter


def propagate_video(
    video: Video,
    prompts: Prompt | Sequence[Prompt],
    *,
    method: str | Segmenter = DEFAULT_PROPAGATION_METHOD,
    device: str = "cpu",
) -> Segmentation:
    """Segment every frame of `video` with the objects of the labelled frame(s) `prompts`."""
    prompts = as_prompts(prompts)
    check_prompts(video, prompts)
    return make_propagator(method, device=device).segment(video, prompt=prompts)


def propagate_to_bundle(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    masks: Sequence[str | os.PathLike[str]],
    frames: Sequence[int],
    labels: str | os.PathLike[str] | Mapping[Any, Any] | None = None,
    method: str | Segmenter = DEFAULT_PROPAGATION_METHOD,
    device: str = "cpu",
    overwrite: bool = False,
) -> tuple[Path, Segmentation]:
    """Propagate the label images `masks` (paired in order with `frames`) through the run
    `source` (anything `angioseg.io.read_video` opens) and write the bundle to `out`.

    Checked before anything is written: the masks (readable, one frame each, not empty, the
    label names), the output folder (as `segment_to_bundle`), the method (it must need a
    prompt); then, with the run read, each frame index and mask size. Any failure is one
    InputError and leaves no output. Returns (path, result).
    """
    from angioseg.io import read_video
    from angioseg.io.atomic import atomic_directory
    from angioseg.pipelines.bundle import check_bundle_target, is_bundle, write_bundle_contents

    prompts = read_prompts(masks, frames, labels=labels)
    by_frame = {int(frame): Path(path).name for path, frame in zip(masks, frames)}
    names = [by_frame[p.frame] for p in prompts]
    labels_file = isinstance(labels, (str, os.PathLike)) and not str(labels).lstrip().startswith("{")
    inputs = (source, *masks, *([labels] if labels_file else []))
    target = check_bundle_target(out, inputs=inputs, overwrite=overwrite)
    segmenter = make_propagator(method, device=device)
    with atomic_directory(target, replaceable=is_bundle) as tmp:
        video = read_video(source)
        check_prompts(video, prompts, sources=names, run=Path(source).name)
        result = segmenter.segment(video, prompt=prompts)
        extra = {"prompt_frames": [p.frame for p in prompts], "prompt_masks": names}
        write_bundle_contents(tmp, video, result, source=str(source), extra=extra)
    return target, result
