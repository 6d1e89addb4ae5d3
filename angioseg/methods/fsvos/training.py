"""Training of the FSVOS memory network (the paper's Sec. 3.3 and 4.1.3, scaled to a CPU).

Each sample is three frames of one run, in time order or reversed, a random 1..`max_skip`
frames apart: frame 0 carries the true masks of up to `max_objects` objects present in it;
frame 1 is segmented from frame 0's memory; frame 2 from frames 0 and 1, frame 1 stored with
its *predicted* soft masks (STCN's training scheme, so the network learns to read its own
predictions). The same random resized crop (scale 0.36-1, aspect 0.75-1.25), horizontal flip
and affine (rotation ±15°, shear ±10°) apply to the three frames; brightness (±10 %) and
contrast (±3 %) jitter per frame (the paper's augmentation, grey-level).

Loss::

    L = BCE_boot(frame 1) + BCE_boot(frame 2) + w · L_contrast(anchor = frame 2, keys = frames 0, 1)

with the bootstrapped cross-entropy keeping all pixels for the first 20 % of steps, then a
fraction falling linearly to 15 % at half-way (STCN's schedule), w = `contrastive_weight`
(0.01 in the paper; 0 turns it off) and the contrastive loss of `angioseg.nn.losses` on the
projection head's embedding, labels taken to feature resolution (`feature_labels`).

Classes in `exclude_labels` are erased from the training targets (set to background), so
they stay *unseen* for the evaluation. Adam with a cosine learning-rate decay and gradient-norm clipping. Run::

    python -m angioseg.methods.fsvos.training --data DIR [DIR...] --out RUN [--steps N]

RUN/fsvos.safetensors holds the weights and the training record; RUN/checkpoint.pt allows
``--resume``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from angioseg.data.davis import DavisFolder
from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.methods.fsvos.weights import save_fsvos
from angioseg.nn.fsvos import STRIDE, FSVOSNet, build_fsvos
from angioseg.nn.losses import bootstrapped_cross_entropy, spatiotemporal_contrastive_loss
from angioseg.nn.matching import MatchingConfig

WEIGHTS_NAME = "fsvos.safetensors"
CHECKPOINT_NAME = "checkpoint.pt"
#: A feature cell (stride 16) takes an object's id when the object covers this share of it.
FEATURE_LABEL_SHARE = 0.1


@dataclass
class FSVOSTrainConfig:
    """Everything that decides a training run (stored in the weights file)."""

    data: list[str]
    out: str
    width: str = "lite"
    steps: int = 3000
    batch: int = 4
    crop: int = 256
    max_skip: int = 5
    max_objects: int = 3
    lr: float = 2e-4
    weight_decay: float = 1e-5
    clip_grad: float = 1.0
    contrastive_weight: float = 0.01
    temperature: float = 0.1
    exclude_labels: list[str] = field(default_factory=lambda: ["electrode", "clip"])
    window: int = 15
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = 250
    log_every: int = 50
    #: Channels of the network's fine refinement (None: the width preset's; 0: none).
    refine_channels: int | None = None
    #: Start from these FSVOS weights (layers they lack, e.g. a new refinement, start fresh).
    init_from: str | None = None


@dataclass
class TrainingRun:
    """One training sequence, kept in memory as uint8 frames and uint8 labels."""

    name: str
    frames: np.ndarray  # (T, H, W) uint8
    labels: np.ndarray  # (T, H, W) uint8, excluded classes erased


def load_runs(folders: list[str], exclude_labels: list[str]) -> list[TrainingRun]:
    """Every annotated sequence of the DAVIS-style `folders`, excluded label names erased."""
    runs: list[TrainingRun] = []
    for folder in folders:
        davis = DavisFolder(folder)
        for name in davis.names:
            sequence = davis.load(name, motion=False)
            if sequence.masks is None:
                continue
            labels = sequence.masks.labels.astype(np.int64)
            for label_id, label_name in sequence.masks.label_table.items():
                if label_name in exclude_labels:
                    labels[labels == label_id] = 0
            frames = np.clip(np.round(sequence.video.frames * 255.0), 0, 255).astype(np.uint8)
            runs.append(TrainingRun(f"{Path(folder).name}/{name}", frames, labels.astype(np.uint8)))
    if not runs:
        raise InputError(f"no annotated sequences in {', '.join(folders)}")
    return runs


def bootstrap_fraction(step: int, steps: int) -> float:
    """Share of hardest pixels kept: 1 until 20 % of the steps, then linearly to 0.15 at 50 %."""
    start, end = 0.2 * steps, 0.5 * steps
    if step <= start:
        return 1.0
    if step >= end:
        return 0.15
    return 1.0 - 0.85 * (step - start) / (end - start)


def feature_labels(labels: torch.Tensor, objects: int) -> torch.Tensor:
    """``(B, H, W)`` class indices (0..objects) -> ``(B, ceil(H/16), ceil(W/16))`` at feature resolution.

    A cell takes the object covering the largest share of it when that share reaches
    `FEATURE_LABEL_SHARE` (thin vessels would vanish under a majority vote), else background.
    """
    one_hot = F.one_hot(labels.long(), objects + 1).permute(0, 3, 1, 2).float()
    h, w = labels.shape[-2:]
    one_hot = F.pad(one_hot, (0, (-w) % STRIDE, 0, (-h) % STRIDE))
    share = F.avg_pool2d(one_hot, STRIDE)
    if objects == 0:
        return torch.zeros(share.shape[0], *share.shape[2:], dtype=torch.long)
    best_share, best = share[:, 1:].max(dim=1)
    return torch.where(best_share >= FEATURE_LABEL_SHARE, best + 1, torch.zeros_like(best))


class ClipSampler:
    """Draws augmented three-frame training clips (module docstring)."""

    def __init__(self, runs: list[TrainingRun], config: FSVOSTrainConfig, rng: np.random.Generator) -> None:
        self.runs = runs
        self.config = config
        self.rng = rng

    def _frame_indices(self, length: int) -> list[int]:
        skips = self.rng.integers(1, self.config.max_skip + 1, size=2)
        span = int(skips.sum())
        if span >= length:
            skips = np.array([max(1, (length - 1) // 2)] * 2) if length >= 3 else np.zeros(2, int)
            span = int(skips.sum())
        start = int(self.rng.integers(0, max(1, length - span)))
        indices = [start, start + int(skips[0]), start + span]
        return indices[::-1] if self.rng.random() < 0.5 else indices

    def _geometry(self, height: int, width: int) -> np.ndarray:
        """A 2×3 affine from source pixels to the crop: resized crop + flip + rotation + shear."""
        crop = self.config.crop
        area = height * width * self.rng.uniform(0.36, 1.0)
        ratio = math.exp(self.rng.uniform(math.log(0.75), math.log(1.25)))
        box_w = min(width, math.sqrt(area * ratio))
        box_h = min(height, math.sqrt(area / ratio))
        x0 = self.rng.uniform(0, width - box_w)
        y0 = self.rng.uniform(0, height - box_h)
        angle = math.radians(self.rng.uniform(-15, 15))
        shear = math.radians(self.rng.uniform(-10, 10))
        flip = -1.0 if self.rng.random() < 0.5 else 1.0
        # source box centre -> crop centre, scaled, then rotated and sheared about the centre
        scale = np.diag([crop / box_w * flip, crop / box_h])
        rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        shear_m = np.array([[1.0, math.tan(shear)], [0.0, 1.0]])
        linear = rotate @ shear_m @ scale
        centre_src = np.array([x0 + box_w / 2, y0 + box_h / 2])
        centre_dst = np.array([crop / 2, crop / 2])
        return np.hstack([linear, (centre_dst - linear @ centre_src)[:, None]])

    def sample(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(frames (3, crop, crop) float32, class indices (3, crop, crop) int64, object count)."""
        crop = self.config.crop
        for _ in range(100):
            run = self.runs[int(self.rng.integers(len(self.runs)))]
            indices = self._frame_indices(len(run.frames))
            matrix = self._geometry(*run.frames.shape[1:])
            frames = np.stack([cv2.warpAffine(run.frames[i], matrix, (crop, crop), flags=cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_REFLECT) for i in indices]).astype(np.float32) / 255.0
            labels = np.stack([cv2.warpAffine(run.labels[i], matrix, (crop, crop), flags=cv2.INTER_NEAREST,
                                              borderMode=cv2.BORDER_CONSTANT, borderValue=0) for i in indices])
            ids, counts = np.unique(labels[0], return_counts=True)
            present = [int(i) for i, c in zip(ids, counts) if i != 0 and c >= 20]
            if not present:
                continue
            chosen = list(self.rng.permutation(present)[: self.config.max_objects])
            classes = np.zeros(labels.shape, np.int64)
            for position, obj in enumerate(chosen, start=1):
                classes[labels == obj] = position
            brightness = self.rng.uniform(-0.1, 0.1, size=(3, 1, 1))
            contrast = self.rng.uniform(0.97, 1.03, size=(3, 1, 1))
            mean = frames.mean(axis=(1, 2), keepdims=True)
            frames = np.clip((frames - mean) * contrast + mean + brightness, 0.0, 1.0).astype(np.float32)
            return frames, classes, len(chosen)
        raise InputError("could not draw a training clip with an object in its first frame after 100 tries")

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``frames (B, 3, 1, S, S)``, ``classes (B, 3, S, S)``, the padded object count O."""
        samples = [self.sample() for _ in range(self.config.batch)]
        frames = torch.from_numpy(np.stack([s[0] for s in samples]))[:, :, None]
        classes = torch.from_numpy(np.stack([s[1] for s in samples]))
        return frames, classes, max(s[2] for s in samples)


def _slice(features: dict[str, torch.Tensor], index: slice) -> dict[str, torch.Tensor]:
    return {k: (v if k == "size" else v[index]) for k, v in features.items()}


def clip_losses(net: FSVOSNet, frames: torch.Tensor, classes: torch.Tensor, objects: int, *, matching: MatchingConfig,
                fraction: float, contrastive_weight: float, temperature: float,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Losses of one batch of three-frame clips (module docstring).

    ``frames (B, 3, 1, S, S)``, ``classes (B, 3, S, S)`` with values 0..objects.
    """
    b = frames.shape[0]
    features = net.encode_key(frames.flatten(0, 1))  # batch index = sample * 3 + frame
    per_frame = [_slice(features, slice(i, None, 3)) for i in range(3)]
    masks0 = F.one_hot(classes[:, 0], objects + 1).permute(0, 3, 1, 2)[:, 1:].float()
    values0 = net.encode_value(per_frame[0], masks0)
    logits1, _ = net.segment(per_frame[1], per_frame[0]["key"][:, None], values0[:, None], matching)
    values1 = net.encode_value(per_frame[1], torch.softmax(logits1, dim=1)[:, 1:])
    keys01 = torch.stack([per_frame[0]["key"], per_frame[1]["key"]], dim=1)
    logits2, _ = net.segment(per_frame[2], keys01, torch.stack([values0, values1], dim=1), matching)
    segmentation = (bootstrapped_cross_entropy(logits1, classes[:, 1], fraction=fraction)
                    + bootstrapped_cross_entropy(logits2, classes[:, 2], fraction=fraction))
    losses = {"segmentation": segmentation}
    if contrastive_weight > 0:
        embedding = net.project(features).view(b, 3, -1, *features["key"].shape[-2:])
        cell_labels = feature_labels(classes.flatten(0, 1), objects).view(b, 3, *embedding.shape[-2:])
        terms = [spatiotemporal_contrastive_loss(embedding[i, 2], cell_labels[i, 2], embedding[i, :2], cell_labels[i, :2],
                                                 temperature=temperature, generator=generator) for i in range(b)]
        losses["contrastive"] = torch.stack(terms).mean()
        losses["total"] = segmentation + contrastive_weight * losses["contrastive"]
    else:
        losses["total"] = segmentation
    return losses


def initialise_from(net: FSVOSNet, path: str) -> list[str]:
    """Copy every tensor of the FSVOS weights at `path` into `net`; the names `net` has and
    the file lacks (a newly added stage) keep their fresh initialisation and are returned.
    A tensor the file has and `net` lacks, or of another shape, is refused."""
    from angioseg.methods.fsvos.weights import load_fsvos

    source, _ = load_fsvos(path)
    try:
        result = net.load_state_dict(source.state_dict(), strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise InputError(f"{path} does not fit this network ({str(error).splitlines()[-1].strip()})") from None
    if result.unexpected_keys:
        raise InputError(f"{path} holds layers this network lacks: {', '.join(result.unexpected_keys[:3])}")
    return list(result.missing_keys)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return "unknown"


def train(config: FSVOSTrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train as `config` says; returns the path of the weights file written in ``config.out``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    runs = load_runs(config.data, config.exclude_labels)
    net = build_fsvos(config.width, **({} if config.refine_channels is None else {"refine_channels": config.refine_channels}))
    if config.init_from and not resume:
        initialise_from(net, config.init_from)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    matching = MatchingConfig(window=config.window)
    generator = torch.Generator().manual_seed(config.seed)
    start_step, history = 0, []
    checkpoint = out / CHECKPOINT_NAME
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        generator.set_state(state["generator"])
        start_step, history = state["step"], state["history"]
    sampler = ClipSampler(runs, config, rng)
    net.train()
    started = time.perf_counter()
    running: dict[str, float] = {}
    for step in range(start_step, config.steps):
        frames, classes, objects = sampler.batch()
        losses = clip_losses(net, frames, classes, objects, matching=matching, fraction=bootstrap_fraction(step, config.steps),
                             contrastive_weight=config.contrastive_weight, temperature=config.temperature, generator=generator)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.clip_grad)
        optimiser.step()
        schedule.step()
        for key, value in losses.items():
            running[key] = running.get(key, 0.0) + float(value.detach())
        if (step + 1) % config.log_every == 0:
            entry = {"step": step + 1, "seconds": round(time.perf_counter() - started, 1),
                     **{k: round(v / config.log_every, 4) for k, v in running.items()}}
            history.append(entry)
            running = {}
            if progress:
                print(json.dumps(entry), flush=True)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            with atomic_file(checkpoint) as tmp:
                torch.save({"model": net.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                            "rng": rng.bit_generator.state, "generator": generator.get_state(), "step": step + 1,
                            "history": history}, tmp)
    net.eval()
    info = {"config": asdict(config), "steps_done": config.steps, "training_sequences": len(runs),
            "seconds": round(time.perf_counter() - started, 1), "history": history[-5:], "commit": _git_commit(),
            "command": " ".join(["python -m angioseg.methods.fsvos.training", *sys.argv[1:]]), "unseen_labels": config.exclude_labels}
    if config.init_from:
        info["init_from_sha256"] = hashlib.sha256(Path(config.init_from).read_bytes()).hexdigest()
    return save_fsvos(net, out / WEIGHTS_NAME, info=info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m angioseg.methods.fsvos.training", description="train the FSVOS memory network")
    parser.add_argument("--data", nargs="+", required=True, help="DAVIS-style folders of annotated runs")
    parser.add_argument("--out", required=True, help="run folder (weights, checkpoint)")
    defaults = FSVOSTrainConfig(data=[], out="")
    for name in ("width", "steps", "batch", "crop", "max_skip", "max_objects", "lr", "clip_grad", "contrastive_weight", "temperature",
                 "window", "seed", "threads", "checkpoint_every", "log_every", "refine_channels", "init_from"):
        value = getattr(defaults, name)
        kind = type(value) if value is not None else (str if name == "init_from" else int)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value)
    parser.add_argument("--exclude-labels", default=",".join(defaults.exclude_labels),
                        help="label names erased from training (unseen classes); empty for none")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in ("resume", "exclude_labels")}
    config = FSVOSTrainConfig(**options, exclude_labels=[s for s in args.exclude_labels.split(",") if s])
    try:
        path = train(config, resume=args.resume)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
