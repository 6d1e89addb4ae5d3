"""Training loop for the supervised segmenters (`angioseg train`).

Loss (both CE-Net video papers): soft Dice on the vessel probability, plus L2 weight
regularisation as weight decay λ‖w‖² (λ = `weight_decay`)::

    L = 1 - (2 Σ p g + 1) / (Σ p + Σ g + 1)  (+ λ ‖w‖² through the optimiser)

Optimiser: Adam (default, with a cosine learning-rate decay) or SGD with momentum 0.9 at
2e-4 (the 3D-2D paper's setting). Checkpoints (model, optimiser, step, random states) are
written every `checkpoint_every` steps; `resume=True` continues from the last one and, for a
fixed seed, gives the same weights as an uninterrupted run. The best model by validation Dice
is exported as safetensors (best.safetensors) with the command and data that made it, and
the final step as last.safetensors.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from angioseg.errors import InputError
from angioseg.io.atomic import check_output_location
from angioseg.io.atomic import atomic_file
from angioseg.data.augment import SiteAugmentation
from angioseg.methods.supervised.clips import ClipSampler, TrainingSequence, load_sequences
from angioseg.methods.supervised.weights import ModelSpec, get_spec, save_weights
from angioseg.nn import count_parameters, dice_loss

CHECKPOINT_NAME = "checkpoint.pt"
#: What `validation_dice` measures (recorded in the weights file).
VALIDATION_METRIC = "mean Dice over frames with vessel (evenly spaced, up to val_frames per sequence)"
BEST_NAME = "best.safetensors"
LAST_NAME = "last.safetensors"


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in the weights file)."""

    model: str
    data: list[str]
    out: str
    val: list[str] = field(default_factory=list)
    steps: int = 2000
    batch: int = 8
    crop: int = 256
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 1e-5
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = 200
    val_every: int = 200
    val_frames: int = 8
    limit: int | None = None
    init: str | None = None
    command: str = ""
    #: "basic" (flips, rotations, gamma/contrast, noise: the first recipe) or "site"
    #: (`angioseg.data.augment.SiteAugmentation`: what differs between hospitals).
    augment: str = "basic"
    #: Share of samples whose clip is one frame repeated (a still) / played at half speed.
    static_fraction: float = 0.0
    slow_fraction: float = 0.0
    #: "dice" (soft Dice) or "dice+bce" (soft Dice + binary cross-entropy on the logits).
    loss: str = "dice"
    #: The style of the training targets, recorded in the weights: "all" (every contrast-filled
    #: vessel) or "syntax" (ARCADE's major segments); `angioseg methods` shows it.
    label_style: str = "all"
    #: Training folders whose mask outlines are approximate (e.g. ARCADE polygons with added
    #: branches): within `ignore_band` pixels of their outlines the loss is not counted.
    rough_data: list[str] = field(default_factory=list)
    ignore_band: int = 2


LOSSES = ("dice", "dice+bce")


def training_loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """`kind` "dice": soft Dice on sigmoid(logits); "dice+bce": that plus the mean binary
    cross-entropy of the logits, L = L_Dice + BCE(σ(z), g). logits, targets `(B, 1, H, W)`.

    Pixels whose target is `IGNORE` (-1; rough outlines) count in neither term: with v the
    valid-pixel indicator, Dice uses p·v and g·v, and BCE is averaged over the valid pixels.
    """
    valid = targets >= 0
    if bool(valid.all()):
        loss = dice_loss(logits, targets)
        if kind == "dice+bce":
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
        return loss
    weight = valid.to(logits.dtype)
    clean = targets.clamp(min=0.0)
    probabilities = torch.sigmoid(logits) * weight
    overlap = (probabilities * clean).sum()
    loss = 1.0 - (2.0 * overlap + 1.0) / (probabilities.sum() + (clean * weight).sum() + 1.0)
    if kind == "dice+bce":
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, clean, weight=weight, reduction="sum")
        loss = loss + bce / weight.sum().clamp(min=1.0)
    return loss


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    raise InputError(f"unknown optimizer {config.optimizer!r}; choose adam or sgd")


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up over the first 5 % of steps, then cosine decay to 5 % of `lr` (Adam); SGD keeps `lr`."""
    if config.optimizer == "sgd":
        return config.lr
    warmup = max(1, config.steps // 20)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.inference_mode()
def validation_dice(model: torch.nn.Module, spec: ModelSpec, sequences: list[TrainingSequence], *, frames_per_sequence: int) -> float:
    """Mean Dice of the thresholded prediction over evenly spaced frames of each sequence that
    show vessel (`VALIDATION_METRIC`). Frames before the contrast arrives are skipped: there
    the Dice is 1 or 0 on a single stray pixel, which made the choice of the best step noisy."""
    from angioseg.methods.supervised.inference import predict_probabilities

    was_training = model.training
    model.eval()
    scores = []
    for sequence in sequences:
        count = sequence.frames.shape[0]
        with_vessel = np.flatnonzero(sequence.vessel.reshape(count, -1).any(axis=1))
        if with_vessel.size == 0:
            continue
        spots = np.linspace(0, with_vessel.size - 1, min(frames_per_sequence, with_vessel.size)).round().astype(int)
        picks = np.unique(with_vessel[spots])
        frames = sequence.frames.astype(np.float32) / 255.0
        probabilities = predict_probabilities(model, spec, frames, frame_indices=picks)
        for index, probability in zip(picks, probabilities):
            pred, truth = probability >= 0.5, sequence.vessel[index]
            scores.append(2.0 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    model.train(was_training)
    return float(np.mean(scores)) if scores else 0.0


def save_checkpoint(path: Path, model, optimizer, step: int, sampler: ClipSampler, best: float, history: list) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "best_val_dice": best,
        "torch_rng": torch.get_rng_state(),
        "sampler_rng": json.dumps(sampler.rng.bit_generator.state),
        "history": json.dumps(history),
    }
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, model, optimizer, sampler: ClipSampler) -> tuple[int, float, list]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    sampler.rng.bit_generator.state = json.loads(state["sampler_rng"])
    return int(state["step"]), float(state["best_val_dice"]), json.loads(state["history"])


def initialise_from(model: torch.nn.Module, spec: ModelSpec, path: str) -> dict[str, Any]:
    """Load the weights at `path` (same architecture and options) into `model`; returns their info."""
    from angioseg.methods.supervised.weights import load_model

    source, source_spec, info = load_model(path)
    if source_spec != spec:
        raise InputError(f"--init {path} holds a {source_spec.architecture} {source_spec.options} (radius "
                         f"{source_spec.radius}), not the {spec.architecture} {spec.options} being trained")
    model.load_state_dict(source.state_dict())
    return info


def train(config: TrainConfig, *, resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train `config.model`; returns a summary (steps, best validation Dice, paths, seconds)."""
    spec = get_spec(config.model)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = check_output_location(config.out)
    sequences = load_sequences(config.data, limit=config.limit, rough=config.rough_data)
    val_sequences = load_sequences(config.val) if config.val else []
    if config.augment not in ("basic", "site"):
        raise InputError(f"augment must be 'basic' or 'site'; got {config.augment!r}")
    if config.loss not in LOSSES:
        raise InputError(f"loss must be one of {', '.join(LOSSES)}; got {config.loss!r}")
    augmentation = SiteAugmentation() if config.augment == "site" else None
    sampler = ClipSampler(sequences, radius=spec.radius, crop=config.crop, seed=config.seed, augmentation=augmentation,
                          static_fraction=config.static_fraction, slow_fraction=config.slow_fraction,
                          ignore_band=config.ignore_band)
    model = spec.build().train()
    init_info = initialise_from(model, spec, config.init) if config.init else None
    optimizer = make_optimizer(model, config)
    step, best, history = 0, -1.0, []
    out.mkdir(parents=True, exist_ok=True)  # only once every input has been read and checked
    checkpoint = out / CHECKPOINT_NAME
    if resume and checkpoint.exists():
        step, best, history = load_checkpoint(checkpoint, model, optimizer, sampler)
        log(f"resumed from step {step}")
    log(f"{config.model}: {count_parameters(model) / 1e6:.2f} M parameters, {len(sequences)} training sequences")
    start = time.perf_counter()
    bar = tqdm(total=config.steps, initial=step, desc=f"train {config.model}", unit="step", disable=None)
    running = None
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        inputs, targets = sampler.batch(config.batch)
        loss = training_loss(model(inputs), targets, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        value = loss.item()
        running = value if running is None else 0.95 * running + 0.05 * value
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}")
        if bar.disable and step % 50 == 0:  # no terminal: a plain progress line instead
            log(f"step {step}/{config.steps}: loss {running:.4f} ({time.perf_counter() - start:.0f} s)")
        if val_sequences and (step % config.val_every == 0 or step == config.steps):
            dice = validation_dice(model, spec, val_sequences, frames_per_sequence=config.val_frames)
            history.append({"step": step, "loss": running, "val_dice": dice})
            log(f"step {step}: loss {running:.4f}, validation Dice {dice:.4f}")
            if dice > best:
                best = dice
                save_weights(model, spec, out / BEST_NAME, info=_info(config, step, dice, init_info))
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(checkpoint, model, optimizer, step, sampler, best, history)
    bar.close()
    save_weights(model, spec, out / LAST_NAME, info=_info(config, step, history[-1]["val_dice"] if history else None, init_info))
    if not val_sequences:
        save_weights(model, spec, out / BEST_NAME, info=_info(config, step, None, init_info))
    summary = {"model": config.model, "steps": step, "best_val_dice": best if val_sequences else None,
               "weights": str(out / BEST_NAME), "seconds": time.perf_counter() - start, "history": history}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _info(config: TrainConfig, step: int, val_dice: float | None, init_info: dict[str, Any] | None) -> dict[str, Any]:
    """What the weights file records: the run's config, best step, its validation Dice, and the
    recorded info of the weights it started from (`--init`), so a chain of runs stays traceable."""
    info = {"config": asdict(config), "step": step, "val_dice": val_dice, "val_metric": VALIDATION_METRIC,
            "torch": torch.__version__}
    if init_info is not None:
        info["initialised_from"] = init_info
    return info
