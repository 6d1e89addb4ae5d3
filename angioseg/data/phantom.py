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
2 (catheter) always, over the vessel where they overlap; device labels 3-7 (below) over both.
The canonical masks are sampled with nearest neighbour at the same maps as the image, and the
flows are computed from the same maps, so masks, frames and flows agree exactly.

Optional devices (`PhantomParams.devices`, names in `DEVICE_NAMES`), each its own label
(`DEVICE_LABELS`), for multi-object video segmentation; all visible with or without contrast:

* 3 ``guidewire``: a thin (radius 0.4-0.7 px), very dense wire from the catheter tip down the
  lumen of one main artery (slightly off its centreline) far into the distal vessel;
* 4 ``marker``: a stent / balloon marker pair, two dense bands (2-3 x 4-6 px) 15-25 px apart
  on the same artery's centreline, placed clear of the electrode, sternal wires and clips;
* 5 ``electrode``: a pacing / EP lead (radius ~1.5 px, moderate attenuation) from the top
  border across the heart shadow, with 4-10 dense ring electrodes (~3 x 4 px) near its tip;
* 6 ``sternal_wire``: 2-4 very dense closed wire loops (ellipses or figure-eights, 20-40 px,
  each with a twisted knot) stacked down the middle of the frame's top half;
* 7 ``clip``: 1-3 dense surgical clips (bars or U shapes, ~3 x 10 px) in the heart region.

Sternal wires lie on the ``"background"`` layer (breathing only), the others on the
``"vessel"`` layer. Their attenuation mu x chord (chord in 512 px, as for the catheter) adds
to the Beer-Lambert exponent; their masks are sampled like the catheter's. Overlap order:
background < vessel < catheter < guidewire < marker < electrode < sternal_wire < clip, i.e.
where objects overlap the larger id wins. Devices draw from their own random stream (stream 6
of the seed's `SeedSequence`; the scene uses streams 0-5), so a run with devices is the run
without them plus the devices: masks and flows are unchanged away from the device labels, and
the frames differ only within the detector blur around them (the scene's photon counts are
drawn as before and then thinned binomially where the devices absorb). A run without devices is
bit-identical to one made before devices existed.

All lengths in `PhantomParams` are in pixels at 512 x 512 and scale with `size / 512`; the
devices are drawn to scale too, so at small frame sizes the thinnest are faint.
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Sequence

import cv2
import numpy as np

from angioseg.data.motion import CardiacBreathingMotion, MotionParams
from angioseg.data.vessel_tree import (
    Tube,
    VesselTree,
    chord_pixel_average,
    grow_coronary_tree,
    resample_polyline,
)
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

#: Optional devices a run may hold (`PhantomParams.devices`), in overlap order: where two
#: objects cover a pixel, the later one's label wins (the vessel and the catheter come first).
DEVICE_NAMES: tuple[str, ...] = ("guidewire", "marker", "electrode", "sternal_wire", "clip")
#: Fixed label id of each device (a run's label table holds only the devices it has).
DEVICE_LABELS: dict[int, str] = {3: "guidewire", 4: "marker", 5: "electrode", 6: "sternal_wire", 7: "clip"}
_DEVICE_IDS: dict[str, int] = {name: label for label, name in DEVICE_LABELS.items()}


def phantom_label_table(devices: Sequence[str] = ()) -> dict[int, str]:
    """The label table of a run with `devices`: `DEFAULT_LABELS` plus those devices' fixed ids."""
    table = dict(LABELS)
    for name in _check_devices(devices):
        table[_DEVICE_IDS[name]] = name
    return table


def _check_devices(devices: Any) -> tuple[str, ...]:
    """`devices` as a tuple of known, distinct names in `DEVICE_NAMES` order, or InputError."""
    if isinstance(devices, (str, bytes)) or not isinstance(devices, (tuple, list)):
        raise InputError(f"phantom devices must be a list of names from {', '.join(DEVICE_NAMES)}; got {devices!r}")
    seen: set[str] = set()
    for name in devices:
        if name not in DEVICE_NAMES:
            raise InputError(f"unknown phantom device {name!r}; the devices are {', '.join(DEVICE_NAMES)}")
        if name in seen:
            raise InputError(f"phantom device {name!r} is listed twice")
        seen.add(name)
    return tuple(name for name in DEVICE_NAMES if name in seen)


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

    Devices (each its own label, see `DEVICE_LABELS`; their shapes are drawn from the seed):
        devices: names from `DEVICE_NAMES`, stored in that order (default none). A run with
            devices is the same run as without them plus the devices: they draw from their
            own random streams.
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
    # devices
    devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", _check_devices(self.devices))
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
        cls,
        rng: np.random.Generator,
        *,
        size: int = 512,
        frames: int = 60,
        fps: float = 15.0,
        devices: Sequence[str] = (),
    ) -> "PhantomParams":
        """Draw every parameter from the documented ranges; size, frames, fps and devices as
        given (`devices` draws nothing from `rng`: the other parameters do not depend on it)."""
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
            devices=devices if isinstance(devices, (str, bytes)) else tuple(devices),
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
        masks: labels 0 background, 1 vessel (visible contrast only), 2 catheter, and the
            `DEVICE_LABELS` ids of `params.devices` (the table holds only those present).
        flow_forward: `(T-1, H, W, 2)` float32 (dx, dy), frame t -> t+1 on frame t's grid,
            the exact motion of the vessel layer (vessels, catheter, heart, and every device
            but the sternal wires, which move with the background layer's breathing only and
            whose motion is not stored).
        flow_backward: `(T-1, H, W, 2)` float32, frame t+1 -> t on frame t+1's grid:
            ``warp_backward(masks[t], flow_backward[t])`` lands on ``masks[t + 1]``.
        concentration: `(T, H, W)` float16 contrast concentration (0-1) of the vessels at each
            pixel, sampled like the masks (label 1 = concentration > VISIBLE_CONCENTRATION
            outside the catheter and the devices).
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


# ---- devices ------------------------------------------------------------------------------------
#
# Each device is built from two primitives on the padded canvas (frame pixels): a tube (a wire or
# lead along a polyline, chord through a cylinder as for the vessels) and a band (a short
# flat-ended cylinder about an axis: markers, ring electrodes, clip bars, wire twists). Within
# one device the primitives overlap as a union (the larger attenuation per pixel); different
# devices add in the exponent. Geometry is drawn in 512 units and scaled like everything else.

#: The guidewire stops where its artery's lumen radius falls below this (512 px).
GUIDEWIRE_MIN_LUMEN = 1.0
#: Devices stay within this margin of the frame border (fraction of the size) at rest.
_DEVICE_MARGIN = 0.06
#: A band's mask reaches at least this far (frame px) from its centre along and across its
#: axis, so that nearest-neighbour sampling under motion cannot lose a sub-pixel band (this
#: only matters at small frame sizes).
BAND_MASK_MIN_HALF_PX = 1.0
#: Markers sit at least this far (512 px) from the electrode, sternal wires and clips where they can.
MARKER_CLEARANCE = 14.0


@dataclass
class _Devices:
    """Canonical device attenuation and labels per motion layer (None where a layer has none)."""

    vessel_att: np.ndarray | None
    vessel_labels: np.ndarray | None
    background_att: np.ndarray | None
    background_labels: np.ndarray | None
    noise: np.random.Generator


Stamp = tuple[np.ndarray, np.ndarray, np.ndarray]  # (pixels (M, 2) row/col, chord (M,), inside (M,))


def _stamp_tube(points: np.ndarray, radius: float, canvas: tuple[int, int]) -> Stamp:
    """A wire of `radius` (frame px) along `points` (x, y, canvas px)."""
    reach = MASK_MIN_RADIUS_PX + 0.5
    tube = Tube.from_arrays(points, np.full(len(points), radius), np.zeros(len(points)))
    pixels = tube.candidate_pixels(canvas, reach)
    if len(pixels) == 0:
        return pixels, np.zeros(0), np.zeros(0, bool)
    dist, nearest = tube.query(pixels, reach)
    hit = nearest >= 0
    pixels, dist = pixels[hit], dist[hit]
    chord = chord_pixel_average(dist, np.full(len(dist), radius))
    return pixels, chord, dist <= max(radius, MASK_MIN_RADIUS_PX)


def _stamp_band(
    centre: np.ndarray, axis: np.ndarray, radius: float, half_length: float, canvas: tuple[int, int]
) -> Stamp:
    """A flat-ended cylinder of `radius` about `axis` through `centre`, `2 half_length` long."""
    axis = np.asarray(axis, np.float64) / (float(np.hypot(*axis)) + 1e-12)
    extent = half_length + radius + 2.0
    xa, xb = max(int(math.floor(centre[0] - extent)), 0), min(int(math.ceil(centre[0] + extent)), canvas[1] - 1)
    ya, yb = max(int(math.floor(centre[1] - extent)), 0), min(int(math.ceil(centre[1] + extent)), canvas[0] - 1)
    if xa > xb or ya > yb:
        return np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0, bool)
    rr, cc = np.mgrid[ya : yb + 1, xa : xb + 1]
    dx, dy = cc.ravel() - centre[0], rr.ravel() - centre[1]
    along = np.abs(dx * axis[0] + dy * axis[1])
    across = np.abs(dx * axis[1] - dy * axis[0])
    # Pixel-averaged across the axis like the tubes; a linear ramp over the pixel along it.
    chord = chord_pixel_average(across, np.full(len(across), radius)) * np.clip(half_length + 0.5 - along, 0.0, 1.0)
    floor = BAND_MASK_MIN_HALF_PX
    inside = (across <= max(radius, floor)) & (along <= max(half_length, floor))
    keep = (chord > 1e-6) | inside
    pixels = np.stack([rr.ravel(), cc.ravel()], axis=1)[keep].astype(np.int64)
    return pixels, chord[keep], inside[keep]


# A device is a list of primitives in 512 units: ("tube", points (N, 2), radius, mu) or
# ("band", centre (2,), axis (2,), radius, half_length, mu).
Primitive = tuple


def _paint(primitives: list[Primitive], canvas: tuple[int, int], scale: float, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """One device on the canvas: attenuation (the union of its parts: the larger value per
    pixel) and mask."""
    att = np.zeros(canvas, np.float32)
    mask = np.zeros(canvas, bool)
    for kind, *shape in primitives:
        if kind == "tube":
            points, radius, mu = shape
            stamp = _stamp_tube(np.asarray(points, np.float64) * scale + pad, radius * scale, canvas)
        else:
            centre, axis, radius, half_length, mu = shape
            centre = np.asarray(centre, np.float64) * scale + pad
            stamp = _stamp_band(centre, axis, radius * scale, half_length * scale, canvas)
        pixels, chord, inside = stamp
        if len(pixels) == 0:
            continue
        rows, cols = pixels[:, 0], pixels[:, 1]
        att[rows, cols] = np.maximum(att[rows, cols], (chord / scale * mu).astype(np.float32))
        mask[rows[inside], cols[inside]] = True
    return att, mask


def _footprint(primitives: list[Primitive]) -> tuple[np.ndarray, np.ndarray]:
    """Points (M, 2) along a device's primitives (512 units, about 2 px apart) and the reach
    (M,) of the device around each."""
    points, reach = [], []
    for kind, *shape in primitives:
        if kind == "tube":
            xy, radius, _ = shape
            xy = resample_polyline(np.asarray(xy, np.float64), 2.0)[0]
            points.append(xy)
            reach.append(np.full(len(xy), radius))
        else:
            centre, _, radius, half_length, _ = shape
            points.append(np.asarray(centre, np.float64)[None])
            reach.append(np.array([radius + half_length]))
    if not points:
        return np.zeros((0, 2)), np.zeros(0)
    return np.concatenate(points), np.concatenate(reach)


def _arc_length(points: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def _along(points: np.ndarray, arc: np.ndarray, s: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point(s) at arc length `s` along a polyline and the unit tangent(s) there."""
    s = np.asarray(s, np.float64)

    def at(where: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(where, arc, points[:, 0]), np.interp(where, arc, points[:, 1])], axis=-1)

    tangent = at(s + 1.0) - at(s - 1.0)
    tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True) + 1e-12
    return at(s), tangent


def _bezier(start: np.ndarray, p1: np.ndarray, p2: np.ndarray, end: np.ndarray, count: int = 400) -> np.ndarray:
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * end


Artery = tuple[np.ndarray, np.ndarray, np.ndarray]  # centreline (N, 2), radii (N,), arc (N,), 512 units


def _target_artery(rng: np.random.Generator, tree: VesselTree, params: PhantomParams, pad: int) -> Artery:
    """The main artery the guidewire and the markers use: from the ostium along the root (and,
    for a left tree, one of the main arteries it splits into, chosen by r^3) to where the lumen
    gets thinner than `GUIDEWIRE_MIN_LUMEN` or the artery nears the frame border."""
    scale = params.scale
    segments = tree.segments
    root = segments[0]
    points = [(root.points - pad) / scale]
    radii = [root.radii / scale]
    children = [i for i, seg in enumerate(segments) if seg.parent == 0 and seg.generation == 1]
    if tree.metadata.get("kind") == "left" and children:
        weights = np.array([float(segments[i].radii[0]) ** 3 for i in children])
        child = segments[children[int(rng.choice(len(children), p=weights / weights.sum()))]]
        points.append((child.points[1:] - pad) / scale)
        radii.append(child.radii[1:] / scale)
    xy, r = np.concatenate(points), np.concatenate(radii)
    S = float(REFERENCE_SIZE)
    low, high = _DEVICE_MARGIN * S, (1.0 - _DEVICE_MARGIN) * S
    outside = (r < GUIDEWIRE_MIN_LUMEN) | (xy < low).any(axis=1) | (xy > high).any(axis=1)
    outside[0] = False  # the ostium itself always counts
    stop = max(int(np.argmax(outside)) if outside.any() else len(xy), 2)
    xy, r = xy[:stop], r[:stop]
    return xy, r, _arc_length(xy)


def _guidewire(rng: np.random.Generator, artery: Artery) -> list[Primitive]:
    """A thin, very dense wire from the catheter tip down the artery's lumen, off-centre."""
    xy, r, arc = artery
    length = float(arc[-1]) * float(rng.uniform(0.8, 1.0))
    s = np.arange(0.0, length + 0.25, 0.5)
    centre, tangent = _along(xy, arc, s)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    radius = np.interp(s, arc, r)
    wave = np.zeros_like(s)
    for _ in range(2):
        wave += np.sin(2 * math.pi * s / float(rng.uniform(40.0, 140.0)) + float(rng.uniform(0, 2 * math.pi)))
    offset = float(rng.uniform(0.15, 0.45)) * radius * (wave / 2.0) * _smoothstep(s / 15.0)
    wire = centre + normal * offset[:, None]
    return [("tube", wire, float(rng.uniform(0.4, 0.7)), float(rng.uniform(0.6, 0.9)))]


def _markers(rng: np.random.Generator, artery: Artery, keep_out: tuple[np.ndarray, np.ndarray]) -> list[Primitive]:
    """Two dense marker bands on the artery's centreline, 15-25 px apart, where the artery is
    at least 1.5 px in radius and, if it can be, clear of the other devices (which would
    cover them in the masks)."""
    xy, r, arc = artery
    total = float(arc[-1])
    gap = float(rng.uniform(15.0, 25.0))
    radius, half, mu = float(rng.uniform(1.0, 1.5)), float(rng.uniform(2.0, 3.0)), float(rng.uniform(0.7, 1.0))
    first = np.arange(0.1 * total, max(total - gap - half, 0.1 * total) + 1e-9, 1.0)
    wide = (np.interp(first, arc, r) >= 1.5) & (np.interp(first + gap, arc, r) >= 1.5)
    if wide.any():
        first = first[wide]
    clearance = np.full(len(first), np.inf)
    points, reach = keep_out
    if len(points):
        for s in (first, first + gap):
            centre = _along(xy, arc, s)[0]
            distance = np.linalg.norm(centre[:, None, :] - points[None, :, :], axis=2) - reach[None, :]
            clearance = np.minimum(clearance, distance.min(axis=1))
    clear = clearance >= MARKER_CLEARANCE
    choice = int(rng.choice(np.flatnonzero(clear))) if clear.any() else int(np.argmax(clearance))
    out = []
    for s in (first[choice], first[choice] + gap):
        centre, tangent = _along(xy, arc, s)
        out.append(("band", centre, tangent, radius, half, mu))
    return out


def _electrode(rng: np.random.Generator, params: PhantomParams, bound: float) -> list[Primitive]:
    """A pacing / EP lead from the top border across the heart shadow, ring electrodes at its tip."""
    S = float(REFERENCE_SIZE)
    mp = params.motion
    assert mp is not None
    centre = np.array(mp.heart_centre) * S
    tip = centre + np.array([float(rng.uniform(-0.22, 0.22)), float(rng.uniform(0.0, 0.2))]) * S
    tip = np.clip(tip, 0.15 * S, 0.85 * S)
    start = np.array([float(rng.uniform(0.2, 0.8)) * S, -bound - 4.0])
    span = float(np.linalg.norm(tip - start))
    a = math.radians(float(rng.uniform(-25, 25)))
    p1 = start + np.array([math.sin(a), math.cos(a)]) * span * float(rng.uniform(0.3, 0.5))
    b = math.radians(float(rng.uniform(20, 160)))  # it reaches the tip heading down the frame
    p2 = tip - np.array([math.cos(b), math.sin(b)]) * span * float(rng.uniform(0.2, 0.4))
    path = _bezier(start, p1, p2, tip)
    arc = _arc_length(path)
    out: list[Primitive] = [("tube", path, 1.5 * float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.12, 0.18)))]
    count = int(rng.integers(4, 11))
    spacing = float(rng.uniform(6.0, 10.0))
    ring_radius, ring_half, ring_mu = float(rng.uniform(1.8, 2.2)), float(rng.uniform(1.3, 1.7)), float(rng.uniform(0.5, 0.7))
    for k in range(count):
        where, tangent = _along(path, arc, max(float(arc[-1]) - ring_half - k * spacing, 0.0))
        out.append(("band", where, tangent, ring_radius, ring_half, ring_mu))
    return out


def _sternal_wires(rng: np.random.Generator) -> list[Primitive]:
    """2-4 closed wire loops (ellipses or figure-eights, each with a twisted knot) stacked down
    the middle of the frame's top half."""
    S = float(REFERENCE_SIZE)
    count = int(rng.integers(2, 5))
    x_mid = float(rng.uniform(0.44, 0.56)) * S
    y = float(rng.uniform(0.1, 0.16)) * S
    spacing = float(rng.uniform(38.0, 55.0))
    t = np.linspace(0.0, 2 * math.pi, 241)
    out: list[Primitive] = []
    for _ in range(count):
        width = float(rng.uniform(20.0, 40.0))
        height = width * float(rng.uniform(0.35, 0.6))
        if rng.uniform() < 0.5:
            u, v = 0.5 * width * np.cos(t), 0.5 * height * np.sin(t)  # ellipse
        else:
            u, v = 0.5 * width * np.sin(t), 0.5 * height * np.sin(2 * t)  # figure-eight
        angle = math.radians(float(rng.uniform(-15, 15)))
        ca, sa = math.cos(angle), math.sin(angle)
        centre = np.array([x_mid + float(rng.uniform(-6, 6)), y])
        loop = centre + np.stack([ca * u - sa * v, sa * u + ca * v], axis=1)
        wire, mu = float(rng.uniform(0.9, 1.2)), float(rng.uniform(0.9, 1.3))
        out.append(("tube", loop, wire, mu))
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        knot = centre + side * 0.5 * width * np.array([ca, sa])  # the twist, where the ends meet
        out.append(("band", knot, np.array([ca, sa]), 1.8 * wire, float(rng.uniform(2.5, 4.0)), mu))
        y += spacing
    return out


def _clips(rng: np.random.Generator, params: PhantomParams) -> list[Primitive]:
    """1-3 surgical clips (dense bars or U shapes, about 3 x 10 px) in the heart region."""
    S = float(REFERENCE_SIZE)
    mp = params.motion
    assert mp is not None
    out: list[Primitive] = []
    for _ in range(int(rng.integers(1, 4))):
        rho, phi = math.sqrt(float(rng.uniform())), float(rng.uniform(0, 2 * math.pi))
        centre = np.array(mp.heart_centre) * S + rho * np.array([0.28 * math.cos(phi), 0.25 * math.sin(phi)]) * S
        centre = np.clip(centre, 0.12 * S, 0.88 * S)
        angle = float(rng.uniform(0, math.pi))
        axis, across = np.array([math.cos(angle), math.sin(angle)]), np.array([-math.sin(angle), math.cos(angle)])
        if rng.uniform() < 0.4:
            bar = (float(rng.uniform(1.2, 1.7)), float(rng.uniform(4.0, 6.0)), float(rng.uniform(0.7, 1.0)))
            out.append(("band", centre, axis, *bar))
            continue
        arm, gap = float(rng.uniform(8.0, 11.0)), float(rng.uniform(2.5, 4.0))
        bend = np.linspace(math.pi, 2 * math.pi, 13)
        shape = np.concatenate([
            [[-gap / 2, arm / 2]],
            np.stack([gap / 2 * np.cos(bend), -arm / 2 + gap / 2 * np.sin(bend)], axis=1),
            [[gap / 2, arm / 2]],
        ])
        points = centre + shape[:, :1] * across + shape[:, 1:] * axis
        out.append(("tube", points, float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.8, 1.1))))
    return out


def _build_devices(params: PhantomParams, scene: _Scene, stream: np.random.SeedSequence) -> _Devices:
    """The requested devices on the canvas. Each is drawn from its own random stream, and the
    markers keep clear of where the electrode, sternal wires and clips would be whether or not
    the run has them: a device's shape does not depend on which other devices the run has."""
    children = stream.spawn(2 + len(DEVICE_NAMES))
    rng = {name: np.random.default_rng(child) for name, child in zip(("artery", "noise", *DEVICE_NAMES), children)}
    canvas, pad, scale = scene.canvas, scene.pad, params.scale
    artery = _target_artery(rng["artery"], scene.tree, params, pad)
    plans: dict[str, list[Primitive]] = {
        "guidewire": _guidewire(rng["guidewire"], artery),
        "electrode": _electrode(rng["electrode"], params, pad / scale),
        "sternal_wire": _sternal_wires(rng["sternal_wire"]),
        "clip": _clips(rng["clip"], params),
    }
    others = [_footprint(plans[name]) for name in ("electrode", "sternal_wire", "clip")]
    keep_out = (np.concatenate([f[0] for f in others]), np.concatenate([f[1] for f in others]))
    plans["marker"] = _markers(rng["marker"], artery, keep_out)
    layers: dict[str, list[np.ndarray]] = {}
    for name in params.devices:  # in DEVICE_NAMES order, so later labels overwrite earlier ones
        att, mask = _paint(plans[name], canvas, scale, pad)
        layer = "background" if name == "sternal_wire" else "vessel"
        if layer not in layers:
            layers[layer] = [np.zeros(canvas, np.float32), np.zeros(canvas, np.uint8)]
        layers[layer][0] += att
        layers[layer][1][mask] = _DEVICE_IDS[name]
    vessel, background = layers.get("vessel", [None, None]), layers.get("background", [None, None])
    return _Devices(vessel[0], vessel[1], background[0], background[1], rng["noise"])


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
    # Stream 6 (devices) is spawned after the six the scene has always used, which therefore
    # stay what they were: a run without devices is bit-identical to one from before devices.
    streams = np.random.SeedSequence(int(seed)).spawn(7)
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
    devices = _build_devices(params, scene, streams[6]) if params.devices else None
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
            if devices is not None:
                # The scene's counts are drawn exactly as without devices; then each photon
                # reaching a pixel the devices darken is kept with probability I_dev / I (binomial
                # thinning, from the devices' own stream): the counts are again Poisson with
                # mean dose * I_dev, and pixels the devices barely touch keep their counts.
                if devices.vessel_att is not None:
                    attenuation += _remap(devices.vessel_att, map_vessel, pad, nearest=False, border="constant")
                if devices.background_att is not None:
                    attenuation += _remap(devices.background_att, map_background, pad, nearest=False, border="constant")
                with_devices = _blur(np.exp(-attenuation).astype(np.float32), sigma)
                changed = with_devices != intensity
                kept = np.clip(with_devices[changed].astype(np.float64) / intensity[changed], 0.0, 1.0)
                counts[changed] = devices.noise.binomial(counts[changed], kept)
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
            if devices is not None:
                # Device ids grow in overlap order, so the larger id wins where devices overlap.
                device_labels = np.zeros((size, size), np.uint8)
                if devices.vessel_labels is not None:
                    device_labels = _remap(devices.vessel_labels, map_vessel, pad, nearest=True, border="constant")
                if devices.background_labels is not None:
                    on_background = _remap(devices.background_labels, map_background, pad, nearest=True, border="constant")
                    device_labels = np.maximum(device_labels, on_background)
                labels[i] = np.where(device_labels > 0, device_labels, labels[i])
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
            **({"devices": list(params.devices)} if params.devices else {}),
        },
    )
    masks = LabelMap(labels=labels, label_table=phantom_label_table(params.devices))
    return PhantomRun(
        video=video,
        masks=masks,
        flow_forward=forward,
        flow_backward=backward,
        concentration=concentration,
        params=params,
    )
