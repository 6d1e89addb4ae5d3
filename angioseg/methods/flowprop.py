"""Baseline propagation method ``flow-propagate``: the labelled frame(s) carried to every other
frame along chained dense optical flow.

For a prompt at frame p with labels L_p, the per-class probabilities start one-hot,
P_p[c](x) = [L_p(x) = id_c], and are carried one frame at a time, each step sampling the
previous frame's probabilities at the positions the flow points to (bilinear per channel, the
border repeated, then renormalised so that the channels sum to 1 at every pixel):

    forward  (t > p):  P_t(x) = N( P_{t-1}(x + b(x)) ),  b = flow(frame t -> frame t-1), on t's grid
    backward (t < p):  P_t(x) = N( P_{t+1}(x + f(x)) ),  f = flow(frame t -> frame t+1), on t's grid
    N(P)[c] = P[c] / Σ_k P[k]

(flow(a -> b) = g with a(x) ≈ b(x + g(x)), the `angioseg.flow` convention; `angioseg.warp.warp_backward`
does the sampling). So every frame costs exactly one flow, estimated from the frame being
labelled towards its already-labelled neighbour.

With several prompts each frame takes the chain of the temporally nearest prompt (a tie goes
to the earlier prompt), so a chain never passes a labelled frame.

Output:
- labels = id of argmax_c P_t[c] (plain argmax: a pixel goes to its most probable class, the
  background included; at a prompt frame this is the prompt exactly);
- `class_probabilities` `(T, C, H, W)`, the label table being the union of the prompts' tables;
- confidence_t = mean of max_c P_t[c] over the pixels labelled as an object (label > 0) in
  frame t, or over all pixels where no pixel is; 1.0 at a prompt frame. Bilinear sampling
  blurs the one-hot maps a little more at every step, so the confidence falls along a chain
  and where the flow tears (occlusions, the contrast front).

Options: ``flow`` (a flow backend spec, `angioseg.flow.backend_from_spec`: "dis" (default),
"dis:preset=fast", "raft:weights=raft.safetensors"...), ``device`` (given to backends that take
one: RAFT), ``dtype`` ("float32", the precision of the probabilities).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from angioseg.errors import InputError
from angioseg.methods.base import Segmentation, Segmenter, register
from angioseg.postprocess.labels import one_hot_probabilities
from angioseg.types import LabelMap, Prompt, Video

DTYPES = ("float32",)


def nearest_prompt(frame_count: int, prompt_frames: list[int]) -> np.ndarray:
    """`(T,)` index into the sorted `prompt_frames` of each frame's temporally nearest prompt
    (a tie goes to the earlier prompt)."""
    frames = np.arange(frame_count)[:, None]
    distance = np.abs(frames - np.asarray(prompt_frames)[None, :])
    return np.argmin(distance, axis=1)  # argmin takes the first minimum: the earlier prompt


def carry(probabilities: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`(C, H, W)` probabilities sampled at x + flow(x) (bilinear, border repeated), renormalised."""
    from angioseg.warp import warp_backward

    warped = warp_backward(np.moveaxis(probabilities, 0, -1), flow)
    if warped.ndim == 2:
        warped = warped[..., None]
    warped = np.clip(np.moveaxis(warped, -1, 0), 0.0, 1.0)
    total = warped.sum(axis=0, keepdims=True)
    return np.divide(warped, total, out=np.full_like(warped, 1.0 / warped.shape[0]), where=total > 0).astype(np.float32)


def frame_confidence(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean of max_c P[c] over the pixels labelled as an object, else over every pixel."""
    best = probabilities.max(axis=0)
    objects = labels > 0
    value = float(best[objects].mean()) if objects.any() else float(best.mean())
    return min(max(value, 0.0), 1.0)


@register
class FlowPropagation(Segmenter):
    """Labelled frame(s) carried along chained optical flow (module docstring)."""

    name = "flow-propagate"
    description = "one-shot baseline: the labelled frame(s) carried along chained DIS optical flow (needs --mask/--frame)"
    needs_prompt = True

    def __init__(self, *, device: str = "cpu", dtype: str = "float32", flow: str = "dis") -> None:
        super().__init__(device=device, dtype=dtype)
        from angioseg.flow import backend_from_spec

        if dtype not in DTYPES:
            raise InputError(f"flow-propagate computes in {', '.join(DTYPES)}; got dtype {dtype!r}")
        if not isinstance(flow, str):
            raise InputError(f"flow must be a flow backend spec such as 'dis' or 'dis:preset=fast'; got {flow!r}")
        self.flow = flow
        self.backend = backend_from_spec(flow, device=device)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "flow": self.flow, "flow_options": self.backend.options()}

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        table: dict[int, str] = {0: "background"}
        for one in prompts:
            table.update(one.label_table)
        ids = sorted(table)
        count, height, width = video.shape
        frames = video.frames
        probabilities = np.zeros((count, len(ids), height, width), np.float32)
        confidence = np.zeros(count, np.float32)
        owner = nearest_prompt(count, [p.frame for p in prompts])
        flow_seconds = 0.0
        start = time.perf_counter()
        for index, prompt in enumerate(prompts):
            p = prompt.frame
            probabilities[p] = one_hot_probabilities(prompt.labels, table)
            mine = np.flatnonzero(owner == index)
            after = [t for t in mine if t > p]  # consecutive p+1..last, as ownership is an interval
            before = [t for t in mine[::-1] if t < p]  # p-1 down to first
            for targets, step in ((after, -1), (before, 1)):
                if not targets:
                    continue
                clock = time.perf_counter()
                sources = [t + step for t in targets]
                flows = self.backend.estimate_pairs(frames[targets], frames[sources])
                flow_seconds += time.perf_counter() - clock
                for t, source, flow in zip(targets, sources, flows):
                    probabilities[t] = carry(probabilities[source], flow)
        channel_ids = np.asarray(ids, dtype=np.uint8 if ids[-1] < 256 else np.uint16)
        labels = channel_ids[np.argmax(probabilities, axis=1)]
        for t in range(count):
            confidence[t] = frame_confidence(probabilities[t], labels[t])
        for prompt in prompts:
            labels[prompt.frame] = prompt.labels  # argmax of one-hot already gives it; exact by construction
            confidence[prompt.frame] = 1.0
        timings = {"flow": flow_seconds, "propagate": time.perf_counter() - start - flow_seconds}
        return Segmentation(LabelMap(labels, table), probabilities if len(ids) > 2 else probabilities[:, 1],
                            timings=timings, confidence=confidence)
