"""Synthetic digital subtraction angiography (DSA) runs of the liver during TACE, with exact
tumour and liver masks (the DSA liver phantom).

`generate_dsa_liver(params, seed=...)` renders one hepatic-artery injection as a subtracted
run, the way an angiography system shows it during transarterial chemoembolisation of
hepatocellular carcinoma (HCC), with the truth a radiologist would draw: the liver and every
tumour on every frame, each tumour rich- or poor-blood.

Image formation. Every exposure follows Beer-Lambert, ``I / I0 = exp(-(A_anatomy + A_iodine))``,
then a Gaussian detector blur and Poisson quantum noise at `dose` photons per pixel (per pixel
at 512; the count per pixel grows with the pixel area at smaller frames). A pre-contrast mask
exposure is taken at t = 0 and every frame is subtracted from it in the log domain::

    D_t = log(counts_t) - log(counts_mask)        (= -A_iodine where nothing moved and no noise)
    frame_t = clip(NEUTRAL + display_gain * D_t, 0, 1)

Display convention (clinical DSA): contrast dark on a light-grey background. Where nothing
changed since the mask, a frame holds exactly `NEUTRAL` (0.625, 160/256); iodine darkens it
(an opacified hepatic artery trunk goes near black), and misregistered anatomy leaves brighter
and darker edge pairs around the neutral grey. Frame 0 is the pre-contrast frame taken with
the mask (no motion yet, no iodine): with noise off it is exactly `NEUTRAL` everywhere. Static
anatomy cancels exactly: with motion and noise off, every pixel the iodine's blur does not
reach holds exactly `NEUTRAL` on every frame.

Scene (lengths in pixels at 512 x 512, scaled with min(height, width) / 512; positions as
fractions of the frame; image left is the patient's right, so the liver is upper left):

* anatomy that the subtraction removes unless it moves: abdominal soft tissue, the lumbar
  spine (vertebral bodies with cortical shells, pedicles, transverse and spinous processes),
  the lower ribs, the lung bases above both diaphragm domes (a strong edge), the liver (a
  little denser than its surroundings), the right kidney, the stomach's gas bubble, bowel gas
  and residual oral contrast in some bowel loops, and the catheter (femoral approach: up the
  aorta beside the spine to the coeliac trunk, its tip in the common hepatic artery or, for a
  coeliac injection, at the coeliac trunk);
* iodine, which only the live frames hold:
  - the arterial tree (`angioseg.data.vessel_tree.TreeGrower`): the common hepatic artery from
    the catheter tip, the gastroduodenal artery (GDA) leaving it downwards, the proper hepatic
    artery splitting into right and left hepatic arteries that branch (Murray's law) through
    the liver and are cut at its edge; for a coeliac injection also a tortuous splenic artery
    to the right and a left gastric artery up to the stomach;
  - 1-10 tumours in the liver, each fed by a small branch from the nearest hepatic artery.
    Rich-blood tumours get a wider feeder and a tangle of tumour vessels, and a strong blush
    that starts small and blurred at the feeder's end and grows to the tumour's outline while
    its edge sharpens, then holds (stable) to the end of the run. Poor-blood tumours get a thin
    feeder and a faint, blurred blush that rises slowly;
  - look-alikes: the parenchymal (capillary) blush of the healthy liver (diffuse, mottled),
    0-6 transient focal parenchymal blushes in the liver (come and go, unlike tumours), the
    mucosal blush of the stomach (rugal folds, upper right) and of 0-8 bowel loops (blotchy
    curved tubes, lower half, one of them often over the liver's lower edge), the GDA and
    splenic branches, and in the late frames the hepatic veins draining to the IVC.

Timeline, in fractions of the run (frame 0 at 0, the last frame at 1), so that any frame
count spans the same phases: injection at `injection_start`; the arterial front reaches the
farthest hepatic branch `arterial_fill` later (arterial phase); parenchymal and tumour blush
rise after it (capillary phase; rich tumours stable by 0.85 at the latest); arterial wash-out
from `washout_start`; hepatic veins from `venous_start` (early venous phase).

Motion, three layers, each the identity at t = 0 (so frame 0 matches the mask):

* ``liver`` (the organs under the diaphragm: liver with its tumours and vessels, diaphragm and
  lung bases, stomach, kidney, catheter): residual breathing, a translation b(t) e_breath that
  starts when the breath-hold fails (`breathing_onset`) and then follows (1 - cos) / 2 at the
  breathing period, plus a patient shift (a smooth step of `shift_px` at `shift_time`);
* ``body`` (spine, ribs, body wall): the shift plus `bone_breathing_factor` of the breathing;
* ``bowel`` (gas, bowel contents and bowel blush): the shift, half the breathing, and
  peristalsis: three travelling waves of local displacement, zero at t = 0.

The inverse maps (frame -> canonical) are exact for the translations and found by fixed-point
iteration for peristalsis. Canonical images live on a canvas padded beyond the largest motion
and are sampled with `angioseg.warp.sample_at`; masks with nearest neighbour at the same maps.

Truth: labels {0: background, 1: liver, 2: tumour} (tumour over liver) on every frame, moving
with the liver layer; `DSALiverRun.liver` the liver mask alone; `DSALiverRun.instances` each
tumour's id (1..n); `DSALiverRun.tumours` (also in the video's metadata) each tumour's id,
class, centroid (x, y) and area in pixels at frame 0 and its area in mm^2. A tumour's mask is
exactly `area_px` pixels in the canonical scene (at 128 x 128 the smallest tumours are one
pixel), always inside the liver mask. `DSALiverRun.contrast` is the iodine's attenuation in
each frame (before blur and noise): zero exactly where no iodine is.

Not modelled: cardiac motion at the top of the frame, lipiodol deposition, portal vein
opacification through arterio-portal shunts, collimation and the image intensifier's
vignetting, scatter and veiling glare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np

from angioseg.data.phantom import _blur, _shell_profile, _smoothstep, _unit_noise
from angioseg.data.vessel_tree import Segment, TreeGrower, Tube, VesselTree, _Job, chord_pixel_average
from angioseg.errors import InputError
from angioseg.types import LabelMap, Video
from angioseg.warp import sample_at

#: Display value of "no change since the mask frame" (float32-exact: 160 / 256).
NEUTRAL = np.float32(0.625)
#: Label table of every run: tumour over liver.
DSA_LIVER_LABELS: dict[int, str] = {0: "background", 1: "liver", 2: "tumour"}
TUMOUR_CLASSES: tuple[str, ...] = ("rich", "poor")
INJECTION_SITES: tuple[str, ...] = ("hepatic", "celiac")
MAX_TUMOURS = 10
REFERENCE_SIZE = 512
#: Nominal pixel spacing at 512 (an abdominal field of view of about 30 cm), in mm.
PIXEL_SPACING_512_MM = 0.6
#: Vessels thinner than this radius (frame pixels) are not drawn (small frames).
MIN_RENDER_RADIUS_PX = 0.3
#: Fraction of the breathing the bowel layer follows.
BOWEL_BREATHING_FACTOR = 0.5
#: Rich tumours have stopped changing by this fraction of the run.
RICH_STABLE_BY = 0.85
#: Grid step (frame px) on which the peristalsis field is inverted and then interpolated.
PERISTALSIS_STEP = 8

LAYERS: tuple[str, ...] = ("body", "liver", "bowel")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# Accepted ranges (the validator's; `sample` draws from the narrower documented ones).
_INT_RANGES: dict[str, tuple[int, int]] = {
    "height": (32, 4096),
    "width": (32, 4096),
    "frames": (2, 1000),
    "num_rich": (0, MAX_TUMOURS),
    "num_poor": (0, MAX_TUMOURS),
    "bowel_loops": (0, 8),
    "pseudo_lesions": (0, 6),
}
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "fps": (0.1, 60.0),
    "liver_extent": (0.3, 0.8),
    "liver_depth": (0.35, 0.85),
    "diaphragm_height": (0.0, 0.3),
    "body_attenuation": (0.0, 5.0),
    "lung_attenuation": (0.0, 2.0),
    "liver_attenuation": (0.0, 1.0),
    "spine_position": (0.4, 0.8),
    "spine_attenuation": (0.0, 3.0),
    "rib_attenuation": (0.0, 2.0),
    "bowel_gas": (0.0, 2.0),
    "texture_amplitude": (0.0, 1.0),
    "hepatic_radius": (0.8, 6.0),
    "min_radius": (0.2, 2.0),
    "branch_spacing": (1.0, 30.0),
    "tortuosity": (0.0, 5.0),
    "vessel_attenuation": (0.0, 1.0),
    "catheter_radius": (0.3, 5.0),
    "catheter_attenuation": (0.0, 3.0),
    "tumour_min_area": (1.0, 2000.0),
    "tumour_max_area": (1.0, 2000.0),
    "rich_attenuation": (0.0, 3.0),
    "poor_attenuation": (0.0, 3.0),
    "bowel_blush": (0.0, 1.0),
    "stomach_blush": (0.0, 1.0),
    "parenchymal_blush": (0.0, 1.0),
    "injection_start": (0.01, 0.5),
    "arterial_fill": (0.02, 0.5),
    "washout_start": (0.1, 1.5),
    "tumour_growth": (0.05, 0.8),
    "venous_start": (0.1, 1.5),
    "venous_level": (0.0, 1.0),
    "breathing_px": (0.0, 30.0),
    "breathing_angle_deg": (-90.0, 90.0),
    "breathing_onset": (0.0, 1.0),
    "breathing_period_s": (0.5, 20.0),
    "bone_breathing_factor": (0.0, 1.0),
    "shift_px": (0.0, 30.0),
    "shift_angle_deg": (-360.0, 360.0),
    "shift_time": (0.0, 1.0),
    "shift_duration_s": (0.05, 10.0),
    "peristalsis_px": (0.0, 8.0),
    "peristalsis_period_s": (0.5, 30.0),
    "blur_sigma": (0.0, 5.0),
    "dose": (10.0, 1e7),
    "display_gain": (0.1, 10.0),
}


@dataclass(frozen=True)
class DSALiverParams:
    """Everything that shapes a DSA liver run; the fine anatomy is drawn from the seed.

    Lengths are in pixels at 512 x 512 and scale with min(height, width) / 512; areas with its
    square. Times in the contrast timeline are fractions of the run (0 = frame 0, 1 = the last
    frame). The ranges given are the ones `sample` draws from; the validator accepts wider
    ones (`_INT_RANGES`, `_FLOAT_RANGES`) and raises a one-line `InputError` naming the field.

    Run:
        height, width: frame size in pixels, 32-4096 each (default 512 x 512; the paper's runs
            are 1021 x 788, width x height).
        frames: frames per run, 20-30 in clinical runs (default 24; accepted 2-1000).
        fps: frames per second, 2-6 in abdominal DSA (default 3).
        injection_site: "hepatic" (catheter tip in the common hepatic artery: the GDA fills)
            or "celiac" (tip at the coeliac trunk: the splenic and left gastric arteries fill
            too); sampled 60 / 40.

    Anatomy (attenuations are in the Beer-Lambert exponent, dimensionless):
        liver_extent: how far right the left lobe's tip reaches, fraction of the width, 0.55-0.72.
        liver_depth: the liver's lower edge at the left border, fraction of the height, 0.55-0.8.
        diaphragm_height: top of the right dome, fraction of the height, 0.03-0.15.
        body_attenuation: abdominal soft tissue, 1.6-2.6.
        lung_attenuation: how much less the lung bases attenuate, 0.3-0.7 (the diaphragm edge).
        liver_attenuation: liver over its surroundings, 0.03-0.12 (the liver edge).
        spine_position: spine axis, fraction of the width, 0.55-0.68.
        spine_attenuation: vertebral bodies, 0.2-0.45.
        rib_attenuation: lower ribs, 0.05-0.15.
        bowel_gas: gas in bowel loops (less attenuation), 0.1-0.35.
        texture_amplitude: low-frequency soft-tissue texture, 0.02-0.06.

    Arteries:
        hepatic_radius: proper hepatic artery radius, 2.0-3.0 px.
        min_radius: branches end below this radius, 0.35-0.5 px.
        branch_spacing: mean gap between side branches in local radii, 3-6.
        tortuosity: random curvature of the hepatic branches, 0.4-1.6 (cirrhotic corkscrews).
        vessel_attenuation: mu of fully opacified blood per pixel, 0.05-0.09.
        catheter_radius: 1.0-1.5 px (4-5 F); catheter_attenuation: its wall, 0.06-0.15.

    Tumours (HCC):
        num_rich, num_poor: rich- and poor-blood tumours, 1-10 in all (the count drawn with
            weights falling as 0.7^n, each rich with probability 0.72 as in the paper's 548 of 760).
        tumour_min_area, tumour_max_area: tumour areas are drawn log-uniform between these,
            6-220 px^2 at 512 (the paper's range).
        rich_attenuation: a rich tumour's plateau blush, 0.18-0.4 (mottled by +-20 %).
        poor_attenuation: a poor tumour's blush, 0.07-0.14.
        tumour_growth: time a rich tumour's blush takes to fill its outline, 0.25-0.4 of the
            run (poor ones 1.4x longer).

    Look-alikes:
        bowel_loops: bowel loops with contrast (mucosal blush or, about 4 in 10, residual oral
            contrast that only misregistration shows), 1-5.
        bowel_blush: mucosal blush of a bowel loop, 0.08-0.25 (as dark as a tumour, as in the paper).
        stomach_blush: mucosal blush of the stomach wall and folds, 0.04-0.12.
        parenchymal_blush: healthy liver blush at its peak, 0.02-0.05.
        pseudo_lesions: transient focal parenchymal blushes in the liver, 0-3.

    Contrast timeline (fractions of the run):
        injection_start: 0.04-0.12. arterial_fill: 0.08-0.18. washout_start: the arterial
        wash-out (and the end of the injection), 0.4-0.6. venous_start: 0.55-0.75.
        venous_level: hepatic vein opacification relative to the arteries, 0.08-0.2.

    Motion (px at 512):
        breathing_px: residual breathing amplitude, 0-10; breathing_angle_deg: its direction
            from +y (down), -25..25; breathing_onset: when the breath-hold fails, 0.1-0.8;
            breathing_period_s: 3-6.
        bone_breathing_factor: how much of the breathing spine and ribs follow, 0.1-0.4.
        shift_px: a patient shift, 0 (six runs in ten) or 1-4; shift_angle_deg: its
            direction, 0-360; shift_time: when, 0.2-0.9; shift_duration_s: how long it takes,
            0.3-1.0.
        peristalsis_px: bowel peristalsis amplitude, 0.5-4; peristalsis_period_s: 2.5-6.

    Imaging:
        blur_sigma: detector blur, 0.5-1.0 px. dose: photons per pixel (at 512) at full
        transmission, 5000-50000 (log-uniform). noise: quantum noise on (False: noiseless,
        for tests). display_gain: window of the log-subtracted image, 1.0-1.6.
    """

    height: int = 512
    width: int = 512
    frames: int = 24
    fps: float = 3.0
    injection_site: str = "hepatic"
    # anatomy
    liver_extent: float = 0.64
    liver_depth: float = 0.68
    diaphragm_height: float = 0.09
    body_attenuation: float = 2.0
    lung_attenuation: float = 0.5
    liver_attenuation: float = 0.08
    spine_position: float = 0.62
    spine_attenuation: float = 0.32
    rib_attenuation: float = 0.1
    bowel_gas: float = 0.2
    texture_amplitude: float = 0.04
    # arteries
    hepatic_radius: float = 2.5
    min_radius: float = 0.42
    branch_spacing: float = 4.5
    tortuosity: float = 0.8
    vessel_attenuation: float = 0.07
    catheter_radius: float = 1.25
    catheter_attenuation: float = 0.1
    # tumours
    num_rich: int = 2
    num_poor: int = 1
    tumour_min_area: float = 6.0
    tumour_max_area: float = 220.0
    rich_attenuation: float = 0.28
    poor_attenuation: float = 0.1
    tumour_growth: float = 0.3
    # look-alikes
    bowel_loops: int = 3
    bowel_blush: float = 0.15
    stomach_blush: float = 0.08
    parenchymal_blush: float = 0.035
    pseudo_lesions: int = 1
    # timeline
    injection_start: float = 0.08
    arterial_fill: float = 0.12
    washout_start: float = 0.5
    venous_start: float = 0.65
    venous_level: float = 0.14
    # motion
    breathing_px: float = 4.0
    breathing_angle_deg: float = 0.0
    breathing_onset: float = 0.5
    breathing_period_s: float = 4.0
    bone_breathing_factor: float = 0.25
    shift_px: float = 0.0
    shift_angle_deg: float = 0.0
    shift_time: float = 0.6
    shift_duration_s: float = 0.5
    peristalsis_px: float = 2.0
    peristalsis_period_s: float = 4.0
    # imaging
    blur_sigma: float = 0.7
    dose: float = 20000.0
    noise: bool = True
    display_gain: float = 1.3

    def __post_init__(self) -> None:
        for name, (low, high) in _INT_RANGES.items():
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise InputError(f"dsa-liver parameter {name} must be an integer from {low} to {high}; got {value!r}")
        for name, (low, high) in _FLOAT_RANGES.items():
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and low <= value <= high):
                raise InputError(f"dsa-liver parameter {name} must be a number in [{low}, {high}]; got {value!r}")
        if self.injection_site not in INJECTION_SITES:
            raise InputError(
                f"dsa-liver parameter injection_site must be one of {', '.join(INJECTION_SITES)}; got {self.injection_site!r}"
            )
        if not isinstance(self.noise, (bool, np.bool_)):
            raise InputError(f"dsa-liver parameter noise must be true or false; got {self.noise!r}")
        total = self.num_rich + self.num_poor
        if not 1 <= total <= MAX_TUMOURS:
            raise InputError(
                f"dsa-liver parameters num_rich + num_poor must be 1 to {MAX_TUMOURS} tumours; got {total}"
            )
        if self.tumour_min_area > self.tumour_max_area:
            raise InputError(
                f"dsa-liver parameter tumour_min_area ({self.tumour_min_area}) must not exceed "
                f"tumour_max_area ({self.tumour_max_area})"
            )
        if self.washout_start <= self.injection_start + self.arterial_fill:
            raise InputError(
                "dsa-liver parameter washout_start must come after injection_start + arterial_fill; "
                f"got {self.washout_start} <= {self.injection_start} + {self.arterial_fill}"
            )
        if self.min_radius >= self.hepatic_radius:
            raise InputError(
                f"dsa-liver parameter min_radius ({self.min_radius}) must be smaller than hepatic_radius ({self.hepatic_radius})"
            )

    # ---- derived ----------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Frame size relative to 512 (the smaller side)."""
        return min(self.height, self.width) / REFERENCE_SIZE

    @property
    def duration_s(self) -> float:
        """Time from frame 0 to the last frame."""
        return (self.frames - 1) / self.fps

    @property
    def times(self) -> np.ndarray:
        """Acquisition time of each frame in seconds (frame 0 at t = 0)."""
        return np.arange(self.frames, dtype=np.float64) / self.fps

    @property
    def run_fractions(self) -> np.ndarray:
        """Each frame's place in the run, 0 (frame 0) to 1 (the last frame)."""
        return np.arange(self.frames, dtype=np.float64) / (self.frames - 1)

    def without_motion(self) -> "DSALiverParams":
        """The same run with no breathing, shift or peristalsis."""
        return _replace(self, breathing_px=0.0, shift_px=0.0, peristalsis_px=0.0)

    # ---- sampling / serialisation -------------------------------------------------------------
    @classmethod
    def sample(
        cls, rng: np.random.Generator, *, height: int = 512, width: int = 512, frames: int = 24, fps: float = 3.0
    ) -> "DSALiverParams":
        """Draw every parameter from the documented ranges; size, frames and fps as given."""
        u = lambda low, high: float(rng.uniform(low, high))  # noqa: E731
        weights = 0.7 ** np.arange(1, MAX_TUMOURS + 1)
        count = int(rng.choice(np.arange(1, MAX_TUMOURS + 1), p=weights / weights.sum()))
        rich = int(rng.binomial(count, 0.72))
        shift = 0.0 if rng.uniform() < 0.6 else u(1.0, 4.0)
        return cls(
            height=int(height),
            width=int(width),
            frames=int(frames),
            fps=float(fps),
            injection_site="hepatic" if rng.uniform() < 0.6 else "celiac",
            liver_extent=u(0.55, 0.72),
            liver_depth=u(0.55, 0.8),
            diaphragm_height=u(0.03, 0.15),
            body_attenuation=u(1.6, 2.6),
            lung_attenuation=u(0.3, 0.7),
            liver_attenuation=u(0.03, 0.12),
            spine_position=u(0.55, 0.68),
            spine_attenuation=u(0.2, 0.45),
            rib_attenuation=u(0.05, 0.15),
            bowel_gas=u(0.1, 0.35),
            texture_amplitude=u(0.02, 0.06),
            hepatic_radius=u(2.0, 3.0),
            min_radius=u(0.35, 0.5),
            branch_spacing=u(3.0, 6.0),
            tortuosity=u(0.4, 1.6),
            vessel_attenuation=u(0.05, 0.09),
            catheter_radius=u(1.0, 1.5),
            catheter_attenuation=u(0.06, 0.15),
            num_rich=rich,
            num_poor=count - rich,
            tumour_min_area=6.0,
            tumour_max_area=220.0,
            rich_attenuation=u(0.18, 0.4),
            poor_attenuation=u(0.07, 0.14),
            tumour_growth=u(0.25, 0.4),
            bowel_loops=int(rng.integers(1, 6)),
            bowel_blush=u(0.08, 0.25),
            stomach_blush=u(0.04, 0.12),
            parenchymal_blush=u(0.02, 0.05),
            pseudo_lesions=int(rng.integers(0, 4)),
            injection_start=u(0.04, 0.12),
            arterial_fill=u(0.08, 0.18),
            washout_start=u(0.4, 0.6),
            venous_start=u(0.55, 0.75),
            venous_level=u(0.08, 0.2),
            breathing_px=u(0.0, 10.0),
            breathing_angle_deg=u(-25.0, 25.0),
            breathing_onset=u(0.1, 0.8),
            breathing_period_s=u(3.0, 6.0),
            bone_breathing_factor=u(0.1, 0.4),
            shift_px=shift,
            shift_angle_deg=u(0.0, 360.0),
            shift_time=u(0.2, 0.9),
            shift_duration_s=u(0.3, 1.0),
            peristalsis_px=u(0.5, 4.0),
            peristalsis_period_s=u(2.5, 6.0),
            blur_sigma=u(0.5, 1.0),
            dose=float(np.exp(rng.uniform(np.log(5000.0), np.log(50000.0)))),
            noise=True,
            display_gain=u(1.0, 1.6),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.item() if isinstance(value, np.generic) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DSALiverParams":
        """Inverse of `to_dict`; unknown keys raise InputError."""
        if not isinstance(data, dict):
            raise InputError(f"dsa-liver parameters must be a dict; got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"dsa-liver parameters hold unknown keys {unknown}")
        return cls(**data)


def _replace(params: DSALiverParams, **changes: Any) -> DSALiverParams:
    values = {f.name: getattr(params, f.name) for f in fields(params)}
    values.update(changes)
    return DSALiverParams(**values)


@dataclass
class DSALiverRun:
    """A rendered DSA liver run with its exact truth.

    Attributes:
        video: `(T, H, W)` float32 frames in [0, 1], DSA display (`NEUTRAL` = unchanged since
            the mask frame, iodine dark); fps = params.fps; metadata holds the seed, the
            display convention and the tumour list.
        masks: labels `DSA_LIVER_LABELS` (0 background, 1 liver, 2 tumour over liver).
        liver: `(T, H, W)` bool liver mask (tumours included).
        instances: `(T, H, W)` uint8, each tumour's id (1..n, the `id` in `tumours`), 0 elsewhere.
        tumours: one dict per tumour: id, class ("rich"/"poor"), centroid [x, y] and area_px
            at frame 0 (frame pixels), area_mm2, feeder_radius_px.
        contrast: `(T, H, W)` float32 attenuation of the iodine in each frame before blur and
            noise (0 exactly where there is none).
        params: the parameters the run was made with.
    """

    video: Video
    masks: LabelMap
    liver: np.ndarray
    instances: np.ndarray
    tumours: list[dict[str, Any]]
    contrast: np.ndarray
    params: DSALiverParams


# ---- geometry helpers --------------------------------------------------------------------------


@dataclass
class _Frame:
    """Frame size, scale and the padded canvas the canonical scene is drawn on."""

    height: int
    width: int
    scale: float
    pad: int

    @property
    def canvas(self) -> tuple[int, int]:
        return (self.height + 2 * self.pad, self.width + 2 * self.pad)

    @property
    def ref_width(self) -> float:
        return self.width / self.scale

    @property
    def ref_height(self) -> float:
        return self.height / self.scale

    def ref_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, Y) of every canvas pixel in 512 units."""
        rows = (np.arange(self.canvas[0], dtype=np.float32) - self.pad) / self.scale
        cols = (np.arange(self.canvas[1], dtype=np.float32) - self.pad) / self.scale
        Y, X = np.meshgrid(rows, cols, indexing="ij")
        return X, Y

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64) * self.scale + self.pad


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, count: int = 300) -> np.ndarray:
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def _arc_length(points: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def _box(frame: _Frame, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Canvas rows and columns (2-D index grids) of a square box around `centre` (canvas px)."""
    h, w = frame.canvas
    x0, x1 = max(int(math.floor(centre[0] - radius)), 0), min(int(math.ceil(centre[0] + radius)), w - 1)
    y0, y1 = max(int(math.floor(centre[1] - radius)), 0), min(int(math.ceil(centre[1] + radius)), h - 1)
    rr, cc = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    return rr, cc


def _logistic(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.clip(x, -60.0, 60.0)))


def _sparse(pattern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices, values) of the non-zero entries of a canvas pattern."""
    flat = pattern.ravel()
    index = np.flatnonzero(flat)
    return index.astype(np.int64), flat[index].astype(np.float32)


# ---- motion ------------------------------------------------------------------------------------


class _Motion:
    """Breathing, patient shift and peristalsis (see the module docstring); all in frame px."""

    def __init__(self, params: DSALiverParams, rng: np.random.Generator, frame: _Frame) -> None:
        self.params = params
        s = frame.scale
        a = math.radians(params.breathing_angle_deg)
        self.e_breath = np.array([math.sin(a), math.cos(a)])
        b = math.radians(params.shift_angle_deg)
        self.e_shift = np.array([math.cos(b), math.sin(b)])
        self.breath_amp = params.breathing_px * s
        self.shift_amp = params.shift_px * s
        duration = params.duration_s
        self.breath_on = params.breathing_onset * duration
        self.shift_at = params.shift_time * duration
        waves = []
        for _ in range(3):
            centre = np.array([rng.uniform(0.3, 0.95) * frame.ref_width, rng.uniform(0.55, 1.0) * frame.ref_height]) * s
            sigma = float(rng.uniform(40.0, 80.0)) * s
            angle = float(rng.uniform(0, 2 * math.pi))
            direction = np.array([math.cos(angle), math.sin(angle)])
            wavenumber = 2 * math.pi / (float(rng.uniform(70.0, 140.0)) * s)
            phase = float(rng.uniform(0, 2 * math.pi))
            omega = 2 * math.pi / (params.peristalsis_period_s * float(rng.uniform(0.8, 1.25)))
            amplitude = params.peristalsis_px * s * float(rng.uniform(0.6, 1.0))
            waves.append((centre, sigma, direction, wavenumber, phase, omega, amplitude))
        self.waves = waves

    def breathing(self, t: float) -> float:
        if self.breath_amp == 0.0 or t <= self.breath_on:
            return 0.0
        return self.breath_amp * 0.5 * (1.0 - math.cos(2 * math.pi * (t - self.breath_on) / self.params.breathing_period_s))

    def shift(self, t: float) -> float:
        if self.shift_amp == 0.0:
            return 0.0
        return self.shift_amp * float(_smoothstep(np.float64((t - self.shift_at) / self.params.shift_duration_s)))

    def translation(self, layer: str, t: float) -> np.ndarray:
        factor = {"liver": 1.0, "body": self.params.bone_breathing_factor, "bowel": BOWEL_BREATHING_FACTOR}[layer]
        return factor * self.breathing(t) * self.e_breath + self.shift(t) * self.e_shift

    def peristalsis(self, points: np.ndarray, t: float) -> np.ndarray:
        """Displacement (frame px) of canonical `points` (..., 2) at time t; zero at t = 0."""
        out = np.zeros(points.shape, np.float64)
        for centre, sigma, direction, k, phase, omega, amplitude in self.waves:
            if amplitude == 0.0:
                continue
            rel = points - centre
            envelope = np.exp(-(rel[..., 0] ** 2 + rel[..., 1] ** 2) / (2 * sigma * sigma))
            along = k * (rel @ direction) + phase
            wave = np.sin(omega * t - along) - np.sin(-along)
            out += (amplitude * envelope * wave)[..., None] * direction
        return out

    def bound(self) -> float:
        """An upper bound of any layer's displacement, frame px."""
        return self.breath_amp + self.shift_amp + 2.0 * sum(w[-1] for w in self.waves)

    def to_canonical(self, grid: np.ndarray, t: float, layer: str) -> np.ndarray:
        """Canonical positions (frame px) shown at frame pixels `grid` (H, W, 2) at time t."""
        shifted = grid - self.translation(layer, t).astype(np.float32)
        if layer != "bowel" or self.params.peristalsis_px == 0.0 or t == 0.0:
            return shifted.astype(np.float32)
        # Peristalsis is smooth (scales of 40 px and more): solve u = x - P(u) on a grid every
        # PERISTALSIS_STEP pixels and interpolate the displacement bilinearly.
        height, width = grid.shape[:2]
        step = PERISTALSIS_STEP
        ys = np.arange(0, height - 1 + step, step, dtype=np.float64)
        xs = np.arange(0, width - 1 + step, step, dtype=np.float64)
        coarse = np.stack(np.meshgrid(xs, ys), axis=-1)
        base = coarse - self.translation(layer, t)
        u = base.copy()
        for _ in range(8):
            u = base - self.peristalsis(u, t)
        displacement = (u - base).astype(np.float32)
        positions = grid / np.float32(step)
        return shifted + sample_at(displacement, positions, border="replicate")


# ---- time curves (u: fraction of the run) ---------------------------------------------------


def _ramp(x: np.ndarray | float) -> np.ndarray:
    return _smoothstep(np.asarray(x, np.float64))


@dataclass
class _Timing:
    params: DSALiverParams

    def arterial(self, arc: np.ndarray, u: float) -> np.ndarray:
        p = self.params
        rise = _ramp((u - p.injection_start - p.arterial_fill * arc) / 0.04)
        wash = _ramp((u - p.washout_start - 0.15 * arc) / 0.2)
        return (rise * (1.0 - 0.85 * wash)).astype(np.float32)

    def catheter(self, u: float) -> float:
        p = self.params
        return float(_ramp((u - p.injection_start) / 0.02) * (1.0 - _ramp((u - p.washout_start) / 0.05)))

    def parenchyma(self, u: float) -> float:
        p = self.params
        start = p.injection_start + 0.6 * p.arterial_fill
        return float(_ramp((u - start) / 0.3) * (1.0 - 0.35 * _ramp((u - 0.7) / 0.3)))


# ---- anatomy -----------------------------------------------------------------------------------


@dataclass
class _Liver:
    """The liver's outline (functions of x in 512 units) and its canonical mask."""

    dome_right: tuple[float, float, float]  # apex x, apex y, curvature
    dome_left: tuple[float, float, float]
    inferior: tuple[np.ndarray, np.ndarray]  # x samples, y of the lower edge
    tip_x: float
    mask: np.ndarray  # canvas bool

    @staticmethod
    def _parabola(dome: tuple[float, float, float], x: np.ndarray) -> np.ndarray:
        ax, ay, c = dome
        return ay + c * (x - ax) ** 2

    def diaphragm(self, x: np.ndarray) -> np.ndarray:
        """y of the diaphragm (the upper envelope of both domes) at x."""
        return np.minimum(self._parabola(self.dome_right, x), self._parabola(self.dome_left, x))

    def top(self, x: np.ndarray) -> np.ndarray:
        return self._parabola(self.dome_right, x)

    def bottom(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.inferior[0], self.inferior[1])


def _make_liver(rng: np.random.Generator, params: DSALiverParams, frame: _Frame) -> _Liver:
    Wr, Hr = frame.ref_width, frame.ref_height
    S = float(REFERENCE_SIZE)
    apex_x = float(rng.uniform(0.12, 0.3)) * Wr
    apex_y = params.diaphragm_height * Hr
    dome_right = (apex_x, apex_y, float(rng.uniform(0.45, 0.9)) / S)
    dome_left = (
        float(rng.uniform(0.74, 0.9)) * Wr, apex_y + float(rng.uniform(0.02, 0.1)) * Hr, float(rng.uniform(0.6, 1.2)) / S
    )
    tip_x = params.liver_extent * Wr
    x0 = -0.08 * Wr
    y0 = max(params.liver_depth * Hr, _Liver._parabola(dome_right, np.array(x0)) + 0.3 * Hr)
    y_tip = float(_Liver._parabola(dome_right, np.array(tip_x))) + float(rng.uniform(4.0, 12.0))
    xs = np.linspace(x0, tip_x, 200)
    frac = (xs - x0) / (tip_x - x0)
    sag = float(rng.uniform(-10.0, 30.0)) * np.sin(np.pi * frac)
    wobble = sum(
        float(rng.uniform(1.0, 5.0)) * np.sin(2 * np.pi * xs / float(rng.uniform(60.0, 160.0)) + float(rng.uniform(0, 6.3)))
        for _ in range(2)
    ) * np.sin(np.pi * frac)
    ys = y0 + (y_tip - y0) * frac + sag + wobble
    X, Y = frame.ref_grid()
    top = _Liver._parabola(dome_right, X)
    bottom = np.interp(X, xs, ys, left=ys[0], right=-1e6)
    inside = ((Y >= top + 1.5) & (Y <= bottom) & (X <= tip_x)).astype(np.float32)
    smooth = _blur(inside, 4.0 * frame.scale)
    return _Liver(dome_right, dome_left, (xs, ys), tip_x, smooth >= 0.5)


def _body_layer(rng: np.random.Generator, params: DSALiverParams, frame: _Frame) -> np.ndarray:
    """Spine, ribs, soft tissue and its texture (the body layer)."""
    scale = frame.scale
    X, Y = frame.ref_grid()
    Wr, Hr = frame.ref_width, frame.ref_height
    shape = frame.canvas
    lateral_fall = np.clip(((X - 0.55 * Wr) / (0.75 * Wr)) ** 2, 0.0, 1.0)
    att = (params.body_attenuation * (1.0 - 0.3 * lateral_fall)).astype(np.float32)

    # Lumbar spine: vertebral bodies with cortical shells and end plates, discs, pedicle
    # rings, transverse and spinous processes.
    tilt = math.radians(float(rng.uniform(-4, 4)))
    x_spine = params.spine_position * Wr + math.tan(tilt) * (Y - Hr / 2)
    u = X - x_spine
    half = float(rng.uniform(30, 40))
    body_h = float(rng.uniform(38, 50))
    gap = float(rng.uniform(9, 14))
    period = body_h + gap
    v = np.mod(Y - float(rng.uniform(0, period)), period)
    across = np.sqrt(np.clip(1.0 - (u / half) ** 2, 0.0, 1.0))
    lateral_cortex = _shell_profile(u, half, 4.0, marrow=0.6)
    in_body = _smoothstep(v / 3.0) * _smoothstep((body_h - v) / 3.0)
    endplate = np.exp(-(((v - 2.0) / 2.0) ** 2)) + np.exp(-(((v - body_h + 2.0) / 2.0) ** 2))
    spine = (0.6 * across + 0.4 * lateral_cortex) * in_body + 0.25 * endplate * across + 0.6 * across * (1.0 - in_body)
    for side in (-1.0, 1.0):
        pu, pv = (u - side * 0.6 * half) / 7.0, (v - 0.35 * body_h) / 9.0
        rho = np.sqrt(pu * pu + pv * pv)
        spine += 0.2 * np.exp(-(((rho - 1.0) / 0.3) ** 2))
        reach = float(rng.uniform(15.0, 30.0))
        lateral_u = side * u - 0.8 * half
        thickness = 5.0 * (1.0 - 0.6 * np.clip(lateral_u / (reach + 0.2 * half), 0.0, 1.0))
        transverse = np.exp(-(((v - 0.3 * body_h + 0.2 * lateral_u) / thickness) ** 2)) * _smoothstep(lateral_u / 6.0)
        spine += 0.3 * transverse * (1.0 - _smoothstep((side * u - half - reach) / 10.0))
    spine += 0.15 * np.exp(-((u / 6.0) ** 2 + ((v - 0.75 * body_h) / 10.0) ** 2))
    mediastinum = float(rng.uniform(0.2, 0.4))
    spine += mediastinum * np.exp(-((u / (2.2 * half)) ** 4))  # psoas and paraspinal muscles
    att += params.spine_attenuation * _blur(spine.astype(np.float32), 2.0 * scale)

    # Lower ribs: from the spine, laterally and downwards, fading out below the costal margin.
    ribs = np.zeros(shape, np.float32)
    lateral = np.abs(X - x_spine)
    costal = float(rng.uniform(0.4, 0.6)) * Hr
    spacing = float(rng.uniform(55.0, 75.0))
    slope0 = float(rng.uniform(0.25, 0.5))
    offset = float(rng.uniform(0, spacing))
    for k in range(int((Hr + 2 * Wr * 0.5) / spacing) + 3):
        y0 = -0.6 * Wr * slope0 + offset + k * spacing - spacing
        slope = slope0 + float(rng.normal(0, 0.04))
        bend = float(rng.uniform(0.1, 0.5)) / REFERENCE_SIZE
        halfwidth = float(rng.uniform(8.0, 12.0))
        centre = y0 + slope * lateral + bend * lateral * lateral
        d = (Y - centre) / np.sqrt(1.0 + (slope + 2 * bend * lateral) ** 2)
        near = np.abs(d) < halfwidth + 1
        if not near.any():
            continue
        profile = _shell_profile(d, halfwidth, float(rng.uniform(2.0, 3.5)), marrow=0.5)
        ribs += np.where(near, float(rng.uniform(0.7, 1.1)) * profile, 0.0).astype(np.float32)
    ribs *= (1.0 - _smoothstep((Y - costal) / 60.0)).astype(np.float32)
    att += params.rib_attenuation * _blur(ribs, 1.2 * scale)

    texture = 0.7 * _unit_noise(rng, shape, 45.0 * scale) + 0.45 * _unit_noise(rng, shape, 14.0 * scale)
    att += params.texture_amplitude * texture
    return att.astype(np.float32)


def _liver_layer_anatomy(
    rng: np.random.Generator, params: DSALiverParams, frame: _Frame, liver: _Liver, stomach: "_Stomach"
) -> np.ndarray:
    """Lung bases above the diaphragm, liver, right kidney, stomach gas (the liver layer)."""
    scale = frame.scale
    X, Y = frame.ref_grid()
    att = np.zeros(frame.canvas, np.float32)
    edge = float(rng.uniform(1.5, 3.0))
    depth = float(rng.uniform(15.0, 35.0))
    above = liver.diaphragm(X) - Y
    soft = edge * np.logaddexp(0.0, above / edge)  # smooth max(above, 0)
    lung = 1.0 - np.exp(-soft / depth)
    # The heart sits on the diaphragm between the domes: soft tissue instead of lung there.
    hx = float(rng.uniform(0.5, 0.62)) * frame.ref_width
    hy = float(liver.diaphragm(np.array(hx))) - float(rng.uniform(20.0, 50.0))
    heart = np.exp(-(((X - hx) / float(rng.uniform(60, 90))) ** 2 + ((Y - hy) / float(rng.uniform(40, 60))) ** 2))
    att -= params.lung_attenuation * (lung * (1.0 - 0.75 * heart)).astype(np.float32)

    att += params.liver_attenuation * _blur(liver.mask.astype(np.float32), 6.0 * scale)

    # Right kidney below the liver (it moves with breathing too).
    kx = float(rng.uniform(0.15, 0.32)) * frame.ref_width
    ky = float(liver.bottom(np.array(kx))) + float(rng.uniform(10.0, 40.0))
    angle = math.radians(float(rng.uniform(5, 25)))
    du, dv = X - kx, Y - ky
    p = (math.cos(angle) * du + math.sin(angle) * dv) / float(rng.uniform(32, 42))
    q = (-math.sin(angle) * du + math.cos(angle) * dv) / float(rng.uniform(50, 68))
    kidney = np.sqrt(np.clip(1.0 - p * p - q * q, 0.0, 1.0)).astype(np.float32)
    att += float(rng.uniform(0.05, 0.12)) * _blur(kidney, 3.0 * scale)

    # Gas in the stomach (supine: a soft pocket, no fluid level in a vertical beam).
    where = int(rng.integers(0, len(stomach.path) // 2))
    gx, gy = stomach.path[where]
    r = float(stomach.radii[where]) * float(rng.uniform(0.5, 0.9))
    rho = np.sqrt(((X - gx) / r) ** 2 + ((Y - gy) / (0.8 * r)) ** 2)
    pocket = _smoothstep((1.0 - rho) / 0.5) * np.clip(1.0 + 0.3 * _unit_noise(rng, frame.canvas, 6.0 * scale), 0.0, 2.0)
    att -= float(rng.uniform(0.1, 0.3)) * pocket.astype(np.float32)
    return att


def _random_path(rng: np.random.Generator, start: np.ndarray, heading: float, length: float, curl: float) -> np.ndarray:
    """A smooth curve of `length` (512 units, 1-unit steps) whose curvature varies like bowel."""
    s = np.arange(0.0, length + 1.0, 1.0)
    kappa = np.full_like(s, float(rng.normal(0.0, curl)))
    for _ in range(3):
        period, phase = float(rng.uniform(40, 120)), float(rng.uniform(0, 6.3))
        kappa += float(rng.uniform(0.3, 1.0)) * curl * np.sin(2 * np.pi * s / period + phase)
    theta = heading + np.cumsum(kappa)
    steps = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return start + np.concatenate([[np.zeros(2)], np.cumsum(steps[:-1], axis=0)])


def _tube_profile(
    frame: _Frame, path_ref: np.ndarray, radius_ref: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Canvas pixels near a tube: (flat index, fill fraction 0-1 across, arc along in 512
    units, distance from the axis over the local radius)."""
    scale = frame.scale
    points = frame.to_canvas(path_ref)
    radii = np.maximum(np.broadcast_to(np.asarray(radius_ref, np.float64), (len(points),)) * scale, 0.5)
    arc = _arc_length(path_ref)
    tube = Tube.from_arrays(points, radii, arc)
    pixels = tube.candidate_pixels(frame.canvas, 1.0)
    empty = np.zeros(0, np.float32)
    if len(pixels) == 0:
        return np.zeros(0, np.int64), empty, empty, empty
    dist, nearest = tube.query(pixels, 1.0)
    hit = nearest >= 0
    pixels, dist, nearest = pixels[hit], dist[hit], nearest[hit]
    radius = tube.radii[nearest]
    hit = dist < radius + 0.5
    pixels, dist, nearest, radius = pixels[hit], dist[hit], nearest[hit], radius[hit]
    fill = chord_pixel_average(dist, radius) / (2.0 * radius)
    flat = pixels[:, 0] * frame.canvas[1] + pixels[:, 1]
    across = (dist / radius).astype(np.float32)
    return flat.astype(np.int64), fill.astype(np.float32), tube.arc[nearest].astype(np.float32), across


def _blotches(rng: np.random.Generator, arc: np.ndarray) -> np.ndarray:
    """Patchy filling along a bowel loop: 0-1 in soft blotches 15-60 px long."""
    wave = np.full(arc.shape, float(rng.uniform(0.2, 0.5)))
    for _ in range(3):
        wave += float(rng.uniform(0.25, 0.5)) * np.sin(2 * np.pi * arc / float(rng.uniform(30, 90)) + float(rng.uniform(0, 6.3)))
    return _smoothstep((wave - 0.1) / 0.8)


@dataclass
class _Blush:
    """A static pattern on one layer (flat canvas indices and values) with its time curve."""

    layer: str
    index: np.ndarray
    values: np.ndarray
    start: float
    rise: float
    fade_at: float = 2.0  # fraction of the run; > 1 = never fades
    fade: float = 0.15

    def level(self, u: float) -> float:
        return float(_ramp((u - self.start) / self.rise) * (1.0 - _ramp((u - self.fade_at) / self.fade)))


def _bowel(
    rng: np.random.Generator, params: DSALiverParams, frame: _Frame, liver: _Liver
) -> tuple[np.ndarray, list[_Blush], list[str]]:
    """Bowel layer anatomy (gas, residual oral contrast) and the bowel loops' mucosal blush."""
    scale = frame.scale
    Wr, Hr = frame.ref_width, frame.ref_height
    X, Y = frame.ref_grid()
    att = np.zeros(frame.canvas, np.float32)
    mottle = np.clip(1.0 + 0.5 * _unit_noise(rng, frame.canvas, 3.0 * scale), 0.0, 2.0)
    for _ in range(int(rng.integers(4, 10))):
        cx, cy = float(rng.uniform(0.05, 1.0)) * Wr, float(rng.uniform(0.55, 1.0)) * Hr
        rx, ry = float(rng.uniform(8, 30)), float(rng.uniform(6, 22))
        angle = float(rng.uniform(0, math.pi))
        du, dv = X - cx, Y - cy
        p = (math.cos(angle) * du + math.sin(angle) * dv) / rx
        q = (-math.sin(angle) * du + math.cos(angle) * dv) / ry
        rho = np.sqrt(p * p + q * q)
        near = rho < 1.3
        if near.any():
            blob = _smoothstep((1.0 - rho[near]) / 0.35) * mottle[near]
            att[near] -= params.bowel_gas * float(rng.uniform(0.5, 1.0)) * blob.astype(np.float32)

    blushes: list[_Blush] = []
    kinds: list[str] = []
    p = params
    for k in range(params.bowel_loops):
        if k == 0:
            # The hepatic flexure / duodenum: across the liver's lower edge.
            x = float(rng.uniform(0.1, 0.4)) * Wr
            start = np.array([x, float(liver.bottom(np.array(x))) + float(rng.uniform(-25.0, 5.0))])
            heading = float(rng.uniform(-0.5, 0.5)) + (0.0 if rng.uniform() < 0.5 else math.pi)
        else:
            start = np.array([float(rng.uniform(0.1, 0.95)) * Wr, float(rng.uniform(0.6, 0.95)) * Hr])
            heading = float(rng.uniform(0, 2 * math.pi))
        path = _random_path(rng, start, heading, float(rng.uniform(60, 180)), float(rng.uniform(0.01, 0.03)))
        along = _arc_length(path)
        haustra = 1.0 + 0.2 * np.sin(2 * np.pi * along / float(rng.uniform(12.0, 25.0)) + float(rng.uniform(0, 6.3)))
        radius = float(rng.uniform(4.0, 9.0)) * haustra
        flat, fill, arc, _ = _tube_profile(frame, path, radius)
        if len(flat) == 0:
            continue
        blotch = _blotches(rng, arc)
        rim = 0.6 + 0.4 * (1.0 - fill)  # mucosa: a little stronger towards the wall
        pattern = np.sqrt(fill) * rim * blotch * mottle.ravel()[flat]
        keep = pattern > 1e-4
        flat, pattern = flat[keep], pattern[keep]
        if rng.uniform() < 0.4:
            kinds.append("residual")  # oral contrast from an earlier study: anatomy
            np.add.at(att.ravel(), flat, float(rng.uniform(0.15, 0.4)) * pattern.astype(np.float32))
        else:
            kinds.append("blush")
            start_u = p.injection_start + p.arterial_fill * float(rng.uniform(0.5, 1.2)) + float(rng.uniform(0.05, 0.2))
            values = (p.bowel_blush * float(rng.uniform(0.7, 1.3)) * pattern).astype(np.float32)
            order = np.argsort(flat, kind="stable")
            flat, values = flat[order], values[order]
            unique, first = np.unique(flat, return_index=True)
            summed = np.add.reduceat(values, first)
            blushes.append(_Blush("bowel", unique, summed.astype(np.float32), start_u, float(rng.uniform(0.2, 0.35))))
    return att, blushes, kinds


@dataclass
class _Stomach:
    path: np.ndarray  # centreline from the fundus (under the left dome) to the antrum, 512 units
    radii: np.ndarray


def _stomach_geometry(rng: np.random.Generator, frame: _Frame, liver: _Liver) -> _Stomach:
    """A J-shaped stomach: from the fundus under the left dome down and round to the left."""
    x = float(rng.uniform(0.8, 0.92)) * frame.ref_width
    r0 = float(rng.uniform(30.0, 45.0))
    start = np.array([x, float(liver.diaphragm(np.array(x))) + r0 + float(rng.uniform(2.0, 12.0))])
    length = float(rng.uniform(160.0, 260.0))
    turn = math.radians(float(rng.uniform(80.0, 130.0)))
    s = np.arange(0.0, length + 1.0, 1.0)
    theta = math.radians(float(rng.uniform(70.0, 100.0))) + turn * _smoothstep(s / length * 1.3)
    steps = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    path = start + np.concatenate([[np.zeros(2)], np.cumsum(steps[:-1], axis=0)])
    radii = r0 + (float(rng.uniform(12.0, 20.0)) - r0) * _smoothstep(s / length)
    return _Stomach(path, radii)


def _stomach_blush(rng: np.random.Generator, params: DSALiverParams, frame: _Frame, stomach: _Stomach) -> _Blush:
    """Mucosal blush of the stomach: the wall and the rugal folds along it, mottled (liver layer)."""
    flat, fill, arc, across = _tube_profile(frame, stomach.path, stomach.radii)
    wall = np.exp(-(((across - 0.85) / 0.12) ** 2))
    period = float(rng.uniform(0.15, 0.25))
    wiggle = 0.05 * np.sin(2 * np.pi * arc / float(rng.uniform(25.0, 50.0))) + 0.04 * _unit_noise(
        rng, frame.canvas, 6.0 * frame.scale).ravel()[flat]
    folds = 0.5 * (1.0 + np.sin(2 * np.pi * (across + wiggle) / period))
    mottle = np.clip(1.0 + 0.5 * _unit_noise(rng, frame.canvas, 4.0 * frame.scale), 0.0, 2.0).ravel()[flat]
    pattern = (wall + 0.3 * folds * (across < 0.85)) * mottle * np.sqrt(fill)
    keep = pattern > 1e-4
    order = np.argsort(flat[keep], kind="stable")
    flat, values = flat[keep][order], (params.stomach_blush * pattern[keep][order]).astype(np.float32)
    unique, first = np.unique(flat, return_index=True)
    values = np.maximum.reduceat(values, first)
    timing = params.injection_start + params.arterial_fill + float(rng.uniform(0.0, 0.1))
    return _Blush("liver", unique, values.astype(np.float32), timing, 0.3)


# ---- vessels -----------------------------------------------------------------------------------


def _tube_entries(
    segments: list[Segment], frame: _Frame, catheter: Tube | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse (flat canvas index, chord in 512 px, arc) of every segment (canvas px), where a
    branch overlapping its parent or an earlier sibling from the same point keeps only the
    excess chord (the X-ray crosses the union of the lumens); roots overlap the catheter."""
    canvas = frame.canvas
    reach = 1.1
    tubes: list[Tube] = []
    index, weight, arcs = [], [], []
    for number, seg in enumerate(segments):
        tube = Tube.from_arrays(seg.points, seg.radii, seg.arc)
        tubes.append(tube)
        pixels = tube.candidate_pixels(canvas, reach)
        if len(pixels) == 0:
            continue
        dist, nearest = tube.query(pixels, reach)
        hit = nearest >= 0
        pixels, dist, nearest = pixels[hit], dist[hit], nearest[hit]
        chord = chord_pixel_average(dist, tube.radii[nearest])
        overlap = np.zeros_like(chord)
        refs: list[Tube] = []
        if seg.parent >= 0:
            refs.append(tubes[seg.parent])
            refs.extend(
                tubes[j] for j in range(number)
                if j != seg.parent and segments[j].parent == seg.parent and segments[j].parent_point == seg.parent_point
            )
        elif catheter is not None:
            refs.append(catheter)
        for ref in refs:
            d_ref, n_ref = ref.query(pixels, reach)
            ok = n_ref >= 0
            overlap[ok] = np.maximum(overlap[ok], chord_pixel_average(d_ref[ok], ref.radii[n_ref[ok]]))
        chord = np.maximum(chord - overlap, 0.0)
        keep = chord > 1e-4
        index.append((pixels[keep, 0] * canvas[1] + pixels[keep, 1]).astype(np.int64))
        weight.append((chord[keep] / frame.scale).astype(np.float32))
        arcs.append(tube.arc[nearest[keep]].astype(np.float32))
    if not index:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(index), np.concatenate(weight), np.concatenate(arcs)


def _region_of(mask: np.ndarray, frame: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """Centre and semi-axes (512 units) of the ellipse with the moments of a canvas mask."""
    rows, cols = np.nonzero(mask)
    xy = (np.stack([cols, rows], axis=1).astype(np.float64) - frame.pad) / frame.scale
    return xy.mean(axis=0), 2.0 * xy.std(axis=0) + 1.0


def _inside(mask: np.ndarray, frame: _Frame, points_ref: np.ndarray) -> np.ndarray:
    pix = np.rint(frame.to_canvas(points_ref)).astype(np.int64)
    h, w = mask.shape
    ok = (pix[:, 0] >= 0) & (pix[:, 0] < w) & (pix[:, 1] >= 0) & (pix[:, 1] < h)
    out = np.zeros(len(pix), bool)
    out[ok] = mask[pix[ok, 1], pix[ok, 0]]
    return out


def _clip_to(segments: list[Segment], first: int, inside: Any) -> list[Segment]:
    """Cut segments `first`.. where they first leave `inside` (a points -> bool function), and
    drop the branches that left the cut part; earlier segments are kept as they are."""
    kept: list[Segment] = []
    new_index: dict[int, int] = {}
    for number, seg in enumerate(segments):
        parent = seg.parent
        if parent >= 0 and parent not in new_index:
            continue
        if parent >= 0 and seg.parent_point >= len(kept[new_index[parent]].points):
            continue
        points, radii, arc = seg.points, seg.radii, seg.arc
        if number >= first:
            outside = ~inside(points)
            outside[0] = False
            end = int(np.argmax(outside)) if outside.any() else len(points)
            if end < 2:
                continue
            points, radii, arc = points[:end], radii[:end], arc[:end]
        new_index[number] = len(kept)
        kept.append(Segment(points, radii, arc, new_index.get(parent, -1), seg.parent_point, seg.generation))
    return kept


def _append(segments: list[Segment], grown: list[Segment], parent: int, parent_point: int) -> None:
    """Append a subtree grown separately, its root hanging from segments[parent]."""
    offset = len(segments)
    for seg in grown:
        if seg.parent < 0:
            segments.append(Segment(seg.points, seg.radii, seg.arc, parent, parent_point, seg.generation))
        else:
            segments.append(Segment(seg.points, seg.radii, seg.arc, seg.parent + offset, seg.parent_point, seg.generation))


@dataclass
class _Arteries:
    segments: list[Segment]  # 512 units
    catheter: np.ndarray  # catheter centreline, 512 units
    hepatic_first: int  # segments from here on are hepatic branches (feeders attach there)
    hepatic_max_arc: float
    hub: np.ndarray  # the hepatic bifurcation


def _grow_arteries(rng: np.random.Generator, params: DSALiverParams, frame: _Frame, liver: _Liver) -> _Arteries:
    Wr, Hr = frame.ref_width, frame.ref_height
    deg = math.radians
    x_spine = params.spine_position * Wr
    x_aorta = x_spine + float(rng.uniform(8.0, 18.0))
    # Hepatic bifurcation at the porta: inside the liver, above its lower edge.
    hub_x = float(rng.uniform(0.3, 0.42)) * Wr
    hub_x = min(hub_x, 0.75 * liver.tip_x)
    top, bottom = float(liver.top(np.array(hub_x))), float(liver.bottom(np.array(hub_x)))
    hub = np.array([hub_x, bottom - float(rng.uniform(0.15, 0.3)) * max(bottom - top, 20.0)])
    coeliac = np.array([x_aorta - 4.0, max(hub[1] + float(rng.uniform(25.0, 60.0)), 0.45 * Hr)])
    r_pha = params.hepatic_radius
    r_gda = r_pha * float(rng.uniform(0.45, 0.6))
    r_cha = float(np.cbrt(r_pha**3 + r_gda**3))
    bounds = (-0.1 * Wr, -0.1 * Hr, 1.1 * Wr, 1.1 * Hr)
    far = ((0.5 * Wr, 0.5 * Hr), (10.0 * Wr, 10.0 * Hr))  # a region no vessel leaves: no steering

    def grower(stream: np.random.Generator, region: tuple, tortuosity: float, spacing: float, taper: float,
                asymmetry: float = 0.55) -> TreeGrower:
        return TreeGrower(
            stream, min_radius=params.min_radius, taper_length=taper, branch_spacing=spacing,
            branch_asymmetry=asymmetry, tortuosity=tortuosity, region_centre=region[0], region_radii=region[1], bounds=bounds,
        )

    # Common hepatic artery from the catheter tip (hepatic) or the coeliac trunk (coeliac).
    cha_curve = _bezier(
        coeliac, coeliac + np.array([-0.3, -0.4]) * np.linalg.norm(hub - coeliac) * float(rng.uniform(0.4, 0.8)),
        hub + np.array([0.6, 0.5]) * float(rng.uniform(10.0, 25.0)), hub, 200,
    )
    # A gentle wave along it (the common hepatic artery is rarely straight).
    along = _arc_length(cha_curve)
    tangent = np.gradient(cha_curve, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-12
    wave = np.zeros_like(along)
    for _ in range(2):
        amplitude, period, phase = float(rng.uniform(1.0, 3.0)), float(rng.uniform(40.0, 90.0)), float(rng.uniform(0, 6.3))
        wave += amplitude * np.sin(2 * np.pi * along / period + phase)
    wave *= np.sin(np.pi * along / along[-1])
    cha_curve = cha_curve + wave[:, None] * np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    tip_at = int(len(cha_curve) * float(rng.uniform(0.25, 0.5))) if params.injection_site == "hepatic" else 0
    root_points = cha_curve[tip_at:]
    root_arc = _arc_length(root_points)
    segments = [Segment(root_points, np.full(len(root_points), r_cha), root_arc, -1, -1, 0)]
    end_heading = math.atan2(*(root_points[-1] - root_points[-8])[::-1])
    hub_arc = float(root_arc[-1])
    # Catheter: from below the frame up the aorta to the coeliac trunk, then (hepatic) along
    # the common hepatic artery to its tip.
    bottom_y = Hr + 0.1 * Hr + 30.0
    aorta = _bezier(
        np.array([x_aorta + float(rng.uniform(-4, 4)), bottom_y]), np.array([x_aorta, 0.5 * (bottom_y + coeliac[1])]),
        coeliac + np.array([4.0, 30.0]), coeliac, 200,
    )
    catheter = np.concatenate([aorta, cha_curve[1 : tip_at + 1]]) if tip_at > 0 else aorta

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(rng.integers(2**31))).spawn(4)]
    # GDA: down from the hub towards the duodenum and pancreatic head.
    gda_job = _Job(start=root_points[-1].copy(), heading=deg(float(rng.uniform(70, 110))), radius=r_gda, arc=hub_arc,
                   parent=-1, parent_point=-1, generation=1, max_length=float(rng.uniform(70, 140)))
    gda = grower(streams[0], far, params.tortuosity * 0.7, params.branch_spacing * 2.0, 100.0).grow([gda_job])
    _append(segments, gda, 0, len(root_points) - 1)
    if params.injection_site == "celiac":
        # Towards the spleen: right and up, curving upwards as it goes.
        splenic_job = _Job(start=coeliac.copy(), heading=deg(float(rng.uniform(-40, -10))),
                           radius=r_cha * float(rng.uniform(0.9, 1.1)), arc=0.0, parent=-1, parent_point=-1, generation=1,
                           bias=-1.0 / float(rng.uniform(250, 400)), bias_budget=deg(40))
        splenic = grower(streams[1], far, 1.0 + 0.8 * params.tortuosity, params.branch_spacing * 2.5, 200.0).grow([splenic_job])
        _append(segments, splenic, -1, -1)
        gastric_job = _Job(start=coeliac.copy(), heading=deg(float(rng.uniform(-110, -70))), radius=float(rng.uniform(0.9, 1.3)),
                           arc=0.0, parent=-1, parent_point=-1, generation=1, max_length=float(rng.uniform(80, 150)))
        gastric = grower(streams[2], far, 0.8 + params.tortuosity, params.branch_spacing * 1.5, 120.0).grow([gastric_job])
        _append(segments, gastric, -1, -1)
    # Proper hepatic artery, splitting into the right and left hepatic arteries.
    share = float(rng.uniform(0.5, 0.65))
    r_right, r_left = float(np.cbrt(share) * r_pha), float(np.cbrt(1.0 - share) * r_pha)
    blend = np.array([math.cos(end_heading), math.sin(end_heading)]) + np.array([math.cos(deg(-100.0)), math.sin(deg(-100.0))])
    pha_heading = math.atan2(blend[1], blend[0])
    right = _Job(start=np.zeros(2), heading=deg(float(rng.uniform(-165, -130))), radius=r_right, arc=0.0,
                 parent=-1, parent_point=-1, generation=1)
    left = _Job(start=np.zeros(2), heading=deg(float(rng.uniform(-75, -35))), radius=r_left, arc=0.0,
                parent=-1, parent_point=-1, generation=1)
    pha = _Job(start=root_points[-1].copy(), heading=pha_heading, radius=r_pha, arc=hub_arc, parent=-1, parent_point=-1,
               generation=0, max_length=float(rng.uniform(12.0, 25.0)), branching=False, children=[right, left])
    region = _region_of(liver.mask, frame)
    hepatic_first = len(segments)
    # Hepatic arteries split more evenly than coronaries and taper slowly: a dense tree.
    taper = float(rng.uniform(200.0, 260.0))
    hepatic = grower(streams[3], (tuple(region[0]), tuple(region[1] * 1.1)), params.tortuosity, params.branch_spacing, taper,
                     asymmetry=float(rng.uniform(0.7, 0.85))).grow([pha])
    _append(segments, hepatic, 0, len(root_points) - 1)
    # The hepatic branches stop at the liver's edge.
    grown = cv2.dilate(liver.mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, int(round(2 * frame.scale))))
    grown_mask = grown.astype(bool)
    segments = _clip_to(segments, hepatic_first + 1, lambda pts: _inside(grown_mask, frame, pts))
    hepatic_max = max(float(s.arc.max()) for s in segments[hepatic_first:]) if len(segments) > hepatic_first else hub_arc + 1.0
    return _Arteries(segments, catheter, hepatic_first, hepatic_max, hub)


def _veins(rng: np.random.Generator, frame: _Frame, liver: _Liver, eligible: np.ndarray) -> list[Segment]:
    """2-3 hepatic veins with tributaries, from the liver's periphery to the IVC at the top of
    the liver; `arc` holds the filling order 0 (periphery) .. 1 (IVC)."""
    ivc_x = min(float(rng.uniform(0.4, 0.55)) * frame.ref_width, 0.85 * liver.tip_x)
    ivc = np.array([ivc_x, float(liver.top(np.array(ivc_x))) + float(rng.uniform(8.0, 20.0))])
    rows, cols = np.nonzero(eligible)
    if len(rows) == 0:
        return []
    candidates = (np.stack([cols, rows], axis=1).astype(np.float64) - frame.pad) / frame.scale
    distance = np.linalg.norm(candidates - ivc, axis=1)
    pool = candidates[(distance > 70.0) & (distance < 170.0)]
    if len(pool) == 0:
        return []
    out: list[Segment] = []
    for _ in range(int(rng.integers(2, 4))):
        start = pool[int(rng.integers(len(pool)))]
        span = ivc - start
        normal = np.array([-span[1], span[0]]) / (np.linalg.norm(span) + 1e-9)
        bend = float(rng.uniform(-0.2, 0.2)) * np.linalg.norm(span)
        path = _bezier(start, start + 0.33 * span + bend * normal, start + 0.66 * span + 0.5 * bend * normal, ivc, 200)
        frac = np.linspace(0.0, 1.0, len(path))
        wave = float(rng.uniform(2.0, 5.0)) * np.sin(2 * np.pi * frac * float(rng.uniform(1.0, 2.5)) + float(rng.uniform(0, 6.3)))
        path = path + (wave * np.sin(np.pi * frac))[:, None] * normal
        radii = float(rng.uniform(0.8, 1.2)) + frac * float(rng.uniform(0.8, 1.6))
        main = len(out)
        out.append(Segment(path, radii, frac, -1, -1, 0))
        for _ in range(int(rng.integers(1, 4))):
            join = int(rng.uniform(0.25, 0.7) * len(path))
            tangent = path[min(join + 1, len(path) - 1)] - path[max(join - 1, 0)]
            tangent /= np.linalg.norm(tangent) + 1e-9
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            angle = math.radians(float(rng.uniform(30, 60)))
            direction = -tangent * math.cos(angle) + side * np.array([-tangent[1], tangent[0]]) * math.sin(angle)
            length = float(rng.uniform(30.0, 70.0))
            far_end = path[join] + direction * length
            trib = _bezier(far_end, far_end - direction * 0.4 * length, path[join] + direction * 0.3 * length, path[join], 80)
            radii_t = np.linspace(float(rng.uniform(0.7, 1.0)), float(radii[join]) * 0.7, len(trib))
            out.append(Segment(trib, radii_t, float(frac[join]) * np.linspace(0.3, 1.0, len(trib)), main, join, 1))
    return out


# ---- tumours -----------------------------------------------------------------------------------


@dataclass
class _Tumour:
    klass: str
    index: np.ndarray  # flat canvas indices of its box
    rho: np.ndarray  # normalised radius: the mask is rho < 1 (exactly `area` pixels)
    mask_index: np.ndarray  # flat canvas indices of the mask
    amplitude: float
    start: float
    growth: float
    edge_final: float
    centre_ref: np.ndarray
    radius_ref: float
    texture: np.ndarray  # multiplies the stain over the box (rich: mottled; poor: 1)
    feeder_radius: float = 0.0

    def stain(self, u: float) -> np.ndarray:
        """Iodine attenuation over the box at run fraction u (see the module docstring)."""
        s = float(_ramp((u - self.start) / self.growth))
        if s <= 0.0:
            return np.zeros(self.rho.shape, np.float32)
        rho = self.rho
        if self.klass == "rich":
            fill = 0.3 + 0.7 * float(_ramp((u - self.start) / (0.8 * self.growth)))
            edge = self.edge_final + 0.35 * (1.0 - s)
            shape = np.clip(1.0 - (rho / 1.25) ** 2, 0.0, 1.0) ** 0.4
        else:
            fill = 0.6 + 0.4 * s
            edge = self.edge_final
            shape = np.exp(-(rho**2) / (2 * 0.6**2)) * (1.0 - _smoothstep((rho - 1.1) / 0.6))
        return (self.amplitude * s * shape * self.texture * _logistic((fill - rho) / edge)).astype(np.float32)


def _trunk_distance(arteries: _Arteries, frame: _Frame) -> np.ndarray:
    """Distance (canvas px) from every canvas pixel to the nearest artery of radius >= 0.8 px."""
    trunks = np.zeros(frame.canvas, np.uint8)
    for seg in arteries.segments:
        wide = seg.radii >= 0.8
        if wide.sum() < 2:
            continue
        points = np.rint(frame.to_canvas(seg.points[wide]) * 4).astype(np.int32)  # 2 bits of sub-pixel
        thickness = max(1, int(round(2 * float(seg.radii[wide].max()) * frame.scale)))
        cv2.polylines(trunks, [points.reshape(-1, 1, 2)], False, 1, thickness=thickness, shift=2)
    return cv2.distanceTransform((1 - trunks).astype(np.uint8), cv2.DIST_L2, 5)


def _place_tumours(
    rng: np.random.Generator, params: DSALiverParams, frame: _Frame, liver: _Liver, margin_px: float,
    trunk_distance: np.ndarray,
) -> list[_Tumour]:
    """Tumour outlines in the liver, each exactly round(area * scale^2) (>= 1) pixels, clear of
    the liver's edge, of the frame's border by the largest motion, of the arterial trunks
    (so that a tumour's own contrast can be measured) and of each other."""
    scale = frame.scale
    canvas = frame.canvas
    inside = liver.mask.astype(np.uint8)
    distance = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    rows, cols = np.mgrid[0 : canvas[0], 0 : canvas[1]]
    classes = ["rich"] * params.num_rich + ["poor"] * params.num_poor
    order = rng.permutation(len(classes))
    placed: list[tuple[np.ndarray, float, float]] = []
    occupied = np.zeros(canvas, bool)
    tumours: list[_Tumour] = []
    p = params
    for k in order:
        klass = classes[k]
        area_ref = float(np.exp(rng.uniform(np.log(p.tumour_min_area), np.log(p.tumour_max_area))))
        count = max(1, int(round(area_ref * scale * scale)))
        aspect = float(rng.uniform(1.0, 1.6))
        a = math.sqrt(count / math.pi * aspect)
        b = math.sqrt(count / math.pi / aspect)
        harmonics = [(j, float(rng.uniform(0.0, 0.08)), float(rng.uniform(0, 2 * math.pi))) for j in (2, 3, 4)]
        lobe = sum(h[1] for h in harmonics)
        outline = a * (1.0 + lobe) + 1.5  # px from the centre the mask can reach
        support = 1.8 * outline + 2.0  # ... and the blush
        angle = float(rng.uniform(0, math.pi))
        box = support + 1.0

        def rasterise(centre: np.ndarray) -> tuple:
            rr, cc = _box(frame, centre, box)
            dx, dy = cc - centre[0], rr - centre[1]
            pu = (math.cos(angle) * dx + math.sin(angle) * dy) / a
            pv = (-math.sin(angle) * dx + math.cos(angle) * dy) / b
            theta = np.arctan2(pv, pu)
            radial = 1.0 + sum(amp * np.cos(j * theta + ph) for j, amp, ph in harmonics)
            rho = (np.sqrt(pu * pu + pv * pv) / radial).ravel()
            index = (rr * canvas[1] + cc).ravel().astype(np.int64)
            ranked = np.argsort(rho, kind="stable")
            mask_index = np.sort(index[ranked[:count]])
            edge = rho[ranked[count - 1]] if count >= len(rho) else 0.5 * (rho[ranked[count - 1]] + rho[ranked[count]])
            return rr, index, rho / max(edge, 1e-6), mask_index

        def fits(mask_index: np.ndarray) -> bool:
            mr, mc = mask_index // canvas[1], mask_index % canvas[1]
            return bool(liver.mask.ravel()[mask_index].all() and not occupied.ravel()[mask_index].any()
                        and mc.min() >= frame.pad + margin_px and mc.max() <= frame.pad + frame.width - 1 - margin_px
                        and mr.min() >= frame.pad + margin_px and mr.max() <= frame.pad + frame.height - 1 - margin_px)

        # Where the liver is crowded (many tumours in a small frame) the rules relax in turn:
        # a tumour may touch an arterial trunk, then blushes may overlap, then outlines may come
        # as close as their pixels allow (checked pixel by pixel; masks never overlap).
        found = None
        for level in range(4):
            reach = outline if level < 3 else a * (1.0 + lobe) + 0.5
            need = (distance >= reach + (1.5 if level < 3 else 0.5)) & (cols >= frame.pad + margin_px + reach) & (
                cols <= frame.pad + frame.width - 1 - margin_px - reach) & (
                rows >= frame.pad + margin_px + reach) & (rows <= frame.pad + frame.height - 1 - margin_px - reach)
            if level == 0:
                need &= trunk_distance >= outline + 1.5
            if level < 3:
                for centre, other_support, other_outline in placed:
                    gap = support + other_support if level < 2 else outline + other_outline
                    need &= (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 >= gap**2
            choices = np.flatnonzero(need)
            for pick in rng.permutation(choices)[:200]:
                centre = np.array([pick % canvas[1], pick // canvas[1]], np.float64) + rng.uniform(-0.4, 0.4, 2)
                candidate = rasterise(centre)
                if fits(candidate[3]):
                    found = centre, candidate
                    break
            if found is not None:
                break
        if found is None:
            raise InputError(
                f"cannot place {len(classes)} tumours in the liver at {frame.width}x{frame.height}: "
                "use a larger frame, fewer tumours or smaller tumour_max_area"
            )
        centre, (rr, index, rho, mask_index) = found
        occupied.ravel()[mask_index] = True
        start = p.injection_start + p.arterial_fill  # refined once the feeder is known
        if klass == "rich":
            amplitude = p.rich_attenuation * float(rng.uniform(0.8, 1.2)) * (0.75 + 0.25 * math.sqrt(area_ref / 220.0))
            growth = p.tumour_growth * float(rng.uniform(0.85, 1.15))
            edge_final = float(rng.uniform(0.03, 0.07))
        else:
            amplitude = p.poor_attenuation * float(rng.uniform(0.8, 1.2))
            growth = 1.4 * p.tumour_growth * float(rng.uniform(0.85, 1.15))
            edge_final = float(rng.uniform(0.3, 0.45))
        centre_ref = (centre - frame.pad) / scale
        if klass == "rich":
            texture = np.clip(1.0 + 0.2 * _unit_noise(rng, rr.shape, max(1.5 * scale, 0.7)), 0.5, 1.5).ravel()
        else:
            texture = np.ones(rho.shape, np.float32)
        tumours.append(_Tumour(klass, index, rho.astype(np.float32), mask_index, amplitude, start, growth, edge_final,
                               centre_ref, a / scale, texture.astype(np.float32)))
        placed.append((centre, support, outline))
    # Ids in reading order (top to bottom, left to right) so that they do not depend on draws.
    tumours.sort(key=lambda t: (round(float(t.centre_ref[1]), 3), round(float(t.centre_ref[0]), 3)))
    return tumours


def _feeders(
    rng: np.random.Generator, params: DSALiverParams, arteries: _Arteries, tumours: list[_Tumour]
) -> None:
    """Append to `arteries` a feeding branch per tumour from the nearest hepatic artery (and
    tumour vessels for rich ones), and time each blush from its feeder's filling."""
    segments = arteries.segments
    points, owner, where = [], [], []
    for number in range(arteries.hepatic_first, len(segments)):
        seg = segments[number]
        ok = seg.radii >= max(1.3 * params.min_radius, 0.6)
        points.append(seg.points[ok])
        owner.append(np.full(int(ok.sum()), number))
        where.append(np.flatnonzero(ok))
    if not points or sum(len(p) for p in points) == 0:
        seg = segments[0]
        points, owner, where = [seg.points], [np.zeros(len(seg.points), int)], [np.arange(len(seg.points))]
    pts, own, idx = np.concatenate(points), np.concatenate(owner), np.concatenate(where)
    radius_at = np.array([segments[o].radii[i] for o, i in zip(own.tolist(), idx.tolist())], np.float64)
    p = params
    for tumour in tumours:
        wanted = float(rng.uniform(0.8, 1.2)) if tumour.klass == "rich" else float(rng.uniform(0.4, 0.6))
        gap = np.linalg.norm(pts - tumour.centre_ref, axis=1)
        usable = gap >= tumour.radius_ref + 5.0
        wide = usable & (radius_at >= wanted / 0.85)
        if wide.any():
            usable = wide
        choice = int(np.argmin(np.where(usable, gap, np.inf))) if usable.any() else int(np.argmax(gap))
        parent, at = int(own[choice]), int(idx[choice])
        start = segments[parent].points[at]
        span = tumour.centre_ref - start
        length = float(np.linalg.norm(span))
        normal = np.array([-span[1], span[0]]) / (length + 1e-9)
        bend = float(rng.uniform(-0.35, 0.35)) * length
        control = (start + 0.3 * span + bend * normal, start + 0.7 * span + 0.4 * bend * normal)
        path = _bezier(start, *control, tumour.centre_ref, 100)
        r_parent = float(segments[parent].radii[at])
        r0 = min(0.85 * r_parent, wanted)
        radii = np.linspace(r0, 0.75 * r0, len(path))
        arc = float(segments[parent].arc[at]) + _arc_length(path)
        feeder = len(segments)
        segments.append(Segment(path, radii, arc, parent, at, segments[parent].generation + 1))
        tumour.feeder_radius = r0
        filled = p.injection_start + p.arterial_fill * min(float(arc[-1]) / arteries.hepatic_max_arc, 1.5)
        if tumour.klass == "rich":
            tumour.start = filled + 0.02
            tumour.growth = max(min(tumour.growth, RICH_STABLE_BY - tumour.start), 0.05)
            for _ in range(int(rng.integers(3, 7))):  # tumour vessels: a small tortuous tangle
                heading = float(rng.uniform(0, 2 * math.pi))
                n = max(int(tumour.radius_ref * float(rng.uniform(1.0, 1.8)) / 0.5), 3)
                turn = np.cumsum(rng.normal(0.0, 0.35, n))
                steps = 0.5 * np.stack([np.cos(heading + turn), np.sin(heading + turn)], axis=1)
                tangle = tumour.centre_ref + np.concatenate([[np.zeros(2)], np.cumsum(steps[:-1], axis=0)])
                rad = np.linspace(float(rng.uniform(0.6, 0.9)), 0.5, len(tangle))
                generation = segments[feeder].generation + 1
                segments.append(Segment(tangle, rad, arc[-1] + _arc_length(tangle), feeder, len(path) - 1, generation))
        else:
            tumour.start = filled + float(rng.uniform(0.05, 0.15))
            tumour.growth = max(min(tumour.growth, 0.95 - tumour.start), 0.05)


# ---- the scene ---------------------------------------------------------------------------------


@dataclass
class _Scene:
    anatomy: dict[str, np.ndarray]
    liver: np.ndarray  # canvas uint8
    instances: np.ndarray  # canvas uint8
    art_index: np.ndarray
    art_weight: np.ndarray
    art_arc: np.ndarray
    lumen_index: np.ndarray
    lumen_weight: np.ndarray
    parenchyma: tuple[np.ndarray, np.ndarray]
    blushes: list[_Blush]
    tumours: list[_Tumour]
    facts: dict[str, Any] = field(default_factory=dict)


def _build_scene(params: DSALiverParams, frame: _Frame, motion: _Motion, rngs: dict[str, np.random.Generator]) -> _Scene:
    scale = frame.scale
    canvas = frame.canvas
    anatomy_rng = rngs["anatomy"]
    liver = _make_liver(anatomy_rng, params, frame)
    stomach = _stomach_geometry(anatomy_rng, frame, liver)
    body = _body_layer(anatomy_rng, params, frame)
    liver_layer = _liver_layer_anatomy(anatomy_rng, params, frame, liver, stomach)

    arteries = _grow_arteries(rngs["arteries"], params, frame, liver)
    tumours = _place_tumours(rngs["tumours"], params, frame, liver, motion.bound() + 2.0, _trunk_distance(arteries, frame))
    _feeders(rngs["arteries"], params, arteries, tumours)
    instances = np.zeros(canvas, np.uint8)
    for number, tumour in enumerate(tumours, start=1):
        instances.ravel()[tumour.mask_index] = number

    # Catheter: anatomy (its wall) and, during the injection, iodine in its lumen.
    cath_px = frame.to_canvas(arteries.catheter)
    radius = params.catheter_radius * scale
    cath_tube = Tube.from_arrays(cath_px, np.full(len(cath_px), radius), np.zeros(len(cath_px)))
    pixels = cath_tube.candidate_pixels(canvas, 1.1)
    dist, nearest = cath_tube.query(pixels, 1.1)
    hit = nearest >= 0
    pixels, dist = pixels[hit], dist[hit]
    flat = (pixels[:, 0] * canvas[1] + pixels[:, 1]).astype(np.int64)
    wall = chord_pixel_average(dist, np.full(len(dist), radius)) / scale
    np.add.at(liver_layer.ravel(), flat, (params.catheter_attenuation * wall).astype(np.float32))
    lumen = chord_pixel_average(dist, np.full(len(dist), 0.6 * radius)) / scale
    keep = lumen > 1e-4
    lumen_index, lumen_weight = flat[keep], (params.vessel_attenuation * lumen[keep]).astype(np.float32)

    tree = VesselTree(arteries.segments, arteries.segments[0].points[0], 0.0)
    tree = tree.transformed(scale, (frame.pad, frame.pad)).pruned(MIN_RENDER_RADIUS_PX)
    art_index, art_chord, art_arc = _tube_entries(tree.segments, frame, cath_tube)
    art_arc = art_arc / (scale * arteries.hepatic_max_arc)

    # Parenchymal blush: the liver, mottled, softly fading to its edge; never beyond it.
    X, Y = frame.ref_grid()
    lookalike_rng = rngs["lookalikes"]
    inner = _blur(liver.mask.astype(np.float32), 6.0 * scale)
    texture = np.clip(1.0 + 0.35 * _unit_noise(lookalike_rng, canvas, 5.0 * scale), 0.0, 2.0)
    segmental = np.clip(1.0 + 0.25 * _unit_noise(lookalike_rng, canvas, 40.0 * scale), 0.3, 2.0)
    parenchyma = np.where(liver.mask, params.parenchymal_blush * inner * texture * segmental, 0.0).astype(np.float32)

    blushes: list[_Blush] = [_stomach_blush(lookalike_rng, params, frame, stomach)]
    # Transient focal blushes in the liver (arterio-portal shunts, perfusion defects' rims).
    deep = cv2.distanceTransform(np.pad(liver.mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1] > 12 * scale
    for _ in range(params.pseudo_lesions):
        rows, cols = np.nonzero(deep)
        if len(rows) == 0:
            break
        pick = int(lookalike_rng.integers(len(rows)))
        cx, cy = (cols[pick] - frame.pad) / scale, (rows[pick] - frame.pad) / scale
        sigma = float(lookalike_rng.uniform(4.0, 10.0))
        r2 = ((X - cx) ** 2 + (Y - cy) ** 2) / (sigma * sigma)
        pattern = np.where(r2 < 6.25, np.exp(-0.5 * r2) * (1.0 - _smoothstep((np.sqrt(r2) - 1.5) / 1.0)), 0.0)
        pattern *= liver.mask
        index, values = _sparse((float(lookalike_rng.uniform(0.04, 0.1)) * pattern).astype(np.float32))
        start = params.injection_start + params.arterial_fill + float(lookalike_rng.uniform(0.0, 0.08))
        hold = float(lookalike_rng.uniform(0.05, 0.2))
        blushes.append(_Blush("liver", index, values, start, 0.1, start + 0.1 + hold, 0.15))

    veins = _veins(lookalike_rng, frame, liver, deep)
    if veins:
        # Diluted iodine in wide veins: soft-edged, faint, inside the liver. Not pruned: a
        # vein widens towards the IVC, and thin ones are only faint.
        vtree = VesselTree(veins, veins[0].points[-1], 0.0).transformed(scale, (frame.pad, frame.pad))
        vein_index, vein_chord, _ = _tube_entries(vtree.segments, frame, None)
        pattern = np.bincount(vein_index, weights=vein_chord, minlength=canvas[0] * canvas[1]).reshape(canvas)
        pattern = np.where(liver.mask, _blur(pattern.astype(np.float32), 1.5 * scale), 0.0)
        index, values = _sparse((params.venous_level * params.vessel_attenuation * pattern).astype(np.float32))
        blushes.append(_Blush("liver", index, values, params.venous_start, 0.15))

    bowel, bowel_blushes, bowel_kinds = _bowel(rngs["bowel"], params, frame, liver)
    blushes.extend(bowel_blushes)
    return _Scene(
        anatomy={"body": body, "liver": liver_layer.astype(np.float32), "bowel": bowel},
        liver=liver.mask.astype(np.uint8),
        instances=instances,
        art_index=art_index,
        art_weight=(params.vessel_attenuation * art_chord).astype(np.float32),
        art_arc=art_arc.astype(np.float32),
        lumen_index=lumen_index,
        lumen_weight=lumen_weight,
        parenchyma=_sparse(parenchyma),
        blushes=blushes,
        tumours=tumours,
        facts={"bowel_loops": bowel_kinds, "arterial_segments": len(tree.segments), "hepatic_vein_segments": len(veins)},
    )


def _iodine(
    scene: _Scene, params: DSALiverParams, timing: _Timing, canvas: tuple[int, int], u: float
) -> dict[str, np.ndarray | None]:
    """Canonical iodine attenuation of the liver and bowel layers at run fraction u (None
    where a layer holds none yet)."""
    size = canvas[0] * canvas[1]
    out: dict[str, np.ndarray | None] = {"liver": None, "bowel": None}
    if u <= params.injection_start:
        return out
    liver = np.zeros(size, np.float64)
    if len(scene.art_index):
        liver += np.bincount(scene.art_index, weights=scene.art_weight * timing.arterial(scene.art_arc, u), minlength=size)
    cath = timing.catheter(u)
    if cath > 0.0:
        np.add.at(liver, scene.lumen_index, scene.lumen_weight * cath)
    level = timing.parenchyma(u)
    if level > 0.0:
        liver[scene.parenchyma[0]] += scene.parenchyma[1] * level
    bowel = np.zeros(size, np.float64)
    for blush in scene.blushes:
        level = blush.level(u)
        if level > 0.0:
            target = liver if blush.layer == "liver" else bowel
            target[blush.index] += blush.values * level
    for tumour in scene.tumours:
        np.add.at(liver, tumour.index, tumour.stain(u))
    out["liver"] = liver.reshape(canvas).astype(np.float32)
    out["bowel"] = bowel.reshape(canvas).astype(np.float32) if bowel.any() else None
    return out


# ---- rendering ---------------------------------------------------------------------------------


def generate_dsa_liver(params: DSALiverParams, *, seed: int, progress: bool = False) -> DSALiverRun:
    """Render a DSA liver run; the same params and seed always give identical output.

    Args:
        params: what to render (see `DSALiverParams`).
        seed: non-negative integer; every random draw comes from generators derived from it.
        progress: show a tqdm progress bar over frames.
    """
    if not isinstance(params, DSALiverParams):
        raise InputError(f"generate_dsa_liver needs DSALiverParams; got {type(params).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"dsa-liver seed must be a non-negative integer; got {seed!r}")
    names = ("anatomy", "arteries", "tumours", "lookalikes", "bowel", "motion", "noise")
    rngs = {name: np.random.default_rng(s) for name, s in zip(names, np.random.SeedSequence(int(seed)).spawn(len(names)))}
    scale = params.scale
    probe = _Frame(params.height, params.width, scale, 0)
    motion = _Motion(params, rngs["motion"], probe)
    pad = int(math.ceil(motion.bound() + 4.0 * scale)) + 4
    frame = _Frame(params.height, params.width, scale, pad)
    scene = _build_scene(params, frame, motion, rngs)
    timing = _Timing(params)

    H, W, T = params.height, params.width, params.frames
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    grid = np.stack([xs, ys], axis=-1)
    sigma = params.blur_sigma * scale
    dose = params.dose / (scale * scale)  # photons per pixel: more per (larger) pixel at small sizes
    noise_rng = rngs["noise"]
    offset = np.float32(pad)

    def sample(image: np.ndarray, positions: np.ndarray, *, nearest: bool = False) -> np.ndarray:
        return sample_at(image, positions, nearest=nearest, border="constant" if nearest else "replicate")

    def exposure(t: float, u: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        maps = {layer: motion.to_canonical(grid, t, layer) + offset for layer in LAYERS}
        anatomy = sample(scene.anatomy["body"], maps["body"])
        anatomy = anatomy + sample(scene.anatomy["liver"], maps["liver"])
        anatomy = anatomy + sample(scene.anatomy["bowel"], maps["bowel"])
        iodine = np.zeros((H, W), np.float32)
        for layer, image in _iodine(scene, params, timing, frame.canvas, u).items():
            if image is not None:
                iodine = iodine + sample_at(image, maps[layer], border="constant")
        intensity = _blur(np.exp(-(anatomy + iodine)).astype(np.float32), sigma)
        return intensity, iodine, maps["liver"]

    def counts(intensity: np.ndarray) -> np.ndarray:
        if not params.noise:
            return np.log(intensity.astype(np.float64))
        return np.log(np.maximum(noise_rng.poisson(intensity.astype(np.float64) * dose), 0.5) / dose)

    mask_intensity, _, _ = exposure(0.0, 0.0)
    log_mask = counts(mask_intensity)
    frames = np.empty((T, H, W), np.float32)
    contrast = np.empty((T, H, W), np.float32)
    liver_masks = np.empty((T, H, W), bool)
    instances = np.empty((T, H, W), np.uint8)
    iterator: Any = range(T)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="dsa-liver", unit="frame")
    times, fractions = params.times, params.run_fractions
    for i in iterator:
        intensity, iodine, liver_map = exposure(float(times[i]), float(fractions[i]))
        difference = counts(intensity) - log_mask
        frames[i] = np.clip(NEUTRAL + np.float32(params.display_gain) * difference.astype(np.float32), 0.0, 1.0)
        contrast[i] = iodine
        liver_masks[i] = sample(scene.liver, liver_map, nearest=True) > 0
        instances[i] = sample(scene.instances, liver_map, nearest=True)

    labels = np.where(instances > 0, 2, np.where(liver_masks, 1, 0)).astype(np.uint8)
    pixel_mm = PIXEL_SPACING_512_MM / scale
    tumours = []
    for number, tumour in enumerate(scene.tumours, start=1):
        rows, cols = np.nonzero(instances[0] == number)
        tumours.append({
            "id": number,
            "class": tumour.klass,
            "centroid": [round(float(cols.mean()), 3), round(float(rows.mean()), 3)],
            "area_px": int(len(rows)),
            "area_mm2": round(float(len(rows)) * pixel_mm * pixel_mm, 3),
            "feeder_radius_px": round(tumour.feeder_radius * scale, 3),
        })
    video = Video(
        frames=frames,
        fps=params.fps,
        pixel_spacing=(pixel_mm, pixel_mm),
        metadata={
            "source_kind": "phantom",
            "generator": "angioseg.dsa_liver",
            "modality": "XA",
            "bit_depth": 32,
            "seed": int(seed),
            "subtraction": "log-domain, mask = pre-contrast exposure at t = 0",
            "display": {"neutral": float(NEUTRAL), "gain": float(params.display_gain), "iodine": "dark"},
            "injection_site": params.injection_site,
            "tumours": tumours,
            **scene.facts,
        },
    )
    return DSALiverRun(
        video=video,
        masks=LabelMap(labels=labels, label_table=dict(DSA_LIVER_LABELS)),
        liver=liver_masks,
        instances=instances,
        tumours=tumours,
        contrast=contrast,
        params=params,
    )
