"""Synthetic X-ray coronary angiography runs with exact ground truth (the phantom).

`generate_phantom(params, seed=...)` renders a video, its vessel/catheter masks and the exact
motion of the masked structures. The scene, built once in canonical coordinates:

* a coronary-like vessel tree (`angioseg.data.vessel_tree`): one ostium, 2-3 main arteries
  (left main splitting into LAD / LCx / ramus) or one C-shaped RCA-like artery; radii tapering
  from about 6 px and splitting by Murray's law until under ~0.7 px;
* a contrast-filled catheter from the top or left border to the ostium;
* a beating heart shadow, which like the vessels and the catheter lives on the ``"vessel"``
  motion layer (breathing + cardiac motion);
* the ``"background"`` layer (breathing only): lungs, ribs with denser cortical edges, an
  off-centre spine of vertebral blocks, the diaphragm dome, mediastinum and textured noise.

Per frame, each layer's canonical attenuation map is sampled at the motion model's sampling
map (`angioseg.data.motion`), and the image follows Beer-Lambert::

    I / I0 = exp(-(mu_background + mu_vessel * chord * concentration + mu_catheter * chord_cath))

with `chord` the path length through a cylinder, 2 sqrt(r^2 - d^2), averaged over a pixel
across the axis (exact projected area for sub-pixel vessels) and measured in pixels at 512,
so that contrast does not depend on the frame size. The contrast front moves along the tree's
geodesic distance from the ostium (arc length), with a smooth rise, a plateau, and a wash-out
that also moves along the tree. Then a Gaussian detector blur, Poisson quantum noise at
`dose` photons per pixel at full transmission, and a mild display gamma.

Ground truth: label 1 (vessel) where a vessel holds a visible amount of contrast
(concentration above `VISIBLE_CONCENTRATION`) within max(r, 0.6 px) of its centreline; label
2 (catheter) always, over the vessel where they overlap. The canonical masks are sampled with
nearest neighbour at the same maps as the image, and the flows are computed from the same
maps, so masks, frames and flows agree exactly.

All lengths in `PhantomParams` are in pixels at 512 x 512 and scale with `size / 512`.
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from angioseg.data.motion import CardiacBreathingMotion, MotionParams
from angioseg.data.vessel_tree import Tube, VesselTree, chord_pixel_average, grow_coronary_tree
from angioseg.errors import InputError
from angioseg.types import DEFAULT_LABELS, LabelMap, Video
from angioseg.warp import sample_at

#: A vessel pixel is labelled (label 1) once its contrast concentration exceeds this (0-1).
VISIBLE_CONCENTRATION = 0.2
#: Pixels within max(r, MASK_MIN_RADIUS_PX) of a centreline belong to the vessel mask.
MASK_MIN_RADIUS_PX = 0.6
#: At small frame sizes, vessels thinner than this (radius in frame pixels) are not drawn.
MIN_RENDER_RADIUS_PX = 0.35
#: Accuracy of the inverse motion maps, in pixels.
MAP_TOLERANCE = 1e-4
#: Nominal pixel spacing at 512 x 512, in mm (a ~15 cm field of view).
PIXEL_SPACING_512_MM = 0.3

REFERENCE_SIZE = 512
LABELS = dict(DEFAULT_LABELS)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (_is_number(value) and math.isfinite(value) and low <= value <= high):
        raise InputError(f"phantom parameter {name} must be a number in [{low}, {high}]; got {value!r}")


@dataclass(frozen=True)
class PhantomParams:
    """Everything that shapes a phantom run; the fine anatomy is drawn from the seed.

    Lengths are in pixels at a 512 x 512 frame and scale with ``size / 512``. The ranges are
    the ones `sample` draws from (the validator accepts anything physically sensible).

    Run:
        size: frame height = width in pixels (>= 32; default 512).
        frames: number of frames (>= 1; default 60).
        fps: frames per second; coronary runs use 7.5-30 (default 15; accepted 0.1-240).
        motion: cardiac + breathing motion; None = drawn from the seed (`MotionParams.random`).

    Vessel tree:
        num_main_arteries: 1 = right-coronary-like C-shaped artery; 2 = left main splitting
            into LAD and LCx; 3 = LAD, ramus and LCx. Sampled 1-3 (left trees twice as often).
        root_radius: lumen radius at the ostium, 5-7 px (the RCA-like tree uses 0.8 x).
        min_radius: vessels end once their radius falls below this, 0.6-0.8 px.
        left_main_length: length of the left main before it splits, 15-45 px.
        vessel_length: taper length in units of the starting radius: a vessel's radius decays
            as exp(-s / (vessel_length x r_start)) between branch points, 80-120.
        branch_spacing: mean distance between side branches in units of the local radius,
            5-10 (plus 4 px).
        branch_asymmetry: typical r_branch / r_continuation at a split (log-normal spread,
            Murray's law r_p^3 = r_1^3 + r_2^3 fixes both), 0.4-0.7. Branch angles follow
            Murray's optimum: the side branch leaves at 25-75 deg, the continuation kinks a few.
        tortuosity: strength of the smooth random curvature, 0.1-1.0.
        tree_rotation_deg: rotation of the whole tree layout about the heart centre, -20..20.

    Catheter:
        catheter_radius: 2.5-3.5 px (about a 6 F guiding catheter), always contrast-filled.
        catheter_entry: "top" or "left" border; it reaches the ostium along a smooth curve.

    Background (attenuation in the exponent, dimensionless):
        lung_attenuation: everywhere (the lung fields are the least attenuating), 0.25-0.45.
        heart_attenuation: extra at the centre of the heart shadow, 0.3-0.6.
        diaphragm_attenuation: deep below the diaphragm dome edge, 0.4-0.9.
        diaphragm_height: height of the top of the dome as a fraction of the frame, 0.65-0.95.
        spine_attenuation: vertebral bodies, 0.15-0.35.
        spine_position: horizontal position of the spine as a fraction of the width,
            0.1-0.3 or 0.7-0.9.
        rib_attenuation: peak of a rib band (cortical edges), 0.06-0.18.
        rib_spacing: vertical distance between ribs, 80-120 px.
        texture_amplitude: low-frequency textured noise (std of its attenuation), 0.03-0.1.

    Contrast:
        injection_start_s: time the contrast leaves the catheter, 0-0.5 s.
        fill_time_s: time for the front to reach the farthest vessel tip, 0.7-2.0 s.
        rise_time_s: time a vessel point takes to fill once the front arrives, 0.15-0.5 s.
        washout_start_fraction: wash-out starts at the ostium at this fraction of the run,
            0.55-0.8, and also moves along the tree.
        washout_time_s: time for the wash-out to reach the farthest tip, 0.8-2.5 s.
        fall_time_s: time a vessel point takes to clear, 0.4-1.2 s.
        vessel_attenuation: mu of fully opacified blood per pixel at 512, 0.06-0.11 (a trunk of
            5-6 px radius drops the frame value by about 0.2-0.4).
        catheter_attenuation: mu of the catheter per pixel at 512, 0.09-0.14.

    Imaging:
        blur_sigma: detector blur (Gaussian sigma), 0.6-1.2 px.
        dose: mean photon count per pixel at full transmission, 300-5000 (log-uniform; lower
            is noisier).
        gamma: display gamma applied to I / I0, 0.85-1.15.
    """

    size: int = 512
    frames: int = 60
    fps: float = 15.0
    motion: MotionParams | None = None
    # vessel tree
    num_main_arteries: int = 2
    root_radius: float = 6.0
    min_radius: float = 0.7
    left_main_length: float = 30.0
    vessel_length: float = 100.0
    branch_spacing: float = 7.0
    branch_asymmetry: float = 0.55
    tortuosity: float = 0.5
    tree_rotation_deg: float = 0.0
    # catheter
    catheter_radius: float = 3.0
    catheter_entry: str = "top"
    # background
    lung_attenuation: float = 0.35
    heart_attenuation: float = 0.4
    diaphragm_attenuation: float = 0.6
    diaphragm_height: float = 0.8
    spine_attenuation: float = 0.25
    spine_position: float = 0.2
    rib_attenuation: float = 0.12
    rib_spacing: float = 95.0
    texture_amplitude: float = 0.06
    # contrast
    injection_start_s: float = 0.2
    fill_time_s: float = 1.2
    rise_time_s: float = 0.3
    washout_start_fraction: float = 0.7
    washout_time_s: float = 1.5
    fall_time_s: float = 0.8
    vessel_attenuation: float = 0.085
    catheter_attenuation: float = 0.11
    # imaging
    blur_sigma: float = 0.9
    dose: float = 1500.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or not 32 <= self.size <= 4096:
            raise InputError(f"phantom size must be an integer from 32 to 4096 pixels; got {self.size!r}")
        frames_ok = isinstance(self.frames, (int, np.integer)) and not isinstance(self.frames, bool)
        if not frames_ok or not 1 <= self.frames <= 100_000:
            raise InputError(f"phantom frame count must be a positive integer; got {self.frames!r}")
        _check_range("fps", self.fps, 0.1, 240.0)
        if self.motion is not None and not isinstance(self.motion, MotionParams):
            raise InputError(f"phantom motion must be MotionParams or None; got {type(self.motion).__name__}")
        if self.num_main_arteries not in (1, 2, 3) or isinstance(self.num_main_arteries, bool):
            raise InputError(f"num_main_arteries must be 1, 2 or 3; got {self.num_main_arteries!r}")
        if self.catheter_entry not in ("top", "left"):
            raise InputError(f"catheter_entry must be 'top' or 'left'; got {self.catheter_entry!r}")
        if not (_is_number(self.dose) and math.isfinite(self.dose) and self.dose > 0):
            raise InputError(f"phantom dose must be a positive photon count; got {self.dose!r}")
        checks = {
            "root_radius": (0.5, 30.0),
            "min_radius": (0.1, 5.0),
            "left_main_length": (0.0, 200.0),
            "vessel_length": (10.0, 1000.0),
            "branch_spacing": (1.0, 100.0),
            "branch_asymmetry": (0.05, 1.0),
            "tortuosity": (0.0, 5.0),
            "tree_rotation_deg": (-180.0, 180.0),
            "catheter_radius": (0.5, 20.0),
            "lung_attenuation": (0.0, 5.0),
            "heart_attenuation": (0.0, 5.0),
            "diaphragm_attenuation": (0.0, 5.0),
            "diaphragm_height": (0.0, 2.0),
            "spine_attenuation": (0.0, 5.0),
            "spine_position": (-0.5, 1.5),
            "rib_attenuation": (0.0, 5.0),
            "rib_spacing": (10.0, 1000.0),
            "texture_amplitude": (0.0, 2.0),
            "injection_start_s": (0.0, 1e6),
            "fill_time_s": (0.01, 1e6),
            "rise_time_s": (0.01, 1e6),
            "washout_start_fraction": (0.0, 1e3),
            "washout_time_s": (0.01, 1e6),
            "fall_time_s": (0.01, 1e6),
            "vessel_attenuation": (0.0, 10.0),
            "catheter_attenuation": (0.0, 10.0),
            "blur_sigma": (0.0, 20.0),
            "gamma": (0.2, 5.0),
        }
        for name, (low, high) in checks.items():
            _check_range(name, getattr(self, name), low, high)
        if self.min_radius >= self.root_radius:
            raise InputError(
                f"phantom min_radius ({self.min_radius}) must be smaller than root_radius ({self.root_radius})"
            )

    # ---- derived ----------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Frame size relative to 512."""
        return self.size / REFERENCE_SIZE

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    @property
    def times(self) -> np.ndarray:
        """Acquisition time of each frame in seconds (frame 0 at t = 0)."""
        return np.arange(self.frames, dtype=np.float64) / self.fps

    # ---- sampling / serialisation -------------------------------------------------------------
    @classmethod
    def sample(
        cls, rng: np.random.Generator, *, size: int = 512, frames: int = 60, fps: float = 15.0
    ) -> "PhantomParams":
        """Draw every parameter from the documented ranges; size, frames and fps as given."""
        u = lambda low, high: float(rng.uniform(low, high))  # noqa: E731
        spine = u(0.1, 0.3)
        if rng.uniform() < 0.5:
            spine = 1.0 - spine
        num_main = int(rng.choice([1, 2, 2, 3, 3]))
        return cls(
            size=int(size),
            frames=int(frames),
            fps=float(fps),
            motion=MotionParams.random(rng),
            num_main_arteries=num_main,
            root_radius=u(5.0, 7.0),
            min_radius=u(0.6, 0.8),
            left_main_length=u(15.0, 45.0),
            vessel_length=u(80.0, 120.0),
            branch_spacing=u(5.0, 10.0),
            branch_asymmetry=u(0.4, 0.7),
            tortuosity=u(0.1, 1.0),
            tree_rotation_deg=u(-20.0, 20.0),
            catheter_radius=u(2.5, 3.5),
            catheter_entry=str(rng.choice(["top", "top", "left"])),
            lung_attenuation=u(0.25, 0.45),
            heart_attenuation=u(0.3, 0.6),
            diaphragm_attenuation=u(0.4, 0.9),
            diaphragm_height=u(0.65, 0.95),
            spine_attenuation=u(0.15, 0.35),
            spine_position=spine,
            rib_attenuation=u(0.06, 0.18),
            rib_spacing=u(80.0, 120.0),
            texture_amplitude=u(0.03, 0.1),
            injection_start_s=u(0.0, 0.5),
            fill_time_s=u(0.7, 2.0),
            rise_time_s=u(0.15, 0.5),
            washout_start_fraction=u(0.55, 0.8),
            washout_time_s=u(0.8, 2.5),
            fall_time_s=u(0.4, 1.2),
            vessel_attenuation=u(0.06, 0.11),
            catheter_attenuation=u(0.09, 0.14),
            blur_sigma=u(0.6, 1.2),
            dose=float(np.exp(rng.uniform(np.log(300.0), np.log(5000.0)))),
            gamma=u(0.85, 1.15),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (motion as a dict or None)."""
        def plain(value: Any) -> Any:
            if isinstance(value, np.generic):
                return value.item()
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            return value

        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.motion is not None:
            out["motion"] = asdict(self.motion)
        return plain(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PhantomParams":
        """Inverse of `to_dict`; unknown keys raise InputError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"phantom parameters hold unknown keys {unknown}")
        values = dict(data)
        motion = values.get("motion")
        if isinstance(motion, dict):
            motion = dict(motion)
            if "heart_centre" in motion:
                motion["heart_centre"] = tuple(motion["heart_centre"])
            try:
                values["motion"] = MotionParams(**motion)
            except TypeError as exc:
                raise InputError(f"phantom motion parameters are invalid: {exc}") from None
        return cls(**values)


@dataclass
class PhantomRun:
    """A rendered phantom run with its exact ground truth.

    Attributes:
        video: `(T, H, W)` frames in [0, 1] (dark vessels), fps = params.fps.
        masks: labels 0 background, 1 vessel (visible contrast only), 2 catheter.
        flow_forward: `(T-1, H, W, 2)` float32 (dx, dy), frame t -> t+1 on frame t's grid,
            the exact motion of the vessel layer (vessels, catheter, heart).
        flow_backward: `(T-1, H, W, 2)` float32, frame t+1 -> t on frame t+1's grid:
            ``warp_backward(masks[t], flow_backward[t])`` lands on ``masks[t + 1]``.
        concentration: `(T, H, W)` float16 contrast concentration (0-1) of the vessels at each
            pixel, sampled like the masks (label 1 = concentration > VISIBLE_CONCENTRATION
            outside the catheter).
        params: the fully resolved parameters (motion included).
    """

    video: Video
    masks: LabelMap
    flow_forward: np.ndarray
    flow_backward: np.ndarray
    concentration: np.ndarray | None
    params: PhantomParams


# ---- contrast timing -----------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def contrast_concentration(arc_fraction: np.ndarray, t: float, params: PhantomParams) -> np.ndarray:
    """Concentration in [0, 1] at time `t` for points at `arc_fraction` = arc / longest arc.

    The front reaches a point injection_start_s + fill_time_s * arc_fraction after t = 0 and
    fills it over rise_time_s; the wash-out front leaves the ostium at
    washout_start_fraction * duration and reaches the point washout_time_s * arc_fraction
    later, clearing it over fall_time_s.
    """
    arc_fraction = np.asarray(arc_fraction, dtype=np.float32)
    arrival = params.injection_start_s + params.fill_time_s * arc_fraction
    rise = _smoothstep((t - arrival) / params.rise_time_s)
    washout = params.washout_start_fraction * params.duration_s + params.washout_time_s * arc_fraction
    fall = _smoothstep((t - washout) / params.fall_time_s)
    return (rise * (1.0 - fall)).astype(np.float32)


# ---- canonical scene -------------------------------------------------------------------------------


@dataclass
class _Scene:
    pad: int
    canvas: tuple[int, int]
    vessel_static: np.ndarray  # heart shadow + catheter attenuation, canvas float32
    background: np.ndarray  # background attenuation, canvas float32
    catheter_mask: np.ndarray  # canvas uint8
    att_index: np.ndarray  # flat canvas index of each vessel attenuation entry
    att_weight: np.ndarray  # mu_vessel * chord (in 512 px) at full concentration
    att_arc: np.ndarray  # arc fraction of the entry
    mask_index: np.ndarray
    mask_arc: np.ndarray
    tree: VesselTree


def _motion_padding(motion: CardiacBreathingMotion, params: PhantomParams) -> int:
    """Pixels of canvas needed around the frame so every frame's sampling map stays inside."""
    size = params.size
    coarse = np.linspace(-0.15 * size, 1.15 * size, 25)
    grid = np.stack(np.meshgrid(coarse, coarse), axis=-1).reshape(-1, 2)
    largest = 0.0
    for t in params.times:
        for layer in ("vessel", "background"):
            d = motion.displacement(grid, float(t), layer)
            largest = max(largest, float(np.abs(d).max()))
    return int(math.ceil(max(1.2 * largest, 0.1 * size))) + 3


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.05:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma), borderType=cv2.BORDER_REFLECT)


def _unit_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    noise = _blur(rng.standard_normal(shape).astype(np.float32), sigma)
    return (noise - noise.mean()) / (noise.std() + 1e-8)


def _shell_profile(d: np.ndarray, half: float, cortex: float, marrow: float = 0.35) -> np.ndarray:
    """Projected thickness across a bone with a dense cortical shell, normalised to peak 1.

    Shell chord (outer minus inner cylinder) plus `marrow` times the inner chord: the cortex
    makes the edges of ribs and vertebrae denser than their middle, as on real films.
    """
    inner_half = max(half - cortex, 0.1)

    def profile(x: np.ndarray) -> np.ndarray:
        outer = 2.0 * np.sqrt(np.maximum(half * half - x * x, 0.0))
        inner = 2.0 * np.sqrt(np.maximum(inner_half * inner_half - x * x, 0.0))
        return (outer - inner) + marrow * inner

    peak = float(profile(np.linspace(0.0, half, 257)).max()) + 1e-6
    return profile(d) / peak


def _background_attenuation(
    rng: np.random.Generator, params: PhantomParams, shape: tuple[int, int], pad: int
) -> np.ndarray:
    """Breathing-layer attenuation on the padded canvas: lungs, spine, ribs, diaphragm, texture."""
    scale = params.scale
    height, width = shape
    rows = (np.arange(height, dtype=np.float32) - pad) / scale  # y in 512 units
    cols = (np.arange(width, dtype=np.float32) - pad) / scale
    Y, X = np.meshgrid(rows, cols, indexing="ij")
    S = float(REFERENCE_SIZE)
    att = np.full(shape, params.lung_attenuation, np.float32)

    # Uneven exposure: a little more attenuation towards the corners.
    vignette = float(rng.uniform(0.0, 0.12))
    att += vignette * (((X - S / 2) ** 2 + (Y - S / 2) ** 2) / (S * S / 2)).astype(np.float32)

    # Spine with the mediastinum around it: vertebral bodies (denser cortex and end plates),
    # discs between them, faint pedicle rings and spinous processes, all softly blurred.
    tilt = math.radians(float(rng.uniform(-6, 6)))
    x_spine = params.spine_position * S + math.tan(tilt) * (Y - S / 2)
    u = X - x_spine
    half_width = float(rng.uniform(34, 46))
    mediastinum = float(rng.uniform(0.25, 0.5))
    att += mediastinum * params.spine_attenuation * np.exp(-((u / (2.6 * half_width)) ** 4))
    body_h = float(rng.uniform(40, 54))
    gap = float(rng.uniform(7, 12))
    period = body_h + gap
    v = np.mod(Y - float(rng.uniform(0, period)), period)  # position within a vertebra
    across = np.sqrt(np.clip(1.0 - (u / half_width) ** 2, 0.0, 1.0))
    lateral_cortex = _shell_profile(u, half_width, 4.0, marrow=0.6)
    in_body = _smoothstep(v / 3.0) * _smoothstep((body_h - v) / 3.0)
    endplate = np.exp(-((v - 2.0) / 2.0) ** 2) + np.exp(-((v - body_h + 2.0) / 2.0) ** 2)
    body = (0.6 * across + 0.4 * lateral_cortex) * in_body + 0.25 * endplate * across
    disc = 0.65 * across * (1.0 - in_body)
    pedicles = np.zeros_like(att)
    for side in (-1.0, 1.0):
        pu = (u - side * 0.62 * half_width) / 7.0
        pv = (v - 0.35 * body_h) / 10.0
        rho = np.sqrt(pu * pu + pv * pv)
        pedicles += np.exp(-(((rho - 1.0) / 0.3) ** 2))
    spinous = np.exp(-((u / 6.0) ** 2 + ((v - 0.75 * body_h) / 10.0) ** 2))
    spine = body + disc + 0.15 * pedicles + 0.12 * spinous
    att += params.spine_attenuation * _blur(spine.astype(np.float32), 2.5 * scale)

    # Ribs: posterior ribs run from the spine laterally and downwards, each a little different
    # (width, slope, density); fainter, wider anterior ribs curve the other way. Bone density
    # varies slowly along each rib.
    ribs = np.zeros_like(att)
    lateral = np.abs(X - x_spine)
    fade = 1.0 - 0.5 * np.clip(lateral / S, 0, 1)
    for family, strength in ((0, 1.0), (1, float(rng.uniform(0.0, 0.45)))):
        if strength <= 0.05:
            continue
        sign = 1.0 if family == 0 else -0.6
        slope0 = float(rng.uniform(0.15, 0.45)) * sign
        bend0 = float(rng.uniform(0.2, 0.7)) / S * sign
        spacing = params.rib_spacing * (1.0 if family == 0 else float(rng.uniform(1.1, 1.4)))
        half0 = float(rng.uniform(14, 20)) * (1.0 if family == 0 else 1.25)
        offset = float(rng.uniform(0, spacing))
        low = -S - 2 * spacing
        for k in range(int((3 * S) / spacing) + 4):
            slope = slope0 + float(rng.normal(0, 0.04))
            bend = bend0 * float(rng.uniform(0.85, 1.15))
            half = half0 * float(rng.uniform(0.85, 1.15))
            cortex = float(rng.uniform(2.0, 4.0))
            y0 = low + offset + k * spacing + float(rng.normal(0, 0.06 * spacing))
            centre_line = slope * lateral + bend * lateral * lateral
            derivative = slope + 2.0 * bend * lateral
            d = (Y - (y0 + centre_line)) / np.sqrt(1.0 + derivative * derivative)
            near = np.abs(d) < half + 1
            if not near.any():
                continue
            density = strength * float(rng.uniform(0.7, 1.15))
            ribs += np.where(near, density * _shell_profile(d, half, cortex, marrow=0.5) * fade, 0.0)
    ribs *= np.clip(0.8 + 0.25 * _unit_noise(rng, shape, 40.0 * scale), 0.3, 1.3)
    att += params.rib_attenuation * _blur(ribs.astype(np.float32), 1.2 * scale)

    # Diaphragm dome: a soft edge, then attenuation growing into the liver / abdomen.
    apex_x = float(rng.uniform(0.2, 0.8)) * S
    apex_y = params.diaphragm_height * S
    curvature = float(rng.uniform(0.6, 1.8)) / S
    y_edge = apex_y + curvature * (X - apex_x) ** 2
    slope = 2.0 * curvature * (X - apex_x)
    dist = (Y - y_edge) / np.sqrt(1.0 + slope * slope)
    edge = float(rng.uniform(1.5, 4.0))
    depth = float(rng.uniform(12.0, 35.0))
    soft = edge * np.logaddexp(0.0, dist / edge)  # smooth max(dist, 0)
    att += params.diaphragm_attenuation * (1.0 - np.exp(-soft / depth)).astype(np.float32)

    # Textured noise at three scales (the finest mostly in the lungs, like lung markings).
    lung_weight = np.clip(1.0 - (1.0 - np.exp(-soft / depth)), 0.3, 1.0)
    texture = (
        0.7 * _unit_noise(rng, shape, 45.0 * scale)
        + 0.45 * _unit_noise(rng, shape, 14.0 * scale)
        + 0.3 * lung_weight * _unit_noise(rng, shape, 3.5 * scale)
    )
    att += params.texture_amplitude * texture.astype(np.float32)
    return att.astype(np.float32)


def _heart_shadow(
    rng: np.random.Generator, params: PhantomParams, motion: MotionParams, shape: tuple[int, int], pad: int
) -> np.ndarray:
    """Projected thickness of the heart (an ellipsoid), on the vessel layer: it beats."""
    scale = params.scale
    height, width = shape
    rows = (np.arange(height, dtype=np.float32) - pad) / scale
    cols = (np.arange(width, dtype=np.float32) - pad) / scale
    Y, X = np.meshgrid(rows, cols, indexing="ij")
    S = float(REFERENCE_SIZE)
    cx = motion.heart_centre[0] * S + float(rng.uniform(-20, 20))
    cy = motion.heart_centre[1] * S + float(rng.uniform(0, 40))
    ax = float(rng.uniform(0.34, 0.48)) * S
    ay = float(rng.uniform(0.28, 0.42)) * S
    angle = math.radians(float(rng.uniform(-35, 35)))
    ca, sa = math.cos(angle), math.sin(angle)
    du, dv = X - cx, Y - cy
    p = (ca * du + sa * dv) / ax
    q = (-sa * du + ca * dv) / ay
    thickness = np.sqrt(np.clip(1.0 - p * p - q * q, 0.0, 1.0)).astype(np.float32)
    return params.heart_attenuation * _blur(thickness, 5.0 * scale)


def _catheter_path(rng: np.random.Generator, params: PhantomParams, tree: VesselTree, bound: float) -> np.ndarray:
    """Centreline (512 units) from just outside the top or left border to the ostium."""
    ostium = tree.ostium
    S = float(REFERENCE_SIZE)
    end_tangent = np.array([math.cos(tree.ostium_heading), math.sin(tree.ostium_heading)])
    if params.catheter_entry == "top":
        x = float(np.clip(ostium[0] + rng.uniform(-0.3, 0.05) * S, 0.05 * S, 0.75 * S))
        start = np.array([x, -bound - 4.0])
        a = math.radians(float(rng.uniform(-20, 20)))
        start_tangent = np.array([math.sin(a), math.cos(a)])
    else:
        y = float(np.clip(ostium[1] + rng.uniform(-0.25, 0.05) * S, 0.02 * S, 0.6 * S))
        start = np.array([-bound - 4.0, y])
        a = math.radians(float(rng.uniform(5, 45)))
        start_tangent = np.array([math.cos(a), math.sin(a)])
    span = float(np.linalg.norm(ostium - start))
    p1 = start + start_tangent * span * float(rng.uniform(0.35, 0.6))
    p2 = ostium - end_tangent * span * float(rng.uniform(0.2, 0.4))
    t = np.linspace(0.0, 1.0, 600)[:, None]
    curve = (1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * ostium
    return curve


def _build_scene(
    params: PhantomParams, motion: CardiacBreathingMotion, rngs: dict[str, np.random.Generator]
) -> _Scene:
    """Everything that does not change with time, rendered once on the padded canvas."""
    scale = params.scale
    size = params.size
    pad = _motion_padding(motion, params)
    canvas = (size + 2 * pad, size + 2 * pad)
    mp = motion.params
    S = float(REFERENCE_SIZE)
    bound = pad / scale  # canvas margin in 512 units

    # Vessel tree, grown at 512 and scaled to frame pixels + padding offset.
    tree512 = grow_coronary_tree(
        rngs["tree"],
        num_main=params.num_main_arteries,
        root_radius=params.root_radius * (0.8 if params.num_main_arteries == 1 else 1.0),
        min_radius=params.min_radius,
        left_main_length=params.left_main_length,
        taper_length=params.vessel_length,
        branch_spacing=params.branch_spacing,
        branch_asymmetry=params.branch_asymmetry,
        tortuosity=params.tortuosity,
        rotation_deg=params.tree_rotation_deg,
        heart_centre=(mp.heart_centre[0] * S, mp.heart_centre[1] * S),
        bounds=(-0.1 * S, -0.1 * S, 1.1 * S, 1.1 * S),
    )
    max_arc = max(tree512.max_arc, 1.0)
    tree = tree512.transformed(scale, (pad, pad)).pruned(MIN_RENDER_RADIUS_PX)
    catheter512 = _catheter_path(rngs["catheter"], params, tree512, bound)

    reach = MASK_MIN_RADIUS_PX + 0.5
    # Catheter: always opaque, label 2.
    cath_px = catheter512 * scale + pad
    cath_radius = params.catheter_radius * scale
    cath_tube = Tube.from_arrays(cath_px, np.full(len(cath_px), cath_radius), np.zeros(len(cath_px)))
    cath_pixels = cath_tube.candidate_pixels(canvas, reach)
    cath_dist, cath_nearest = cath_tube.query(cath_pixels, reach)
    hit = cath_nearest >= 0
    cath_pixels, cath_dist = cath_pixels[hit], cath_dist[hit]
    cath_chord = chord_pixel_average(cath_dist, np.full(len(cath_dist), cath_radius))
    catheter_att = np.zeros(canvas, np.float32)
    catheter_att[cath_pixels[:, 0], cath_pixels[:, 1]] = cath_chord / scale * params.catheter_attenuation
    catheter_mask = np.zeros(canvas, np.uint8)
    inside = cath_dist <= max(cath_radius, MASK_MIN_RADIUS_PX)
    catheter_mask[cath_pixels[inside, 0], cath_pixels[inside, 1]] = 1

    # Vessels: sparse (pixel, weight, arc) entries, so that each frame's contrast is one bincount.
    tubes: list[Tube] = []
    att_index, att_weight, att_arc, mask_index, mask_arc = [], [], [], [], []
    for number, seg in enumerate(tree.segments):
        tube = Tube.from_arrays(seg.points, seg.radii, seg.arc / scale / max_arc)
        tubes.append(tube)
        pixels = tube.candidate_pixels(canvas, reach)
        if len(pixels) == 0:
            continue
        dist, nearest = tube.query(pixels, reach)
        hit = nearest >= 0
        pixels, dist, nearest = pixels[hit], dist[hit], nearest[hit]
        radius = tube.radii[nearest]
        chord = chord_pixel_average(dist, radius)
        # Where a branch overlaps its parent (or an earlier sibling from the same point), the
        # X-ray crosses the union of the two lumens, not both: keep only the excess.
        overlap = np.zeros_like(chord)
        refs = []
        if seg.parent >= 0:
            refs.append(seg.parent)
            refs.extend(
                j for j in range(number)
                if j != seg.parent and tree.segments[j].parent == seg.parent
                and tree.segments[j].parent_point == seg.parent_point
            )
        else:
            refs.append(-1)  # the root starts inside the catheter tip
        for j in refs:
            ref = cath_tube if j < 0 else tubes[j]
            d_ref, n_ref = ref.query(pixels, reach)
            ok = n_ref >= 0
            overlap[ok] = np.maximum(overlap[ok], chord_pixel_average(d_ref[ok], ref.radii[n_ref[ok]]))
        chord = np.maximum(chord - overlap, 0.0)
        flat = pixels[:, 0] * canvas[1] + pixels[:, 1]
        arc = tube.arc[nearest]
        keep = chord > 1e-4
        att_index.append(flat[keep])
        att_weight.append(chord[keep] / scale * params.vessel_attenuation)
        att_arc.append(arc[keep])
        inside = dist <= np.maximum(radius, MASK_MIN_RADIUS_PX)
        mask_index.append(flat[inside])
        mask_arc.append(arc[inside])

    heart = _heart_shadow(rngs["background"], params, mp, canvas, pad)
    background = _background_attenuation(rngs["background"], params, canvas, pad)

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return _Scene(
        pad=pad,
        canvas=canvas,
        vessel_static=(heart + catheter_att).astype(np.float32),
        background=background,
        catheter_mask=catheter_mask,
        att_index=cat(att_index, np.int64),
        att_weight=cat(att_weight, np.float32),
        att_arc=cat(att_arc, np.float32),
        mask_index=cat(mask_index, np.int64),
        mask_arc=cat(mask_arc, np.float32),
        tree=tree,
    )


# ---- rendering ----------------------------------------------------------------------------------


def _remap(image: np.ndarray, map_xy: np.ndarray, pad: int, *, nearest: bool, border: str) -> np.ndarray:
    """`image` (padded by `pad` px) sampled at the frame's canonical positions `map_xy`."""
    return sample_at(image, map_xy + np.float32(pad), nearest=nearest, border=border)


def generate_phantom(params: PhantomParams, *, seed: int, progress: bool = False) -> PhantomRun:
    """Render a phantom run; the same params and seed always give byte-identical output.

    Args:
        params: what to render (see `PhantomParams`); motion None = drawn from the seed.
        seed: non-negative integer; every random draw comes from generators derived from it.
        progress: show a tqdm progress bar over frames.
    """
    if not isinstance(params, PhantomParams):
        raise InputError(f"generate_phantom needs PhantomParams; got {type(params).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"phantom seed must be a non-negative integer; got {seed!r}")
    streams = np.random.SeedSequence(int(seed)).spawn(6)
    rngs = {
        name: np.random.default_rng(stream)
        for name, stream in zip(("motion", "tree", "catheter", "background", "noise"), streams)
    }
    motion_params = params.motion if params.motion is not None else MotionParams.random(rngs["motion"])
    params = replace(params, motion=motion_params)
    motion_seed = int(streams[5].generate_state(1)[0])
    size = params.size
    motion = CardiacBreathingMotion(motion_params, height=size, width=size, seed=motion_seed)

    scene = _build_scene(params, motion, rngs)
    pad = scene.pad
    canvas = scene.canvas
    flat_size = canvas[0] * canvas[1]
    times = params.times
    count = params.frames
    frames = np.empty((count, size, size), np.float32)
    labels = np.empty((count, size, size), np.uint8)
    concentration = np.empty((count, size, size), np.float16)
    forward = np.zeros((max(count - 1, 0), size, size, 2), np.float32)
    backward = np.zeros_like(forward)
    grid = motion.pixel_grid()
    sigma = params.blur_sigma * params.scale
    noise_rng = rngs["noise"]
    dose = float(params.dose)
    gamma = float(params.gamma)

    def motion_job(i: int) -> tuple[np.ndarray, np.ndarray]:
        # Everything here depends on frame i alone, so frames can be prepared in parallel.
        t = float(times[i])
        map_vessel = motion.to_canonical(grid, t, "vessel", tolerance=MAP_TOLERANCE).astype(np.float32)
        map_background = motion.to_canonical(grid, t, "background", tolerance=MAP_TOLERANCE).astype(np.float32)
        # Flows from the very maps the frame is rendered with: frame t shows canonical point
        # map(x) at x, which lies at F_{t'}(map(x)) in frame t'.
        if i + 1 < count:
            forward[i] = motion.to_frame(map_vessel, float(times[i + 1]), "vessel") - grid
        if i > 0:
            backward[i - 1] = motion.to_frame(map_vessel, float(times[i - 1]), "vessel") - grid
        return map_vessel, map_background

    iterator: Any = range(count)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="phantom", unit="frame")
    workers = max(1, min(2, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        submitted = 0
        for i in iterator:
            while submitted < count and submitted <= i + 2 * workers:
                pending.append(pool.submit(motion_job, submitted))
                submitted += 1
            map_vessel, map_background = pending.popleft().result()
            t = float(times[i])

            # Canonical vessel attenuation at this time, then both layers into the frame.
            c_att = contrast_concentration(scene.att_arc, t, params)
            vessel = np.bincount(scene.att_index, weights=scene.att_weight * c_att, minlength=flat_size)
            vessel_layer = scene.vessel_static + vessel.reshape(canvas).astype(np.float32)
            attenuation = _remap(vessel_layer, map_vessel, pad, nearest=False, border="replicate")
            attenuation += _remap(scene.background, map_background, pad, nearest=False, border="reflect")
            intensity = _blur(np.exp(-attenuation).astype(np.float32), sigma)
            counts = noise_rng.poisson(intensity.astype(np.float64) * dose)
            frame = np.clip(counts / dose, 0.0, 1.0)
            if gamma != 1.0:
                frame = frame**gamma
            frames[i] = frame.astype(np.float32)

            # Ground truth from the same maps.
            c_mask = contrast_concentration(scene.mask_arc, t, params)
            conc_canvas = np.zeros(flat_size, np.float32)
            np.maximum.at(conc_canvas, scene.mask_index, c_mask)
            # Rounded to float16 first, so the stored concentration and the labels agree exactly.
            conc_canvas = conc_canvas.reshape(canvas).astype(np.float16).astype(np.float32)
            visible = (conc_canvas > VISIBLE_CONCENTRATION).astype(np.uint8)
            vessel_mask = _remap(visible, map_vessel, pad, nearest=True, border="constant")
            catheter_mask = _remap(scene.catheter_mask, map_vessel, pad, nearest=True, border="constant")
            labels[i] = np.where(catheter_mask > 0, 2, np.where(vessel_mask > 0, 1, 0)).astype(np.uint8)
            concentration[i] = _remap(
                conc_canvas, map_vessel, pad, nearest=True, border="constant"
            ).astype(np.float16)

    video = Video(
        frames=frames,
        fps=params.fps,
        pixel_spacing=(PIXEL_SPACING_512_MM / params.scale,) * 2,
        metadata={
            "source_kind": "phantom",
            "generator": "angioseg.phantom",
            "bit_depth": 32,
            "seed": int(seed),
            "motion_seed": motion_seed,
            "visible_concentration": VISIBLE_CONCENTRATION,
            "tree_kind": scene.tree.metadata.get("kind"),
            "tree_segments": len(scene.tree.segments),
        },
    )
    masks = LabelMap(labels=labels, label_table=dict(LABELS))
    return PhantomRun(
        video=video,
        masks=masks,
        flow_forward=forward,
        flow_backward=backward,
        concentration=concentration,
        params=params,
    )
