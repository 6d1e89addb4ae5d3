"""Training of DSA-LTDNet and its ablations (the paper's Sec. 2.4 and 4.1), scaled to a CPU.

Data: DAVIS-style folders (`angioseg.data.davis`) of DSA runs whose label maps name a liver and
a tumour label (``{0: background, 1: liver, 2: tumour}``, tumour drawn over liver): liver mask
= liver or tumour pixels, tumour mask = tumour pixels. In each run the key frame k is chosen
automatically (`keyframe.select_key_frame`) and its masks are the targets.

Samples (the paper's augmentation, Sec. 3): the key frame and the 2 frames after it (those
that exist), each with the *key frame's* masks, each with its own inputs (TDL window, FD...
ending at that frame). No other augmentation: no rotation and no flips, as in the paper — the
liver's place (upper left of the image) is anatomical knowledge the networks should use, and
the LRS guidance relies on it. A run with fewer than 15 frames, or whose key frame has fewer
than 9 frames before it (a TDL network needs the 10 ending at each sample), is skipped and
named in the training record (whatever the variant, so that every variant trains on the same
samples).

Optimisation: Adam, learning rate 1e-3 with cosine annealing to 0 over the steps
(``CosineAnnealingLR``), batch 8 drawn without replacement from the samples (a new
permutation each pass), inputs resized to 256². Loss (`angioseg.nn.ltdnet.ltdnet_loss`)::

    L_total = λ0·L1(TD, FD) + λ1·(½ BCE + ½ Dice)(liver) + (½ BCE + ½ Dice)(tumour)

with λ0 = 0.1, λ1 = 1 where the variant has the term (λ0 = 0 for "TDL w/o supervision").
Variants with ``pretrain_tdl`` first train the TDL alone against FD with L1 for
`pretrain_steps` steps (Adam 1e-3, its own cosine schedule), then everything jointly.

Resumable: RUN/checkpoint.pt (network, optimiser, schedule, phase, step, random states) is
written every `checkpoint_every` steps; ``resume=True`` continues from it and, for a fixed seed,
ends with the same weights as an uninterrupted run. RUN/weights.safetensors holds the final
network with its provenance (config, data folders and their generator records, steps, git
commit); RUN/summary.json the loss history.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from angioseg.data.davis import DavisFolder
from angioseg.errors import InputError
from angioseg.io.atomic import check_output_location
from angioseg.io.atomic import atomic_file
from angioseg.methods.ltdnet.inputs import InputSpec, resize_frames, run_network, sample_inputs, soft_mask, to_batch
from angioseg.methods.ltdnet.keyframe import MIN_FRAMES, flow_between, select_key_frame
from angioseg.methods.ltdnet.weights import get_variant, save_ltdnet
from angioseg.nn import count_parameters
from angioseg.nn.ltdnet import PAPER_A, LTDNet, LTDNetConfig, ltdnet_loss, tdl_loss

WEIGHTS_NAME = "weights.safetensors"
CHECKPOINT_NAME = "checkpoint.pt"
SUMMARY_NAME = "summary.json"
#: Label names recognised as the liver and the tumour in a data set's label table.
LIVER_NAMES = ("liver",)
TUMOUR_NAMES = ("tumour", "tumor", "hcc")


@dataclass
class LTDNetTrainConfig:
    """Everything that decides a training run (stored in the weights file)."""

    variant: str
    data: list[str]
    out: str
    val: list[str] = field(default_factory=list)
    steps: int = 2000
    pretrain_steps: int = 500
    batch: int = 8
    size: int = 256
    frame_step: int = 9
    width: str = "lite"
    depth: int = 5
    lr: float = 1e-3
    extra_frames: int = 2
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = 100
    log_every: int = 50
    val_every: int = 500
    limit: int | None = None
    command: str = ""


def label_ids(table: dict[int, str] | None) -> tuple[int, int]:
    """(liver id, tumour id) from a label table by name; (1, 2) where the table does not name them."""
    liver, tumour = 1, 2
    for label, name in (table or {}).items():
        lowered = name.lower()
        if lowered in LIVER_NAMES:
            liver = int(label)
        elif lowered in TUMOUR_NAMES:
            tumour = int(label)
    return liver, tumour


def truth_masks(labels: np.ndarray, table: dict[int, str] | None) -> tuple[np.ndarray, np.ndarray]:
    """(liver, tumour) bool masks of a label map: liver = liver or tumour pixels."""
    liver_id, tumour_id = label_ids(table)
    tumour = labels == tumour_id
    return (labels == liver_id) | tumour, tumour


@dataclass
class TrainingRun:
    """One run at network size, with just the frames its samples need (float16)."""

    name: str
    key: int
    samples: list[int]  # frame indices in the run
    first: int  # run index of frames[0]
    frames: np.ndarray  # (N, S, S) float16
    background: np.ndarray  # (S, S) float32, median of the run's first frames
    flows: dict[int, np.ndarray]  # sample frame -> (2, S, S) float32 scaled flow (OF variants)
    liver: np.ndarray  # (S, S) float32 soft target
    tumour: np.ndarray  # (S, S) float32 soft target


def prepare_run(name: str, frames: np.ndarray, labels: np.ndarray, table: dict[int, str] | None, *,
                config: LTDNetConfig, spec: InputSpec, extra_frames: int) -> TrainingRun:
    """Choose the key frame of a run and keep what its samples need (module docstring).

    InputError (the caller skips the run) when the run is too short for the network."""
    count = frames.shape[0]
    if count < MIN_FRAMES:
        raise InputError(f"{name}: {count} frames, fewer than the {MIN_FRAMES} the key-frame selection needs")
    key = select_key_frame(frames)
    if key + 1 < config.tdl_frames:  # every variant skips these runs, so that all train on the same samples
        raise InputError(f"{name}: key frame {key} has fewer than {config.tdl_frames - 1} frames before it")
    samples = [s for s in range(key, key + extra_frames + 1) if s < count]
    small = resize_frames(frames, spec.size)
    reach = max(spec.frame_step, config.tdl_frames - 1)
    first = max(0, key - reach)
    flows = {}
    if config.motion == "of":
        flows = {s: flow_between(small, s, spec.frame_step) / np.float32(spec.flow_scale) for s in samples}
    liver, tumour = truth_masks(labels[key], table)
    n = max(1, min(spec.background_frames, key))
    return TrainingRun(name, key, samples, first, small[first : samples[-1] + 1].astype(np.float16),
                       np.median(small[:n], axis=0).astype(np.float32), flows,
                       soft_mask(liver, spec.size), soft_mask(tumour, spec.size))


def sample_arrays(run: TrainingRun, frame: int, *, config: LTDNetConfig, spec: InputSpec, with_fd: bool) -> dict[str, np.ndarray]:
    """Inputs and targets of the sample of `run` at run frame `frame`."""
    arrays = sample_inputs(run.frames, frame - run.first, config=config, spec=spec, background=run.background,
                           flow=run.flows.get(frame), with_fd=with_fd)
    arrays["tumour_target"] = run.tumour[None]
    arrays["liver_target"] = run.liver[None]
    return arrays


def load_runs(folders: list[str], *, config: LTDNetConfig, spec: InputSpec, extra_frames: int, limit: int | None = None,
              log: Callable[[str], None] = print) -> tuple[list[TrainingRun], list[str]]:
    """Every usable annotated run of the DAVIS-style `folders`; returns (runs, skipped reasons)."""
    runs: list[TrainingRun] = []
    skipped: list[str] = []
    for folder in folders:
        davis = DavisFolder(folder)
        names = davis.names[:limit] if limit else davis.names
        for name in names:
            sequence = davis.load(name, motion=False)
            if sequence.masks is None:
                skipped.append(f"{Path(folder).name}/{name}: no annotations")
                continue
            try:
                runs.append(prepare_run(f"{Path(folder).name}/{name}", sequence.video.frames, sequence.masks.labels,
                                        sequence.masks.label_table, config=config, spec=spec, extra_frames=extra_frames))
            except InputError as error:
                skipped.append(str(error))
    for reason in skipped:
        log(f"skipped {reason}")
    if not runs:
        raise InputError(f"no usable annotated DSA runs in {', '.join(folders)}")
    return runs, skipped


class SampleSampler:
    """Batches of samples without replacement, a fresh permutation each pass (seeded)."""

    def __init__(self, count: int, seed: int) -> None:
        self.count = count
        self.rng = np.random.default_rng(seed)
        self.order: list[int] = []

    def take(self, batch: int) -> list[int]:
        chosen = []
        while len(chosen) < batch:
            if not self.order:
                self.order = self.rng.permutation(self.count).tolist()
            chosen.append(self.order.pop())
        return chosen

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "order": list(self.order)}

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order = list(state["order"])


def _git_commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                                cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               check=False, cwd=Path(__file__).parent).stdout.strip()
        return result.stdout.strip() + ("+dirty" if dirty else "") if result.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def _data_record(folders: list[str]) -> dict[str, Any]:
    """Each data folder's own record (its meta.json without the per-sequence entries)."""
    record = {}
    for folder in folders:
        try:
            meta = json.loads((Path(folder) / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {}
        record[folder] = {k: v for k, v in meta.items() if k != "sequences"} | {"sequences": len(meta.get("sequences", {}))}
    return record


@torch.inference_mode()
def validation_dice(net: LTDNet, folders: list[str], *, spec: InputSpec) -> float:
    """Mean Dice of the thresholded tumour prediction on the key frames of the `folders`' runs."""
    from angioseg.methods.ltdnet.inputs import predict_key_frame

    was_training = net.training
    net.eval()
    scores = []
    for folder in folders:
        davis = DavisFolder(folder)
        for name in davis.names:
            sequence = davis.load(name, motion=False)
            frames = sequence.video.frames
            if sequence.masks is None or frames.shape[0] < MIN_FRAMES:
                continue
            key = select_key_frame(frames)
            try:
                probability = predict_key_frame(net, frames, key, spec=spec)["tumour"]
            except InputError:
                continue
            truth = truth_masks(sequence.masks.labels[key], sequence.masks.label_table)[1]
            predicted = probability >= 0.5
            total = predicted.sum() + truth.sum()
            scores.append(1.0 if total == 0 else 2.0 * (predicted & truth).sum() / total)
    net.train(was_training)
    return float(np.mean(scores)) if scores else float("nan")


def _cosine(optimiser: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, steps))


def train(config: LTDNetTrainConfig, *, resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as `config` says; returns the summary (also written to RUN/summary.json)."""
    variant = get_variant(config.variant)
    for name in ("steps", "batch", "size", "frame_step", "checkpoint_every", "log_every", "val_every"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, not {value!r}")
    if config.pretrain_steps < 0 or config.extra_frames < 0:
        raise InputError("pretrain_steps and extra_frames must be >= 0")
    if not config.lr > 0:
        raise InputError(f"the learning rate must be positive, not {config.lr!r}")
    if config.threads:
        torch.set_num_threads(config.threads)
    net_config = variant.network(width=config.width, depth=config.depth)
    spec = InputSpec(size=config.size, frame_step=config.frame_step)
    out = check_output_location(config.out)
    torch.manual_seed(config.seed)
    net = LTDNet(net_config).train()
    runs, skipped = load_runs(config.data, config=net_config, spec=spec, extra_frames=config.extra_frames,
                              limit=config.limit, log=log)
    samples = [(r, s) for r, run in enumerate(runs) for s in run.samples]
    out.mkdir(parents=True, exist_ok=True)  # only once every input has been read and checked
    sampler = SampleSampler(len(samples), config.seed)
    pretrain_steps = config.pretrain_steps if variant.pretrain_tdl else 0
    phase, step, history = ("pretrain" if pretrain_steps else "main"), 0, []
    needs_fd = variant.motion == "tdl" and (variant.lambda_tdl > 0 or pretrain_steps > 0)

    def optimiser_for(current: str) -> tuple[torch.optim.Optimizer, Any]:
        parameters = net.tdl.parameters() if current == "pretrain" else net.parameters()  # type: ignore[union-attr]
        optimiser = torch.optim.Adam(parameters, lr=config.lr)
        return optimiser, _cosine(optimiser, pretrain_steps if current == "pretrain" else config.steps)

    optimiser, schedule = optimiser_for(phase)
    checkpoint = out / CHECKPOINT_NAME
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        phase, step, history = state["phase"], state["step"], state["history"]
        optimiser, schedule = optimiser_for(phase)
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        sampler.restore(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed at {phase} step {step}")
    log(f"{config.variant}: {count_parameters(net) / 1e6:.2f} M parameters, {len(runs)} runs, {len(samples)} samples"
        + (f", {len(skipped)} runs skipped" if skipped else ""))
    started = time.perf_counter()
    running: dict[str, float] = {}

    def save_checkpoint() -> None:
        with atomic_file(checkpoint) as tmp:
            torch.save({"model": net.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                        "phase": phase, "step": step, "history": history, "sampler": sampler.state(),
                        "torch_rng": torch.get_rng_state()}, tmp)

    while True:
        total = pretrain_steps if phase == "pretrain" else config.steps
        if step >= total:
            if phase == "pretrain":
                phase, step = "main", 0
                optimiser, schedule = optimiser_for(phase)
                continue
            break
        chosen = [samples[i] for i in sampler.take(config.batch)]
        batch = to_batch([sample_arrays(runs[r], s, config=net_config, spec=spec, with_fd=needs_fd) for r, s in chosen])
        if phase == "pretrain":
            losses = {"tdl": tdl_loss(net.tdl(batch["window"]), batch["fd"])}  # type: ignore[misc]
            losses["total"] = losses["tdl"]
        else:
            outputs = run_network(net, batch)
            losses = ltdnet_loss(outputs, tumour=batch["tumour_target"], liver=batch["liver_target"], fd=batch.get("fd"),
                                 a=PAPER_A, lambda_tdl=variant.lambda_tdl, lambda_lrs=variant.lambda_lrs)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimiser.step()
        schedule.step()
        step += 1
        for name, value in losses.items():
            running[name] = running.get(name, 0.0) + float(value.detach())
        if step % config.log_every == 0 or step == total:
            entry = {"phase": phase, "step": step, "seconds": round(time.perf_counter() - started, 1),
                     **{k: round(v / (config.log_every if step % config.log_every == 0 else step % config.log_every), 5)
                        for k, v in running.items()}}
            running = {}
            if phase == "main" and config.val and (step % config.val_every == 0 or step == total):
                entry["val_dice"] = round(validation_dice(net, config.val, spec=spec), 5)
            history.append(entry)
            log(json.dumps(entry))
        if step % config.checkpoint_every == 0 or step == total:
            save_checkpoint()
    net.eval()
    info = {"config": asdict(config), "steps_done": config.steps, "pretrain_steps_done": pretrain_steps,
            "training_runs": len(runs), "training_samples": len(samples), "skipped_runs": skipped,
            "data": _data_record(config.data), "seconds": round(time.perf_counter() - started, 1),
            "history": history[-5:], "commit": _git_commit(), "torch": torch.__version__,
            "variant": asdict(variant)}
    path = save_ltdnet(net, out / WEIGHTS_NAME, variant=config.variant, inputs=spec, info=info)
    summary = {"variant": config.variant, "weights": str(path), "steps": config.steps, "pretrain_steps": pretrain_steps,
               "runs": len(runs), "samples": len(samples), "skipped": skipped, "seconds": info["seconds"],
               "history": history}
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
