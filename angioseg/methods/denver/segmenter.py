"""DeNVeR as a registered segmenter: ``angioseg segment RUN --method denver[:key=value,...]``.

Pipeline (phases, timed under these names in `Segmentation.timings`):

* "resample": frames area-averaged to the internal resolution (h, w): the longer side becomes
  `resolution` (a multiple of 8) when the input is larger, else the input size is kept.
* "flow": forward flow between consecutive internal-resolution frames with the flow backend
  (`angioseg.flow.get_flow_backend`: "dis" by default, "raft" with `flow_weights`).
* "stage1": layer-separation bootstrapping (`stage1.run_stage1`) -> canonical background, the
  background deformation and the foreground layer g_f; skipped with ``bootstrap=False`` (the
  canonical background is then the per-pixel temporal median, the B-spline starts from no
  motion and the foreground layer is the frames minus the median).
* "prior": the Hessian prior H_t, `prior` filter (Frangi by default), "paper" variant (Otsu
  over the run + region growing). ``prior_source="foreground"`` (default): on the foreground
  layer at the internal resolution (`foreground_layer_prior`), upsampled (bilinear, >= 0.5) for
  the input-size post-processing. ``prior_source="frames"`` (the paper's): on the input frames
  (`angioseg.vessel.prior.vesselness_masks` with the field of view, filter scales 1, 3, 5, 7,
  9 px at 512 x 512 scaled to the frame size, `prior_sigmas`), area-averaged to a soft mask at
  the internal resolution. ``prior_source="textbook"``: on the input frames after CLAHE, with
  the Hessian scales sized to the frame (`angioseg.vessel.enhance.frame_scales`), as the
  `sato`/`frangi` methods run (the textbook recipe of issue 7/13).
* "stage2": test-time training (`stage2.run_stage2`) -> foreground probability (h, w). The
  mask network sees the frame and the foreground layer (``mask_input="frame+layer"``,
  default) or the frame alone (``"frame"``, the paper's).
* "temporal": the probabilities averaged along the motion over 2K + 1 frames, K = `temporal`
  (default 2; `angioseg.postprocess.motion_compensated_filter`, the sequence
  CE-Net paper's filter, along the flow backend's forward and backward flow), the test-time
  counterpart of L_mask's consistency along the flow. On the development runs below (K = 2,
  threshold 0.3): Dice 0.55 -> 0.61 (phantoms) and 0.53 -> 0.58 (ARCADE), clDice 0.43 -> 0.49
  and 0.56 -> 0.61, flicker 0.20 -> 0.15 and 0.24 -> 0.17.
* "upsample": bilinear upsampling of the probability to the input size, threshold
  (`threshold`: "otsu" by default, chosen per run, see "Defaults of issue 17" below; the fixed
  0.3 before it gave 0.01-0.02 more Dice than 0.5 on the development runs below), and post-processing: ``"none"`` (default); ``"prior"``
  (`angioseg.postprocess.keep_touching`: per frame, the components of the mask that touch the prior); ``"grow"``
  (`angioseg.postprocess.hysteresis`: 8-connected hysteresis per frame, components of p >= threshold that hold a
  pixel with p >= (1 + threshold) / 2). Last, components smaller than `min_component`
  (default 64 px at 512 x 512, scaled with the frame area; the size the prior's "paper"
  variant drops) are dropped per frame. Before the contrast arrives the probability holds a few
  specks above the threshold; each speck on an otherwise empty frame, or the speck's frame
  next to an empty one, costs a whole 1 - Dice = 1 in the flicker of that pair. On the
  development runs below (threshold 0.3, K = 2) dropping them took the flicker from 0.152 to
  0.118 (phantoms) and from 0.174 to 0.131 (ARCADE) for a Dice of 0.612 -> 0.608 and
  0.577 -> 0.576. Sizes of 24, 48 and 96 px gave the same phantom flicker (0.118) and 0.142,
  0.131, 0.123 on ARCADE; at 48 px a Gaussian of 1 px on the probabilities changed neither,
  and a hysteresis along the motion (keep p >= threshold - 0.1 where the previous frame's mask
  arrives) gained under 0.005 at 24 px.

Why the two defaults that differ from the paper (measured on development runs that are not
the README's evaluation sets: phantoms of seed 300 and ARCADE train images 301-304 as 24-frame
pseudo-videos, vessel label, frames with vessel; `scripts/evaluate_denver.sh` and
`scripts/denver_ablations.sh` give the evaluation): the Hessian prior of the frames marks the
spine, ribs, catheter and every other dark ridge, and the Dice of the Frangi prior on those
ARCADE runs was 0.40; on the foreground layer, where the stage-1 background has taken the
static anatomy away, it was 0.63 (phantoms, vessel only: 0.36 -> 0.58). A mask network that
sees only the frame cannot reproduce a prior made from the motion and the inflow of the run:
after stage 2 it fell back below its prior (ARCADE 0.44 -> 0.24 on one run).

Why half of the stage-2 steps train around a prior vessel (``vessel_crops=0.5``; the paper
draws windows and crops uniformly): on a run whose vessels fill a few per cent of the pixels
of a few frames (contrast arriving late), uniform 128 x 128 crops of 4-frame windows rarely
hold a vessel, and the L1 prior loss is then best met by a mask that is empty everywhere. With
uniform draws the mask collapsed to empty on one of the 20 ARCADE val pseudo-videos at 1000
steps (Dice 0.0; 0.275 with vessel crops) and on several runs of the 300-step ablation;
`scripts/denver_ablations.sh` measures both.

Defaults of issue 17 (12.5 Adam steps per stage per frame, 300 to 1000; threshold chosen per
run). Each step of either stage draws from the whole run (stage 1: pixel coordinates over all
T frames; stage 2: a 4-frame window), so a run of more frames needs proportionally more steps
for the same training per frame. Development runs: 6 pseudo-videos of 24 frames from
dca1-train images 1-6 (seed 17; no evaluation run), vessel label, frames with vessel,
threshold "otsu"; Dice / AUPRC / flicker_gap by steps per stage: 1000: 0.529 / 0.562 / 0.031;
500: 0.545 / 0.626 / 0.030; 300: 0.580 / 0.667 / 0.010; 150: 0.560 / 0.634 / 0.024 (with
today's prior-area cap on the threshold, re-thresholded: 300 steps 0.588, 1000 steps 0.505).
At 80 frames the order turns: on the 80-frame 512² phantom of `benchmarks/denver.py`, 0.452
at 300 steps against 0.487 at 1000 (seeds 1 and 2: 0.473 / 0.497 and 0.397 / 0.498); on
80-frame pseudo-videos of dca1 images 1-3, 0.523 against 0.514. At 24 frames the phantoms
agree with the real runs (seeds 0 and 1: 0.596 / 0.593 at 300 steps, 0.586 / 0.604 at 1000).
So the step count follows the run's length: 300 steps for 24 frames (the real runs' best),
1000 for 80 (the phantom's), clipped there so that a long run's time stays bounded.
The fixed threshold 0.3 kept the most confident third of the vessels (development runs:
Dice 0.431 against 0.529 at 1000 steps); docs/methods/denver.md has the comparison of rules.

Stage 1 and stage 2 show a tqdm progress bar each (hidden without a terminal). A run on the
CPU is repeatable for a seed (every random draw comes from seeded generators).
"""

from __future__ import annotations

import math
import time
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from angioseg.errors import InputError
from angioseg.options import check_device
from angioseg.methods.base import Segmentation, Segmenter, register
from angioseg.methods.denver.stage1 import run_stage1
from angioseg.methods.denver.stage2 import run_stage2, stage2_schedule
from angioseg.postprocess import drop_small_components, hysteresis, keep_touching, motion_compensated_filter, run_threshold
from angioseg.types import LabelMap, Prompt, Video, vessel_labels

__all__ = ["DenverSegmenter", "prior_sigmas", "internal_size", "foreground_layer_prior", "default_iterations",
           "STEPS_PER_FRAME", "MIN_DEFAULT_ITERATIONS", "MAX_DEFAULT_ITERATIONS"]
#: Adam steps of each stage per frame of the run by default (module docstring, "Defaults of
#: issue 17"): 300 for a 24-frame run, 1000 for an 80-frame one.
STEPS_PER_FRAME = 12.5
#: The fewest and the most Adam steps per stage `default_iterations` gives.
MIN_DEFAULT_ITERATIONS = 300
MAX_DEFAULT_ITERATIONS = 1000


def default_iterations(frames: int) -> int:
    """Adam steps of each stage for a run of `frames` frames when none are given:
    round(`STEPS_PER_FRAME` x frames), clipped to [`MIN_DEFAULT_ITERATIONS`, `MAX_DEFAULT_ITERATIONS`]
    (300 up to 24 frames, 1000 from 80 frames)."""
    return int(min(MAX_DEFAULT_ITERATIONS, max(MIN_DEFAULT_ITERATIONS, round(STEPS_PER_FRAME * frames))))


#: Vesselness scales (pixels) at a 512 x 512 frame, scaled with the frame size.
REFERENCE_SIGMAS = (1.0, 3.0, 5.0, 7.0, 9.0)
REFERENCE_SIZE = 512


def prior_sigmas(height: int, width: int) -> tuple[float, ...]:
    """`REFERENCE_SIGMAS` x min(H, W) / 512, at least 0.5 px, duplicates removed."""
    factor = min(height, width) / REFERENCE_SIZE
    return tuple(sorted({round(max(0.5, s * factor), 4) for s in REFERENCE_SIGMAS}))


def internal_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """(h, w) of the internal resolution: the input size if max(H, W) <= resolution, else the
    longer side scaled to `resolution` and both rounded to multiples of 8 (at least 16)."""
    if max(height, width) <= resolution:
        return height, width
    factor = resolution / max(height, width)
    return tuple(max(16, int(round(n * factor / 8.0)) * 8) for n in (height, width))  # type: ignore[return-value]


def _resize(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(T, H, W)` float32 -> `(T, h, w)` by area averaging (a copy when the size is kept)."""
    if stack.shape[1:] == size:
        return stack.astype(np.float32, copy=True)
    return np.stack([cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA) for frame in stack.astype(np.float32)])


def foreground_layer_prior(layer: np.ndarray, *, filter: str = "frangi", smoothing: float = 0.7, device: str = "cpu") -> np.ndarray:
    """Bool `(T, h, w)` Hessian prior of the foreground layer (stage 1's g_f, vessels < 0).

    The contrast the background cannot explain, r_t = G_smoothing * max(-g_f, 0) (a Gaussian
    of `smoothing` px against the layer's pixel noise), is turned into a subtraction image
    with dark vessels, D_t = clip(1 - r_t / P99.9(r), 0, 1) (the 99.9th percentile over the
    run), and `angioseg.vessel.vesselness_masks(D, filter=, variant="paper", fov=None)` with
    the scales of `prior_sigmas` gives H_t. The layer holds no collimator border or static
    anatomy, hence no field of view.
    """
    from angioseg.vessel import vesselness_masks

    contrast = ndi.gaussian_filter(np.clip(-np.asarray(layer, dtype=np.float32), 0.0, None), (0.0, smoothing, smoothing))
    top = float(np.percentile(contrast, 99.9))
    subtraction = np.clip(1.0 - contrast / max(top, 1e-6), 0.0, 1.0).astype(np.float32)
    sigmas = prior_sigmas(*subtraction.shape[1:])
    return vesselness_masks(subtraction, filter=filter, variant="paper", fov=None, sigmas=sigmas, device=device).masks


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"denver option {name} must be an integer >= {low}; got {value!r}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"denver option {name} must be true or false; got {value!r}")
    return bool(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"denver option {name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _check_number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (math.isfinite(value) and low <= value <= high):
        raise InputError(f"denver option {name} must be a number in [{low:g}, {high:g}]; got {value!r}")
    return float(value)


@register
class DenverSegmenter(Segmenter):
    """DeNVeR (unsupervised test-time training on the run itself); see the module docstring.

    Options (keyword-only; method specs ``denver:key=value,...``):
        representation: stage-1 fields, "grid" (default, fast) or "siren".
        resolution: longer side of the internal resolution (default 256; smaller inputs are
            kept at their size).
        iterations: shorthand setting both stage1_iterations and stage2_iterations (an
            explicit stage*_iterations wins).
        stage1_iterations, stage2_iterations: Adam steps of each stage (default: 12.5 per
            frame of the run, at least 300 and at most 1000, `default_iterations`; module
            docstring). The counts a run used are in its options ("iterations_used").
        flow: flow backend, "dis" (default) or "raft" (needs flow_weights).
        flow_weights: RAFT weights file (flow="raft" only).
        prior: Hessian prior filter, "frangi" (default) or "sato".
        prior_source: "foreground" (default: the Hessian prior of stage 1's foreground layer),
            "frames" (of the input frames, the paper's) or "textbook" (of the input frames
            after CLAHE, at the frame's scales); module docstring.
        mask_input: "frame+layer" (default: the mask network sees the frame and the
            foreground layer) or "frame" (the paper's).
        alpha: foreground weight of Eq. 2 (default 1).
        window: consecutive frames per stage-2 step (default 4).
        crop: side of the random square crop each stage-2 step trains on, in internal pixels
            (default 128; 0 = whole frames).
        vessel_crops: fraction of the stage-2 steps whose window and crop are placed around a
            random vessel pixel of the prior (default 0.5; 0 = uniform draws, the paper's);
            module docstring.
        batch: pixel coordinates per stage-1 step (default 16384).
        threshold: "otsu" (default): chosen per run from the run's own probabilities
            (`angioseg.postprocess.run_threshold`: Otsu on the log-odds, never an empty run
            where the prior finds vessels, never more than twice the prior's area nor half
            the frame); or a fixed number in
            (0, 1) for the upsampled foreground probability (0.3 was the default before).
        postprocess: "none" (default), "prior" (components touching the prior) or "grow"
            (region growing); module docstring.
        min_component: components of the final mask smaller than this many pixels at
            512 x 512 (scaled with the frame area) are dropped, per frame (default 64; 0 keeps
            every component); module docstring.
        temporal: K of the motion-compensated temporal filter of the probabilities (default
            2: five frames; 0 = off); module docstring.
        bootstrap: False skips stage 1 (temporal median background), Table 2's ablation.
        prior_loss, parallel_loss: False switches L_prior / L_parallel off (Table 2).
        seed: seeds every initialisation and random draw (default 0); a run on the CPU is
            repeatable for a seed.
        device, dtype: torch device; float32 only.
    """

    name = "denver"
    description = "DeNVeR: unsupervised test-time training (Hessian prior, layer separation, B-spline + Eulerian motion)"

    def __init__(
        self,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        representation: str = "grid",
        resolution: int = 256,
        iterations: int | None = None,
        stage1_iterations: int | None = None,
        stage2_iterations: int | None = None,
        flow: str = "dis",
        flow_weights: str | None = None,
        prior: str = "frangi",
        prior_source: str = "foreground",
        mask_input: str = "frame+layer",
        alpha: float = 1.0,
        window: int = 4,
        crop: int = 128,
        vessel_crops: float = 0.5,
        batch: int = 16384,
        threshold: float | str = "otsu",
        postprocess: str = "none",
        min_component: int = 64,
        temporal: int = 2,
        bootstrap: bool = True,
        prior_loss: bool = True,
        parallel_loss: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(device=check_device(device, option="denver option device"), dtype=dtype)
        if dtype != "float32":
            raise InputError(f"method 'denver' runs in float32 only; got dtype {dtype!r}")
        self.representation = _check_choice("representation", representation, ("grid", "siren"))
        self.resolution = _check_int("resolution", resolution, 16)
        default = None if iterations is None else _check_int("iterations", iterations, 0)
        self.stage1_iterations = default if stage1_iterations is None else _check_int("stage1_iterations", stage1_iterations, 0)
        self.stage2_iterations = default if stage2_iterations is None else _check_int("stage2_iterations", stage2_iterations, 0)
        self.flow = _check_choice("flow", flow, ("dis", "raft"))
        if flow_weights is not None and not isinstance(flow_weights, str):
            raise InputError(f"denver option flow_weights must be a file path; got {flow_weights!r}")
        if self.flow == "raft" and flow_weights is None:
            raise InputError("denver option flow=raft needs flow_weights=PATH (an untrained RAFT gives meaningless flow)")
        self.flow_weights = flow_weights
        self.prior = _check_choice("prior", prior, ("sato", "frangi"))
        self.prior_source = _check_choice("prior_source", prior_source, ("foreground", "frames", "textbook"))
        self.mask_input = _check_choice("mask_input", mask_input, ("frame+layer", "frame"))
        self.alpha = _check_number("alpha", alpha, 0.0, 1e6)
        self.window = _check_int("window", window, 1)
        self.crop = _check_int("crop", crop, 0)
        if 0 < self.crop < 16:
            raise InputError(f"denver option crop must be 0 (whole frames) or >= 16; got {crop!r}")
        self.vessel_crops = _check_number("vessel_crops", vessel_crops, 0.0, 1.0)
        self.batch = _check_int("batch", batch, 1)
        self.threshold: float | str = ("otsu" if threshold == "otsu"
                                       else _check_number("threshold", threshold, 1e-6, 1.0 - 1e-6))
        self.postprocess = _check_choice("postprocess", postprocess, ("none", "grow", "prior"))
        self.min_component = _check_int("min_component", min_component, 0)
        self.temporal = _check_int("temporal", temporal, 0)
        self.bootstrap = _check_bool("bootstrap", bootstrap)
        self.prior_loss = _check_bool("prior_loss", prior_loss)
        self.parallel_loss = _check_bool("parallel_loss", parallel_loss)
        self.seed = _check_int("seed", seed, 0)

    def options(self) -> dict[str, Any]:
        keys = ("representation", "resolution", "stage1_iterations", "stage2_iterations", "flow", "flow_weights", "prior", "prior_source", "mask_input", "alpha",
                "window", "crop", "vessel_crops", "batch", "threshold", "postprocess", "min_component", "temporal", "bootstrap", "prior_loss", "parallel_loss", "seed")
        return {**super().options(), **{key: getattr(self, key) for key in keys}}

    def _flow_backend(self):
        from angioseg.flow import get_flow_backend

        if self.flow == "raft":
            return get_flow_backend("raft", weights=self.flow_weights, device=self.device)
        return get_flow_backend("dis")

    def _segment(self, video: Video, *, prompts: tuple[Prompt, ...]) -> Segmentation:
        timings: dict[str, float] = {}
        clock = [time.perf_counter()]

        def lap(phase: str) -> None:
            now = time.perf_counter()
            timings[phase] = now - clock[0]
            clock[0] = now

        frames = video.frames
        count, height, width = frames.shape
        size = internal_size(height, width, self.resolution)
        small = _resize(frames, size)
        lap("resample")
        forward, backward = self._flow_backend().estimate(small)
        lap("flow")
        stage1_iterations, stage2_iterations = self._iterations(count)
        tensor = torch.from_numpy(small).to(torch.device(self.device))
        background, deformation, layer = self._background(tensor, stage1_iterations)
        lap("stage1")
        small_prior, prior_masks = self._prior(frames, layer, size)
        lap("prior")
        schedule = stage2_schedule(stage2_iterations, prior=self.prior_loss, parallel=self.parallel_loss)
        result = run_stage2(tensor, prior=torch.from_numpy(small_prior), flow=torch.from_numpy(forward), background=background,
                            deformation=deformation, iterations=stage2_iterations, window=self.window,
                            layer=torch.from_numpy(layer) if self.mask_input == "frame+layer" else None,
                            crop=self.crop or None, vessel_crops=self.vessel_crops, schedule=schedule, alpha=self.alpha,
                            seed=self.seed)
        lap("stage2")
        smoothed = self._smooth(result.probabilities, small, forward, backward)
        lap("temporal")
        probabilities, masks, threshold = self._finish(smoothed, (height, width), prior_masks)
        lap("upsample")
        timings["total"] = sum(timings.values())
        labels = LabelMap(masks.astype(np.uint8), vessel_labels())
        used = {"internal_size": list(size), "threshold": threshold, "iterations_used": [stage1_iterations, stage2_iterations]}
        return Segmentation(labels, probabilities, timings, used,
                            threshold=threshold)

    def _iterations(self, frames: int) -> tuple[int, int]:
        """Adam steps of (stage 1, stage 2) for a run of `frames` frames: the given counts, else
        `default_iterations(frames)`."""
        default = default_iterations(frames)
        return (default if self.stage1_iterations is None else self.stage1_iterations,
                default if self.stage2_iterations is None else self.stage2_iterations)

    def _background(self, frames: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray]:
        """Canonical background `(h, w)`, the displacement `(T, h, w, 2)` to start stage 2's
        motion from, and the foreground layer `(T, h, w)`: stage 1's after `iterations` steps,
        or without the bootstrap the temporal median, None and the frames minus that median."""
        if not self.bootstrap:
            median = frames.median(dim=0).values
            return median, None, (frames - median).float().cpu().numpy()
        layers = run_stage1(frames, representation=self.representation, iterations=iterations,
                            batch_size=self.batch, seed=self.seed)
        return torch.from_numpy(layers.canonical), torch.from_numpy(layers.deformation), layers.foreground

    def _prior(self, frames: np.ndarray, layer: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The Hessian prior H_t: `(T, h, w)` float32 at the internal resolution (soft where
        area-averaged) and `(T, H, W)` bool at the input resolution (module docstring)."""
        from angioseg.vessel import vesselness_masks

        if self.prior_source == "textbook":
            from angioseg.vessel.enhance import clahe, frame_scales

            masks = vesselness_masks(clahe(frames), filter=self.prior, variant="paper",
                                     sigmas=frame_scales(*frames.shape[1:]), device=self.device).masks
            return _resize(masks.astype(np.float32), size), masks
        if self.prior_source == "frames":
            masks = vesselness_masks(frames, filter=self.prior, variant="paper", sigmas=prior_sigmas(*frames.shape[1:]),
                                     device=self.device).masks
            return _resize(masks.astype(np.float32), size), masks
        small = foreground_layer_prior(layer, filter=self.prior, device=self.device)
        if small.shape[1:] == frames.shape[1:]:
            return small.astype(np.float32), small
        tensor = torch.from_numpy(small.astype(np.float32))[:, None]
        upsampled = F.interpolate(tensor, size=frames.shape[1:], mode="bilinear", align_corners=False)[:, 0].numpy() >= 0.5
        return small.astype(np.float32), upsampled

    def _smooth(self, probabilities: np.ndarray, frames: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
        """`(T, h, w)` probabilities averaged over the 2K + 1 frames around each frame along the
        flow backend's motion (K = `temporal`; module docstring)."""
        if self.temporal == 0 or probabilities.shape[0] < 2:
            return probabilities
        return motion_compensated_filter(probabilities, frames, radius=self.temporal, flows=(forward, backward))

    def _finish(self, probabilities: np.ndarray, size: tuple[int, int], prior: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Internal-resolution probabilities -> input-size probabilities (bilinear), masks
        (thresholded, then post-processed: see the module docstring) and the threshold used."""
        tensor = torch.from_numpy(np.ascontiguousarray(probabilities, dtype=np.float32))[:, None]
        if tuple(tensor.shape[-2:]) != size:
            tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
        upsampled = tensor[:, 0].clamp(0.0, 1.0).numpy()
        min_pixels = int(round(self.min_component * size[0] * size[1] / REFERENCE_SIZE**2))
        threshold = run_threshold(upsampled, prior) if self.threshold == "otsu" else float(self.threshold)
        if self.postprocess == "none":
            return upsampled, drop_small_components(upsampled >= threshold, min_pixels), threshold
        if self.postprocess == "prior":
            return upsampled, drop_small_components(keep_touching(upsampled >= threshold, prior), min_pixels), threshold
        seed_level = 0.5 * (1.0 + threshold)
        return upsampled, hysteresis(upsampled, low=threshold, high=seed_level, min_pixels=min_pixels), threshold
