"""Fit RAFT to the exact motion of phantom runs (`angioseg flow train`).

What is supervised. A folder made by `angioseg data phantom` stores per sequence
`Motion/<seq>.npz` with `flow_backward` `(T-1, H, W, 2)`: b_t on frame t+1's grid with
frame_{t+1}(x) ≈ frame_t(x + b_t(x)), the exact motion of the phantom's *vessel layer*
(vessels, catheter and heart shadow, which share one deformation). RAFT(image1, image2)
estimates f with image1(x) ≈ image2(x + f(x)), so a training pair is image1 = frame t+1,
image2 = frame t, target b_t. The forward flow is not stored in the folder (the generator
computes it but does not write it), so only this direction is supervised; horizontal and
vertical flips (exact: the flow is mirrored and one component negated) augment it.

The frames add (in attenuation) a second, transparent layer, the background (lungs, ribs,
spine, diaphragm), which follows breathing only, so away from the vessels the image may show
the background's motion, not b_t; the folder holds no mask of where b_t is what one sees. By
default (`supervision="vessel"`) the loss is therefore taken only where frame t+1's
annotation marks a vessel or the catheter (label > 0, the same grid as b_t), dilated by
`mask_dilation` pixels to take in their blurred edges: there the vessel layer dominates and
b_t is the right target. `supervision="dense"` uses every pixel (it teaches RAFT to follow
the heart rather than the ribs).

Loss (RAFT paper, eq. 7) over the N iteration estimates f_i with weights w (1 on supervised
pixels, else 0)::

    L = sum_i gamma^(N - i) * sum_x w(x) |f_i(x) - b(x)|_1 / (2 sum_x w(x)),   gamma = 0.8

(normalised by the supervised area, not by all pixels as released, so that its scale does
not depend on how much vessel a crop holds). Optimiser as released: AdamW, a one-cycle
learning rate (linear, 5 % warm-up, over steps + 100), gradient norm clipped at 1. Crops are
square, a multiple of 8, placed around a random supervised pixel. Batch norm (the large
configuration's context encoder) is frozen when training starts from weights, as in the
release's fine-tuning stages.

Writes to OUT: `raft-<config>.safetensors` (final weights; metadata: config, command, data,
settings, final loss), `checkpoint.safetensors` every `checkpoint_every` steps, and
`train_log.json` (settings, loss and end-point error per step).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from angioseg.errors import InputError
from angioseg.flow.raft import RAFT, build_raft, get_config, load_raft, save_raft
from angioseg.io.atomic import atomic_file

SUPERVISIONS = ("vessel", "dense")
CHECKPOINT_NAME = "checkpoint.safetensors"
LOG_NAME = "train_log.json"


@dataclass(frozen=True)
class FlowPairs:
    """Training pairs of one sequence, all on frame t+1's grid.

    Attributes:
        name: sequence name.
        frames: `(T, H, W)` float32 in [0, 1]; pair t is (frames[t + 1], frames[t]).
        flow: `(T-1, H, W, 2)` float32 target b_t (dx, dy).
        weight: `(T-1, H, W)` float32 supervision weight (0 or 1).
    """

    name: str
    frames: np.ndarray
    flow: np.ndarray
    weight: np.ndarray


@dataclass
class RaftTrainResult:
    """What `train_raft` produced: final weights path, per-step loss and EPE, seconds."""

    weights: Path
    losses: list[float] = field(default_factory=list)
    epes: list[float] = field(default_factory=list)
    seconds: float = 0.0


def supervision_weight(labels: np.ndarray | None, *, shape: tuple[int, int, int], supervision: str, dilation: int) -> np.ndarray:
    """`(T-1, H, W)` weights for pairs (t+1, t) from the label maps `(T, H, W)` (module docstring)."""
    if supervision == "dense":
        return np.ones(shape, np.float32)
    if supervision != "vessel":
        raise InputError(f"unknown supervision {supervision!r}; choose one of {', '.join(SUPERVISIONS)}")
    if labels is None:
        raise InputError("supervision 'vessel' needs annotations (Annotations/<seq>/); use supervision 'dense'")
    masks = (labels[1:] > 0).astype(np.uint8)
    if dilation > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1, 2 * dilation + 1))
        masks = np.stack([cv2.dilate(mask, kernel) for mask in masks]) if len(masks) else masks
    return masks.astype(np.float32)


def load_flow_pairs(
    folders: Sequence[str | Path], *, supervision: str = "vessel", mask_dilation: int = 2, limit: int | None = None
) -> list[FlowPairs]:
    """Every sequence with exact motion in the DAVIS-style `folders` (the first `limit` of each)."""
    from angioseg.data.davis import DavisFolder

    pairs = []
    for root in folders:
        folder = DavisFolder(root)
        for name in folder.names[:limit] if limit else folder.names:
            sequence = folder.load(name, motion=True)
            if sequence.flow_backward is None or sequence.video.num_frames < 2:
                continue
            labels = None if sequence.masks is None else sequence.masks.labels
            frames = sequence.video.frames.astype(np.float32)
            weight = supervision_weight(labels, shape=sequence.flow_backward.shape[:3], supervision=supervision, dilation=mask_dilation)
            pairs.append(FlowPairs(name, frames, sequence.flow_backward.astype(np.float32), weight))
    if not pairs:
        raise InputError(f"no sequence with exact motion (Motion/<seq>.npz) and two frames in {', '.join(map(str, folders))}")
    return pairs


class PairSampler:
    """Random crops `crop` x `crop` of random pairs, placed around a random supervised pixel."""

    def __init__(self, sequences: list[FlowPairs], *, crop: int, flip: bool, rng: np.random.Generator) -> None:
        self.sequences = sequences
        self.crop = crop
        self.flip = flip
        self.rng = rng
        self.index = [(s, t) for s, seq in enumerate(sequences) for t in range(len(seq.flow)) if seq.weight[t].any()]
        if not self.index:
            raise InputError("no frame pair has a supervised pixel (no vessel or catheter in the annotations)")

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(image1 `(B, c, c)`, image2 `(B, c, c)`, flow `(B, c, c, 2)`, weight `(B, c, c)`)."""
        items = [self._one() for _ in range(batch)]
        return tuple(np.stack(parts) for parts in zip(*items))  # type: ignore[return-value]

    def _one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        s, t = self.index[int(self.rng.integers(len(self.index)))]
        seq = self.sequences[s]
        height, width = seq.weight.shape[1:]
        ys, xs = np.nonzero(seq.weight[t])
        pick = int(self.rng.integers(len(ys)))
        top = self._origin(int(ys[pick]), height)
        left = self._origin(int(xs[pick]), width)
        window = (slice(top, top + self.crop), slice(left, left + self.crop))
        image1, image2 = seq.frames[t + 1][window], seq.frames[t][window]
        flow, weight = seq.flow[t][window].copy(), seq.weight[t][window]
        if self.flip and self.rng.uniform() < 0.5:
            image1, image2, flow, weight = image1[:, ::-1], image2[:, ::-1], flow[:, ::-1] * [-1.0, 1.0], weight[:, ::-1]
        if self.flip and self.rng.uniform() < 0.5:
            image1, image2, flow, weight = image1[::-1], image2[::-1], flow[::-1] * [1.0, -1.0], weight[::-1]
        return image1, image2, flow.astype(np.float32), weight

    def _origin(self, centre: int, size: int) -> int:
        """A crop origin whose window holds `centre`, uniformly among those inside the frame."""
        low = max(0, centre - self.crop + 1)
        high = min(size - self.crop, centre)
        return int(self.rng.integers(low, high + 1))


def sequence_loss(estimates: list[Tensor], target: Tensor, weight: Tensor, *, gamma: float = 0.8) -> tuple[Tensor, Tensor]:
    """(loss, end-point error of the last estimate on supervised pixels), see the module docstring.

    estimates: N tensors `(B, 2, H, W)`; target `(B, 2, H, W)`; weight `(B, H, W)`.
    """
    total = weight.sum().clamp_min(1e-6)
    count = len(estimates)
    loss = target.new_zeros(())
    for i, estimate in enumerate(estimates):
        loss = loss + gamma ** (count - 1 - i) * (weight[:, None] * (estimate - target).abs()).sum() / (2 * total)
    epe = ((estimates[-1] - target).norm(dim=1) * weight).sum() / total
    return loss, epe.detach()


def _to_images(frames: np.ndarray, device: str, dtype: torch.dtype) -> Tensor:
    """`(B, H, W)` in [0, 1] -> `(B, 3, H, W)` in [0, 255] (grey repeated)."""
    tensor = torch.as_tensor(np.ascontiguousarray(frames), device=device).to(dtype) * 255.0
    return tensor[:, None].expand(-1, 3, -1, -1).contiguous()


def _crop_size(requested: int, sequences: list[FlowPairs], minimum: int) -> int:
    smallest = min(min(seq.frames.shape[1:]) for seq in sequences)
    crop = min(requested, smallest) // 8 * 8
    if crop < minimum:
        raise InputError(f"RAFT training needs crops of at least {minimum} px (a multiple of 8); frames are {smallest} px and --crop is {requested}")
    return crop


def _freeze_batchnorm(model: RAFT) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()


def _initial_model(config: str, init: str | None, *, seed: int, device: str) -> RAFT:
    if init is not None:
        return load_raft(init, config=config, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_raft(config, device=device)


def _check_settings(steps: int, batch: int, iterations: int, lr: float, gamma: float, checkpoint_every: int) -> None:
    if min(steps, batch, iterations, checkpoint_every) < 1:
        raise InputError("steps, batch, iterations and checkpoint_every must be positive integers")
    if not lr > 0 or not 0 < gamma <= 1:
        raise InputError(f"lr must be > 0 and gamma in (0, 1]; got lr={lr}, gamma={gamma}")


def train_raft(
    *,
    data: str | Path | Sequence[str | Path],
    out: str | Path,
    config: str = "small",
    init: str | Path | None = None,
    steps: int = 2000,
    batch: int = 4,
    crop: int = 256,
    iterations: int = 12,
    lr: float = 2e-4,
    weight_decay: float = 1e-5,
    gamma: float = 0.8,
    clip: float = 1.0,
    supervision: str = "vessel",
    mask_dilation: int = 2,
    flip: bool = True,
    seed: int = 0,
    device: str = "cpu",
    checkpoint_every: int = 500,
    limit: int | None = None,
    command: str = "",
    progress: bool | None = None,
) -> RaftTrainResult:
    """Train RAFT (`config`, from scratch or from `init` weights) on phantom folders `data`;
    writes OUT/raft-<config>.safetensors (module docstring). Returns the per-step record."""
    from angioseg.options import check_device

    _check_settings(steps, batch, iterations, lr, gamma, checkpoint_every)
    device = check_device(device, option="device")
    folders = [data] if isinstance(data, (str, Path)) else list(data)
    cfg = get_config(config)
    sequences = load_flow_pairs(folders, supervision=supervision, mask_dilation=mask_dilation, limit=limit)
    settings = {
        "config": cfg.name, "init": None if init is None else str(init), "data": [str(f) for f in folders], "steps": steps,
        "batch": batch, "crop": _crop_size(crop, sequences, cfg.min_size), "iterations": iterations, "lr": lr,
        "weight_decay": weight_decay, "gamma": gamma, "clip": clip, "supervision": supervision,
        "mask_dilation": mask_dilation, "flip": flip, "seed": seed, "checkpoint_every": checkpoint_every,
        "sequences": [s.name for s in sequences],
        "target": "flow_backward (vessel layer, frame t+1 -> t) for RAFT(frame t+1, frame t)",
    }
    model = _initial_model(cfg.name, None if init is None else str(init), seed=seed, device=device)
    sampler = PairSampler(sequences, crop=settings["crop"], flip=flip, rng=np.random.default_rng(seed))
    return _fit(model, sampler, settings, out=Path(out), command=command, progress=progress, device=device)


def _fit(model: RAFT, sampler: PairSampler, settings: dict, *, out: Path, command: str, progress: bool | None, device: str) -> RaftTrainResult:
    steps, lr = settings["steps"], settings["lr"]
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=settings["weight_decay"], eps=1e-8)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=steps + 100, pct_start=0.05, cycle_momentum=False, anneal_strategy="linear"
    )
    dtype = next(model.parameters()).dtype
    result = RaftTrainResult(weights=out / f"raft-{settings['config']}.safetensors")
    start = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc="raft", unit="step", disable=None if progress is None else not progress)
    for step in bar:
        model.train()
        if settings["init"] is not None:
            _freeze_batchnorm(model)
        image1, image2, flow, weight = sampler.sample(settings["batch"])
        estimates = model(_to_images(image1, device, dtype), _to_images(image2, device, dtype), iterations=settings["iterations"])
        target = torch.as_tensor(flow, device=device).to(dtype).permute(0, 3, 1, 2)
        loss, epe = sequence_loss(estimates, target, torch.as_tensor(np.ascontiguousarray(weight), device=device).to(dtype), gamma=settings["gamma"])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings["clip"])
        optimiser.step()
        schedule.step()
        result.losses.append(float(loss.detach()))
        result.epes.append(float(epe))
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}", epe=f"{float(epe):.2f}")
        if step % settings["checkpoint_every"] == 0 and step < steps:
            _save(model, out / CHECKPOINT_NAME, settings, command=command, step=step, result=result)
    result.seconds = time.perf_counter() - start
    _save(model, result.weights, settings, command=command, step=steps, result=result)
    _write_log(out / LOG_NAME, settings, command=command, result=result)
    return result


def _save(model: RAFT, path: Path, settings: dict, *, command: str, step: int, result: RaftTrainResult) -> None:
    recent = result.losses[-50:]
    metadata = {
        "command": command, "step": str(step), "settings": settings,
        "final_loss": str(float(np.mean(recent))) if recent else "nan",
        "final_epe": str(float(np.mean(result.epes[-50:]))) if result.epes else "nan",
    }
    save_raft(model.eval(), path, metadata=metadata)


def _write_log(path: Path, settings: dict, *, command: str, result: RaftTrainResult) -> None:
    log = {"command": command, "settings": settings, "seconds": result.seconds, "weights": str(result.weights),
           "loss": result.losses, "epe": result.epes}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(log, indent=1) + "\n")


__all__ = ["FlowPairs", "PairSampler", "RaftTrainResult", "load_flow_pairs", "sequence_loss", "supervision_weight", "train_raft"]
