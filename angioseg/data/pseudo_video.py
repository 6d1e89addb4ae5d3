"""Real-anatomy pseudo-videos: one real annotated angiography frame turned into a run with exact labels.

A real frame I (vessels dark, already full of contrast) and its vessel mask M become a video
in which contrast flows into the real tree while the heart beats and the patient breathes.
Every label is exact by construction: the masks are M carried by the same motion that moves
the pixels.

The method (all arrays `(H, W)`; the canonical scene is frame 0, where every motion is the
identity):

(a) Background layer. V = M, plus (``unannotated_vessels``) dark thin structures detected
    next to the tree: a white top-hat of the attenuation -log I (disk a little wider than the
    thickest annotated vessel), hysteresis at 2.5 and 5 robust noise sigmas (local sigma in
    32 px tiles, so dark noisy areas do not fire), components kept when they reach the tree
    within a 6 px gap, repeatedly. These are the small branches ARCADE leaves unlabelled and
    often the catheter; they move and fill with the tree but stay background in the masks.
    D = V dilated by ``mask_dilation_px``. B = cv2.inpaint (Telea, on 16 bits, radius
    ``inpaint_radius``) of I over D and under the static border (g); B = I elsewhere, exactly.
    The inpainted area is smooth, so the frame's own grain is put back: B_tex = B + h(x + o(x))
    on the inpainted area, h = I - G_1.5 * I the high-pass of the real frame, o(x) the first of
    a fixed list of offsets (24 to ~110 px) whose source pixel lies well outside it. Without
    it the emptied vessels would show as noise-free ghosts.
(b) Vessel layer. mu = max(0, log(B_tex + eps) - log(I + eps)) on D, 0 elsewhere: the
    attenuation the contrast adds, so B_tex * exp(-mu) = min(B_tex, I) = I on the vessels.
(c) Canonical geodesic distance g from the start point s (``start_point``, or the rule in
    `choose_start_point`): skimage.graph.MCP_Geometric with cost 1 on V and 20 elsewhere, so
    pieces the annotation leaves disconnected still fill, later; off V, g is taken from the
    nearest V pixel. g_max = max g on M.
(d) Contrast concentration (times t_k = k / fps)::

        a(g) = fill_time_s * g / g_max                       (front arrival delay)
        c_t(g) = peak * S((t - inflow_start_s - a(g)) / rise_time_s)
                      * (1 - S((t - t_w - a(g)) / washout_time_s))
        S(z) = 3 z^2 - 2 z^3 on [0, 1] (0 below, 1 above),  t_w = washout_start * t_{T-1}

    so the front leaves s at ``inflow_start_s``, reaches the far end of the annotated tree
    ``fill_time_s`` later, each point takes ``rise_time_s`` to fill, and (when
    ``washout_start`` is set) the wash-out follows the same path. Without wash-out the
    tree stays on its plateau ``peak_concentration``. The catheter (unannotated tube from the
    start point to the image border, see `PseudoLayers.catheter`) is held at c = 1: it is
    visible before the injection.
(e) Rendering, with the motion's sampling maps u = F_t^{-1}(x) per layer (the background
    layer breathes only, scaled; the vessel layer breathes and beats, its motion relative to
    the background scaled by ``vessel_motion_gain``)::

        frame_t(x) = B_tex(F^bg_t^{-1}(x)) * exp(-mu(u) * c_t(g(u))),   u = F^v_t^{-1}(x)

    (bilinear cv2.remap of B_tex and of the product mu * c_t(g)), then the static border (g)
    is pasted back and Poisson noise at ``dose`` photons per unit transmission is added:
    frame = Poisson(dose * frame) / dose. With c = 1 at t = 0 the noise-free frame is the real
    image wherever I <= B_tex, i.e. everywhere but the inpainting residual.
(f) Labels: masks_t = (M and c_t(g) > visible_threshold) sampled at u (nearest), outside the
    static border; anatomy_t = M sampled at u (nearest). At t = 0 the maps are exactly the
    pixel grid, so anatomy[0] == M. The flows are the vessel layer's exact motion between
    consecutive frames (see `angioseg.data.motion`).
(g) Static border. The frame that the detector and collimator leave round many images
    (black or saturated pixels connected to the image edge, see `_static_border`, plus a few
    pixels of penumbra) does not move with the patient: it is pasted back over every frame
    with a short feather, and B is inpainted under it so content sliding in from behind is
    anatomy, not black.

Speed: the inverse motion is solved on a coarse grid (stride 4 px at 512, exact at <= 255 px)
and interpolated with a Keys cubic (error far below a pixel: the motion is smooth on scales
of tens of pixels); flows come from the same maps, so each frame's inverse is solved once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from angioseg.data.motion import CardiacBreathingMotion, MotionParams
from angioseg.errors import InputError
from angioseg.types import VESSEL_LABELS, LabelMap, Video
from angioseg.warp import sample_at

#: Clinical cine frame rates `PseudoVideoParams.sample` draws from when no fps is given.
COMMON_FPS = (7.5, 10.0, 12.5, 15.0, 25.0, 30.0)
#: Label table of the masks.
PSEUDO_VIDEO_LABELS: dict[int, str] = VESSEL_LABELS
#: Geodesic cost per pixel outside the vessels (inside: 1).
OUTSIDE_COST = 20.0
_EPS = 1.0 / 1024.0
_BLACK_LEVEL = 4.0 / 255.0


@dataclass(frozen=True)
class PseudoVideoParams:
    """How a pseudo-video is made. `sample` draws from the ranges in brackets.

    Attributes:
        frames: number of frames (>= 1) [given].
        fps: frames per second (> 0) [7.5-30: one of `COMMON_FPS`].
        motion: the cardiac/breathing motion; None = `MotionParams.random` from the seed.
        vessel_motion_gain: scales the vessel layer's motion relative to the background (its
            cardiac motion and the part of the breathing the background does not follow);
            1 = the motion model as is, 0 = vessels move with the background [0.7-1.5; 0-3].
        inflow_start_s: when the contrast front leaves the start point; negative = the run
            starts after the injection (already filled) [0-0.5].
        fill_time_s: seconds for the front to reach the far end of the annotated tree
            (front speed = g_max / fill_time_s) [0.5-1.5].
        rise_time_s: seconds each point takes to fill once the front arrives (0 = a hard
            front) [0.1-0.4].
        peak_concentration: plateau concentration in (0, 1]; 1 = the contrast of the real frame
            [0.85-1].
        washout_start: when the wash-out leaves the start point, as a fraction of the run's
            last frame time; None = no wash-out [None half the time, else 0.6-0.95 when the
            tree has filled by then].
        washout_time_s: seconds each point takes to clear [0.6-1.5].
        visible_threshold: concentration above which a pixel counts as vessel in the masks
            [0.2].
        dose: photons per pixel at full transmission for the Poisson noise; None = no noise
            [500-5000, log-uniform].
        mask_dilation_px: the vessel mask is dilated by this many pixels before inpainting and
            for the vessel layer's support (annotations are tight) [3].
        inpaint_radius: radius of cv2.inpaint's neighbourhood in pixels [5].
        unannotated_vessels: also move and fill the unlabelled small branches next to the
            tree (they stay background in the masks, as in the annotation) [True].
    """

    frames: int = 32
    fps: float = 15.0
    motion: MotionParams | None = None
    vessel_motion_gain: float = 1.0
    inflow_start_s: float = 0.2
    fill_time_s: float = 1.0
    rise_time_s: float = 0.25
    peak_concentration: float = 1.0
    washout_start: float | None = None
    washout_time_s: float = 1.0
    visible_threshold: float = 0.2
    dose: float | None = 2000.0
    mask_dilation_px: int = 3
    inpaint_radius: int = 5
    unannotated_vessels: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise InputError(f"pseudo-video parameter {what}")

        need(isinstance(self.frames, (int, np.integer)) and self.frames >= 1, f"frames must be an integer >= 1; got {self.frames!r}")
        for name in ("fps", "vessel_motion_gain", "inflow_start_s", "fill_time_s", "rise_time_s",
                     "peak_concentration", "washout_time_s", "visible_threshold"):  # fmt: skip
            value = getattr(self, name)
            need(isinstance(value, (int, float, np.number)) and math.isfinite(value), f"{name} must be a finite number; got {value!r}")
        need(self.fps > 0, f"fps must be positive; got {self.fps}")
        need(0 <= self.vessel_motion_gain <= 3, f"vessel_motion_gain must lie in [0, 3]; got {self.vessel_motion_gain}")
        need(self.fill_time_s > 0, f"fill_time_s must be positive; got {self.fill_time_s}")
        need(self.rise_time_s >= 0, f"rise_time_s must be >= 0; got {self.rise_time_s}")
        need(0 < self.peak_concentration <= 1, f"peak_concentration must lie in (0, 1]; got {self.peak_concentration}")
        need(self.washout_time_s > 0, f"washout_time_s must be positive; got {self.washout_time_s}")
        need(0 < self.visible_threshold < 1, f"visible_threshold must lie in (0, 1); got {self.visible_threshold}")
        if self.washout_start is not None:
            need(math.isfinite(self.washout_start) and self.washout_start >= 0,
                 f"washout_start must be None or a fraction >= 0; got {self.washout_start!r}")  # fmt: skip
        if self.dose is not None:
            need(math.isfinite(self.dose) and self.dose > 0, f"dose must be None or positive; got {self.dose!r}")
        need(int(self.mask_dilation_px) == self.mask_dilation_px and self.mask_dilation_px >= 0,
             f"mask_dilation_px must be an integer >= 0; got {self.mask_dilation_px!r}")  # fmt: skip
        need(int(self.inpaint_radius) == self.inpaint_radius and self.inpaint_radius >= 1,
             f"inpaint_radius must be an integer >= 1; got {self.inpaint_radius!r}")  # fmt: skip
        if self.motion is not None and not isinstance(self.motion, MotionParams):
            raise InputError(f"pseudo-video parameter motion must be MotionParams or None; got {type(self.motion).__name__}")

    @classmethod
    def sample(cls, rng: np.random.Generator, *, frames: int = 32, fps: float | None = None) -> "PseudoVideoParams":
        """Draw parameters from the documented ranges (fps from `COMMON_FPS` unless given)."""
        fps = float(rng.choice(COMMON_FPS)) if fps is None else float(fps)
        motion = MotionParams.random(rng)
        inflow = float(rng.uniform(0.0, 0.5))
        fill = float(rng.uniform(0.5, 1.5))
        rise = float(rng.uniform(0.1, 0.4))
        washout: float | None = None
        if rng.uniform() < 0.5 and frames > 1:
            start = float(rng.uniform(0.6, 0.95))
            if start * (frames - 1) / fps >= inflow + fill + rise:
                washout = start
        return cls(
            frames=int(frames),
            fps=fps,
            motion=motion,
            vessel_motion_gain=float(rng.uniform(0.7, 1.5)),
            inflow_start_s=inflow,
            fill_time_s=fill,
            rise_time_s=rise,
            peak_concentration=float(rng.uniform(0.85, 1.0)),
            washout_start=washout,
            washout_time_s=float(rng.uniform(0.6, 1.5)),
            dose=float(np.exp(rng.uniform(np.log(500.0), np.log(5000.0)))),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (JSON-ready); `motion` becomes a dict or None."""
        out = asdict(self)
        if out["motion"] is not None:
            out["motion"]["heart_centre"] = list(out["motion"]["heart_centre"])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PseudoVideoParams":
        """Inverse of `to_dict`."""
        data = dict(data)
        motion = data.get("motion")
        if isinstance(motion, Mapping):
            motion = dict(motion)
            if "heart_centre" in motion:
                motion["heart_centre"] = tuple(motion["heart_centre"])
            data["motion"] = MotionParams(**motion)
        return cls(**data)

    @property
    def times(self) -> np.ndarray:
        """`(T,)` frame times in seconds, t_k = k / fps."""
        return np.arange(self.frames, dtype=np.float64) / self.fps

    def effective_motion(self) -> MotionParams:
        """`motion` with `vessel_motion_gain` applied: d_v' = d_bg + gain (d_v - d_bg).

        The vessel layer's cardiac terms (contraction, twist, wobble) are linear in their
        amplitudes, so they are scaled by the gain; its breathing becomes b (f + gain (1 - f))
        with the background factor re-solved so the background keeps b f.
        """
        motion = self.motion if self.motion is not None else MotionParams()
        gain = float(self.vessel_motion_gain)
        if gain == 1.0:
            return motion
        f = motion.background_breathing_factor
        breathing = motion.breathing_px * (f + gain * (1.0 - f))
        factor = motion.breathing_px * f / breathing if breathing > 0 else f
        return replace(
            motion,
            contraction=motion.contraction * gain,
            twist_deg=motion.twist_deg * gain,
            wobble_px=motion.wobble_px * gain,
            breathing_px=breathing,
            background_breathing_factor=factor,
        )

    def concentration(self, t: float, geodesic: np.ndarray, g_max: float) -> np.ndarray:
        """c_t(g) of the module docstring, float32 of `geodesic`'s shape."""
        g = np.asarray(geodesic, dtype=np.float32)
        delay = np.float32(self.fill_time_s / max(g_max, 1e-6)) * g
        c = _smoothstep((np.float32(t - self.inflow_start_s) - delay), self.rise_time_s)
        if self.washout_start is not None:
            t_w = self.washout_start * (self.frames - 1) / self.fps
            c = c * (1.0 - _smoothstep(np.float32(t - t_w) - delay, self.washout_time_s))
        return (np.float32(self.peak_concentration) * c).astype(np.float32, copy=False)


def _smoothstep(x: np.ndarray, width: float) -> np.ndarray:
    if width <= 0:
        return (x >= 0).astype(np.float32)
    z = np.clip(x / np.float32(width), 0.0, 1.0)
    return z * z * (3.0 - 2.0 * z)


@dataclass
class PseudoLayers:
    """The canonical (t = 0) decomposition of the real frame.

    Attributes:
        background: `(H, W)` float32 B_tex: the frame with its vessels inpainted (grain restored).
        attenuation: `(H, W)` float32 mu >= 0, the contrast's attenuation at full concentration.
        geodesic: `(H, W)` float32 g, path length from the start point (pixels, cost-weighted).
        g_max: max of g on the annotated mask.
        contrast_region: `(H, W)` bool V: annotated mask plus detected unannotated vessels.
        inpainted: `(H, W)` bool, where B was inpainted (dilated V and the static border).
        static_alpha: `(H, W)` float32, 1 where the static detector border is pasted back.
        start_point: (row, col) on the annotated mask where the contrast enters.
        catheter: `(H, W)` bool, unannotated tube(s) that reach the image border and end at
            the start point (dilated like the mask, annotated pixels excluded): held at
            concentration 1 throughout, since a catheter is visible before the injection.
    """

    background: np.ndarray
    attenuation: np.ndarray
    geodesic: np.ndarray
    g_max: float
    contrast_region: np.ndarray
    inpainted: np.ndarray
    static_alpha: np.ndarray
    start_point: tuple[int, int]
    catheter: np.ndarray


@dataclass
class PseudoVideo:
    """A pseudo-video and its exact ground truth.

    Attributes:
        video: the frames (T, H, W), fps from the params.
        masks: label 1 = annotated vessel holding visible contrast (c > visible_threshold).
        anatomy: `(T, H, W)` bool, the annotated mask carried by the motion, contrast or not.
        flow_forward: `(T-1, H, W, 2)` float32 (dx, dy) vessel-layer flow t -> t+1 on frame t.
        flow_backward: `(T-1, H, W, 2)` float32 (dx, dy) vessel-layer flow t+1 -> t on frame t+1.
        params: the parameters used, with `motion` resolved.
        start_point: (row, col) where the contrast enters.
        layers: the canonical decomposition (background, attenuation, geodesic, ...).
        concentration_at_start: `(T,)` c_t at the start point.
    """

    video: Video
    masks: LabelMap
    anatomy: np.ndarray
    flow_forward: np.ndarray
    flow_backward: np.ndarray
    params: PseudoVideoParams
    start_point: tuple[int, int]
    layers: PseudoLayers
    concentration_at_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


# ---- input checks ----------------------------------------------------------------------------
def _check_inputs(image: Any, vessel_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputError(f"the image must be a 2-D (H, W) array; got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise InputError(f"the image must be floating point in [0, 1]; got {image.dtype}")
    if min(image.shape) < 16:
        raise InputError(f"the image of size {image.shape[0]}x{image.shape[1]} is too small; need at least 16x16")
    if not np.isfinite(image).all():
        raise InputError("the image contains NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"the image must lie in [0, 1]; got values in [{low:.4g}, {high:.4g}]")
    mask = np.asarray(vessel_mask)
    if mask.shape != image.shape:
        size = "x".join(str(s) for s in mask.shape)
        raise InputError(f"mask of size {size} does not match the image's {image.shape[0]}x{image.shape[1]}")
    mask = mask.astype(bool)
    if not mask.any():
        raise InputError("the vessel mask is empty; a pseudo-video needs at least one vessel pixel")
    return image.astype(np.float32), mask


# ---- canonical decomposition --------------------------------------------------------------------
def _disk(radius: int) -> np.ndarray:
    import cv2

    radius = max(int(radius), 0)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _static_border(image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(outside, alpha): the detector/collimator frame and its paste-back weight (see (g)).

    `outside`: pixels connected to the image edge, within 10 % of the size of it, that are
    black (<= 4/255 or below a quarter of the median level: collimator blades) or saturated
    (>= 254/255). `alpha` is 1 on it and on a 3 px (at 512) penumbra band, then falls to 0
    over 3 px. An implausibly large frame (> 40 % of the image) is ignored.
    """
    from scipy import ndimage as ndi

    height, width = image.shape
    level = max(_BLACK_LEVEL, 0.25 * float(np.median(image)))
    flat = (image <= level) | (image >= 254.0 / 255.0)
    margin = max(2, int(round(0.1 * min(height, width))))
    near_edge = np.zeros_like(flat)
    near_edge[:margin], near_edge[-margin:], near_edge[:, :margin], near_edge[:, -margin:] = True, True, True, True
    flat &= near_edge
    labels, count = ndi.label(flat)
    zeros = np.zeros(image.shape, bool)
    if count == 0:
        return zeros, np.zeros(image.shape, np.float32)
    edge_ids = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge_ids = edge_ids[edge_ids > 0]
    outside = np.isin(labels, edge_ids)
    if not outside.any() or outside.mean() > 0.4:
        return zeros, np.zeros(image.shape, np.float32)
    distance = ndi.distance_transform_edt(~outside)
    band, feather = 3.0 * max(scale, 0.25), 3.0 * max(scale, 0.25)
    alpha = np.clip(1.0 - (distance - band) / feather, 0.0, 1.0).astype(np.float32)
    return outside, alpha


def _local_sigma(high_pass: np.ndarray, block: int) -> np.ndarray:
    """1.4826 * median |high_pass| over `block`-sized tiles, bilinearly spread to every pixel."""
    import cv2

    height, width = high_pass.shape
    rows, cols = -(-height // block), -(-width // block)
    padded = np.pad(np.abs(high_pass), ((0, rows * block - height), (0, cols * block - width)), mode="reflect")
    tiles = padded.reshape(rows, block, cols, block).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    sigma = (1.4826 * np.median(tiles, axis=-1)).astype(np.float32)
    return cv2.resize(sigma, (cols * block, rows * block), interpolation=cv2.INTER_LINEAR)[:height, :width]


def _unannotated_vessels(image: np.ndarray, mask: np.ndarray, excluded: np.ndarray, scale: float) -> np.ndarray:
    """Dark thin structures joined to the annotated tree (small branches, catheter), bool.

    White top-hat of the smoothed attenuation -log I with a disk a little wider than the
    thickest annotated vessel, hysteresis at 2.5 and 5 noise sigmas (the larger of the
    global and the local robust sigma of the high-pass), and components kept when they lie
    within a small gap of the tree or of components already kept.
    """
    import cv2
    from scipy import ndimage as ndi
    from skimage.filters import apply_hysteresis_threshold

    attenuation = -np.log(np.maximum(image, _EPS)).astype(np.float32)
    smooth = cv2.GaussianBlur(attenuation, (0, 0), 1.0)
    thickest = float(ndi.distance_transform_edt(mask).max())
    radius = int(round(min(max(thickest + 2.0, 8.0 * scale), 20.0 * scale)))
    tophat = cv2.morphologyEx(smooth, cv2.MORPH_TOPHAT, _disk(max(radius, 2)))
    high_pass = attenuation - cv2.GaussianBlur(attenuation, (0, 0), 2.0)
    allowed = ~excluded
    sigma = 1.4826 * float(np.median(np.abs(high_pass[allowed] - np.median(high_pass[allowed])))) if allowed.any() else 0.0
    sigma = max(sigma, 0.004)
    # Dark areas are noisier in -log I (fewer photons): use the local robust sigma where it
    # exceeds the global one.
    score = tophat / np.maximum(_local_sigma(high_pass, max(8, int(round(32 * scale)))), sigma)
    score[excluded] = 0.0
    candidates = apply_hysteresis_threshold(score, 2.5, 5.0)
    labels, count = ndi.label(candidates, np.ones((3, 3), bool))
    if count == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    big = sizes >= max(8, int(40 * scale * scale))
    big[0] = False
    gap = _disk(max(2, int(round(6 * scale))))
    kept = np.zeros(count + 1, bool)
    reach = mask
    for _ in range(6):  # grow along the tree: components within `gap` of what is already kept
        near = cv2.dilate(reach.astype(np.uint8), gap).astype(bool)
        hit = np.zeros(count + 1, bool)
        hit[np.unique(labels[near])] = True
        new = hit & big & ~kept
        if not new.any():
            break
        kept |= new
        reach = mask | kept[labels]
    return kept[labels] & ~mask


def _border_reaching(extra: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Components of `extra` that touch `border` (the image edge or the static frame)."""
    from scipy import ndimage as ndi

    labels, count = ndi.label(extra, np.ones((3, 3), bool))
    if count == 0:
        return np.zeros_like(extra)
    ids = np.unique(labels[border])
    ids = ids[ids > 0]
    return np.isin(labels, ids)


def _catheter_tube(hint: np.ndarray, mask: np.ndarray, start: tuple[int, int], edge: np.ndarray, scale: float) -> np.ndarray:
    """The catheter: a tube along the shortest path from the start point to the image border.

    The path runs through `hint` (unannotated structures reaching the border) and may cross
    the annotated mask only near the start; the tube is the path widened by its median radius
    + 1 px. Empty when no such path exists.
    """
    import cv2
    from scipy import ndimage as ndi
    from skimage.graph import MCP_Geometric

    height, width = mask.shape
    tip_radius = float(ndi.distance_transform_edt(mask)[start])
    reach = tip_radius + max(2.0, 6.0 * scale) + 1.0
    rows, cols = np.ogrid[:height, :width]
    near_start = (rows - start[0]) ** 2 + (cols - start[1]) ** 2 <= reach**2
    walkable = hint | near_start
    if not (hint & near_start).any():
        return np.zeros_like(mask)
    costs = np.where(walkable, 1.0, np.inf)
    mcp = MCP_Geometric(costs)
    distance, _ = mcp.find_costs([start])
    targets = edge & hint & np.isfinite(distance)
    if not targets.any():
        return np.zeros_like(mask)
    flat = np.where(targets, distance, np.inf)
    end = np.unravel_index(int(np.argmin(flat)), flat.shape)
    path = np.zeros_like(mask)
    for r, c in mcp.traceback(end):
        path[r, c] = True
    path &= hint
    if not path.any():
        return path
    radius = float(np.median(ndi.distance_transform_edt(hint)[path]))
    tube = cv2.dilate(path.astype(np.uint8), _disk(int(math.ceil(radius + 1.0)))).astype(bool)
    return tube & ~mask


def _transplant_grain(image: np.ndarray, region: np.ndarray, scale: float) -> np.ndarray:
    """High-pass grain for `region`, copied from nearby pixels well outside it (0 elsewhere)."""
    import cv2

    high = image - cv2.GaussianBlur(image, (0, 0), 1.5)
    source_ok = ~cv2.dilate(region.astype(np.uint8), _disk(3)).astype(bool)
    height, width = image.shape
    golden = math.pi * (3.0 - math.sqrt(5.0))
    base = max(6.0, 24.0 * scale)
    offsets = [
        (int(round(r * math.sin(k * golden))), int(round(r * math.cos(k * golden))))
        for k in range(24)
        for r in [base * (1.0 + 0.15 * k)]
    ]
    pad = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    ok = np.pad(source_ok, pad, constant_values=False)
    hp = np.pad(high, pad)
    grain = np.zeros_like(image)
    todo = region.copy()
    for dy, dx in offsets:
        window = (slice(pad + dy, pad + dy + height), slice(pad + dx, pad + dx + width))
        take = todo & ok[window]
        grain[take] = hp[window][take]
        todo &= ~take
        if not todo.any():
            break
    return grain


def _sizable_components(mask: np.ndarray) -> np.ndarray:
    """The 8-connected components of `mask` with at least a quarter of the largest one's area."""
    from scipy import ndimage as ndi

    labels, count = ndi.label(mask, np.ones((3, 3), bool))
    if count <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes >= 0.25 * sizes.max()
    keep[0] = False
    return keep[labels]


def choose_start_point(vessel_mask: np.ndarray, *, catheter_hint: np.ndarray | None = None) -> tuple[int, int]:
    """Where the contrast enters, (row, col): the proximal end of the thickest vessel.

    Rule: on the mask's 8-connected components of at least a quarter of the largest one's area
    (annotations of consecutive segments are sometimes disjoint), skeletonise; for every skeleton
    end point e, its thickness is the mean vessel radius (Euclidean distance transform) over
    the skeleton pixels within L = max(8, 24 * size / 512) px of e along the skeleton. The
    ostium is where the thickest segment (left main or proximal RCA) begins and vessels only
    narrow downstream, so the thickest end is the proximal one. When `catheter_hint` (a bool
    mask of unannotated dark tubes reaching the image border) is given, end points within
    their radius + 6 px (at 512) of it whose thickness is at least 60 % of the best come
    first: a catheter ends at the ostium. Ties go to the end nearest the image border, then to
    the first in raster order. Without end points (a closed loop, a blob) it is the
    component's thickest pixel.
    """
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize

    mask = np.asarray(vessel_mask, bool)
    component = _sizable_components(mask)
    radius = ndi.distance_transform_edt(component)
    skeleton = skeletonize(component)
    neighbours = ndi.convolve(skeleton.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    ends = np.argwhere(skeleton & (neighbours == 1))
    height, width = mask.shape
    if len(ends) == 0:
        row, col = np.unravel_index(int(np.argmax(radius)), radius.shape)
        return int(row), int(col)
    size = min(height, width)
    reach = max(8, int(round(24 * size / 512)))
    gap = max(2.0, 6.0 * size / 512)
    hint_distance = None
    if catheter_hint is not None and np.any(catheter_hint):
        hint_distance = ndi.distance_transform_edt(~np.asarray(catheter_hint, bool))
    scored = []
    for row, col in ends:
        seen = {(int(row), int(col))}
        frontier = [(int(row), int(col))]
        for _ in range(reach):
            nxt = []
            for r, c in frontier:
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        rr, cc = r + dr, c + dc
                        if 0 <= rr < height and 0 <= cc < width and skeleton[rr, cc] and (rr, cc) not in seen:
                            seen.add((rr, cc))
                            nxt.append((rr, cc))
            if not nxt:
                break
            frontier = nxt
        thickness = float(np.mean([radius[p] for p in seen]))
        border = int(min(row, col, height - 1 - row, width - 1 - col))
        hinted = hint_distance is not None and hint_distance[row, col] <= radius[row, col] + gap + 1.0
        scored.append((thickness, border, hinted, (int(row), int(col))))
    best_thickness = max(item[0] for item in scored)
    pool = [item for item in scored if item[2] and item[0] >= 0.6 * best_thickness] or scored
    pool.sort(key=lambda item: (-round(item[0], 6), item[1], item[3]))
    return pool[0][3]


def _geodesic(region: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage.graph import MCP_Geometric

    costs = np.where(region, 1.0, OUTSIDE_COST)
    distance, _ = MCP_Geometric(costs).find_costs([start])
    distance = np.asarray(distance, dtype=np.float64)
    # Off the vessels, take the value of the nearest vessel pixel.
    _, (rows, cols) = ndi.distance_transform_edt(~region, return_indices=True)
    return distance[rows, cols].astype(np.float32)


def _unannotated_structures(
    image: np.ndarray, mask: np.ndarray, static: np.ndarray, scale: float, start_point: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(extra, catheter, start point): the dark thin structures joined to the annotated tree
    (`_unannotated_vessels`), the catheter tube among them (reaching the border and ending at
    the start point; undilated) and the start point (`choose_start_point` when None)."""
    import cv2

    # Nothing is detected on the static frame or within a few pixels of the image edge
    # (frames often carry a thin dark or bright rim there).
    margin = max(2, int(round(4 * scale)))
    excluded = cv2.dilate(static.astype(np.uint8), _disk(margin)).astype(bool)
    excluded[:margin], excluded[-margin:], excluded[:, :margin], excluded[:, -margin:] = True, True, True, True
    extra = _unannotated_vessels(image, mask, excluded, scale)
    edge = cv2.dilate(excluded.astype(np.uint8), _disk(2)).astype(bool)
    hint = _border_reaching(extra, edge)
    if start_point is None:
        start_point = choose_start_point(mask, catheter_hint=hint)
    start_point = (int(start_point[0]), int(start_point[1]))
    catheter = _catheter_tube(hint, mask, start_point, edge, scale) if hint.any() else np.zeros_like(mask)
    return extra, catheter, start_point


def all_vessels_mask(image: np.ndarray, vessel_mask: np.ndarray) -> np.ndarray:
    """`(H, W)` bool: an "all"-style target (every contrast-filled vessel) from a frame whose
    annotation marks only some vessels (ARCADE's major segments, "syntax" style): the annotated
    mask plus the dark thin structures joined to it that step (a) of the module docstring
    finds, without the catheter tube among them and without pieces that reach within 12 px
    (at 512) of the frame's edge."""
    from scipy import ndimage as ndi

    image, mask = _check_inputs(image, vessel_mask)
    scale = min(image.shape) / 512.0
    _, alpha = _static_border(image, scale)
    extra, catheter, _ = _unannotated_structures(image, mask, alpha > 0, scale, None)
    extra &= ~catheter
    # Pieces that run to the frame's edge are mostly the catheter's unrecognised parts and the
    # dark rim some frames carry (seen on ARCADE train samples); they are left out.
    pieces, count = ndi.label(extra, structure=np.ones((3, 3), bool))
    band = max(3, int(round(12 * scale)))
    edge = np.zeros_like(extra)
    edge[:band], edge[-band:], edge[:, :band], edge[:, -band:] = True, True, True, True
    reaching = np.unique(pieces[edge & extra])
    return mask | (extra & ~np.isin(pieces, reaching[reaching > 0]))


def decompose(
    image: np.ndarray,
    vessel_mask: np.ndarray,
    *,
    start_point: tuple[int, int] | None = None,
    mask_dilation_px: int = 3,
    inpaint_radius: int = 5,
    unannotated_vessels: bool = True,
) -> PseudoLayers:
    """Steps (a)-(c) and (g) of the module docstring for one real frame.

    `start_point` (row, col) must lie on the mask; None = `choose_start_point`.
    """
    import cv2

    image, mask = _check_inputs(image, vessel_mask)
    height, width = image.shape
    scale = min(height, width) / 512.0
    outside, alpha = _static_border(image, scale)
    static = alpha > 0
    region = mask.copy()
    catheter = np.zeros_like(mask)
    if unannotated_vessels:
        extra, catheter, start_point = _unannotated_structures(image, mask, static, scale, start_point)
        region |= extra
    if start_point is None:
        start_point = choose_start_point(mask)
    start_point = (int(start_point[0]), int(start_point[1]))
    dilated = cv2.dilate(region.astype(np.uint8), _disk(int(mask_dilation_px))).astype(bool) if mask_dilation_px else region
    dilated &= ~outside
    inpainted = dilated | static
    # cv2.inpaint's Telea fill misbehaves on float32 input (values far outside the input's
    # range); 16-bit keeps the precision of 8- and 10-bit frames and works.
    source = np.round(image * 65535.0).astype(np.uint16)
    background = cv2.inpaint(source, inpainted.astype(np.uint8), float(inpaint_radius), cv2.INPAINT_TELEA)
    background = np.where(inpainted, background.astype(np.float32) / np.float32(65535.0), image)
    background = background + _transplant_grain(image, inpainted, scale)
    background = np.clip(background, 0.0, 1.0).astype(np.float32)
    attenuation = np.log(background + _EPS) - np.log(image + _EPS)
    attenuation = np.where(dilated, np.maximum(attenuation, 0.0), 0.0).astype(np.float32)
    geodesic = _geodesic(region, start_point)
    if catheter.any() and mask_dilation_px:
        catheter = cv2.dilate(catheter.astype(np.uint8), _disk(int(mask_dilation_px))).astype(bool)
    return PseudoLayers(
        background=background,
        attenuation=attenuation,
        geodesic=geodesic,
        g_max=float(geodesic[mask].max()),
        contrast_region=region,
        inpainted=inpainted,
        static_alpha=alpha,
        start_point=start_point,
        catheter=catheter & ~mask,
    )


# ---- motion maps on a coarse grid ------------------------------------------------------------
def _keys_weights(n: int, stride: int, pad: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Keys-cubic (a = -0.5) interpolation from coarse nodes at (k - pad) * stride to 0..n-1.

    Returns (index, weight), each `(n, 4)`, and the node count: fine pixel x is
    ``sum_j weight[x, j] * coarse[index[x, j]]``.
    """
    n_coarse = (n - 1 + stride - 1) // stride + 1 + 2 * pad
    s = np.arange(n, dtype=np.float64) / stride + pad
    base = np.floor(s).astype(np.int64)
    index = base[:, None] + np.arange(-1, 3)[None, :]
    d = np.abs(s[:, None] - index)
    a = -0.5
    weight = np.where(
        d <= 1.0,
        (a + 2) * d**3 - (a + 3) * d**2 + 1,
        np.where(d < 2.0, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0),
    )
    return index, weight.astype(np.float32), n_coarse


class _MapMaker:
    """Sampling maps and flows of one layer, solved on a coarse grid and upsampled."""

    def __init__(self, motion: CardiacBreathingMotion, layer: str) -> None:
        self.motion, self.layer = motion, layer
        height, width = motion.height, motion.width
        self.stride = max(1, min(height, width) // 128)
        if self.stride > 1:
            pad = 2
            self.rows = _keys_weights(height, self.stride, pad)
            self.cols = _keys_weights(width, self.stride, pad)
            ys = (np.arange(self.rows[2]) - pad) * float(self.stride)
            xs = (np.arange(self.cols[2]) - pad) * float(self.stride)
        else:
            ys, xs = np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64)
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        self.nodes = np.stack([gx, gy], axis=-1)
        fy, fx = np.mgrid[0:height, 0:width].astype(np.float64)
        self.grid = np.stack([fx, fy], axis=-1)

    def _up(self, field: np.ndarray) -> np.ndarray:
        """Coarse `(ny, nx, 2)` -> fine `(H, W, 2)` float32 (separable gathers; no BLAS threads)."""
        if self.stride == 1:
            return field.astype(np.float32)
        field = field.astype(np.float32)
        (ri, rw, _), (ci, cw, _) = self.rows, self.cols
        tall = sum(field[ri[:, j]] * rw[:, j, None, None] for j in range(4))  # (H, nx, 2)
        return sum(tall[:, ci[:, j]] * cw[None, :, j, None] for j in range(4)).astype(np.float32)

    def canonical(self, t: float) -> np.ndarray:
        """Coarse canonical positions of the nodes at time t."""
        return self.motion.to_canonical(self.nodes, t, self.layer)  # type: ignore[arg-type]

    def sampling_map(self, canonical: np.ndarray) -> np.ndarray:
        """`(H, W, 2)` float32 canonical (x, y) per pixel, from the coarse solution."""
        return (self.grid + self._up(canonical - self.nodes)).astype(np.float32)

    def flow(self, canonical: np.ndarray, t_to: float) -> np.ndarray:
        """F_{t_to}(F_t^{-1}(x)) - x for the frame whose coarse canonical positions are given."""
        return self._up(self.motion.to_frame(canonical, t_to, self.layer) - self.nodes)  # type: ignore[arg-type]


def _remap(source: np.ndarray, coords: np.ndarray, *, nearest: bool = False, border: str = "constant") -> np.ndarray:
    """`source` sampled at `coords` `(H, W, 2)` (x, y); outside it 0 ("constant") or mirrored ("reflect")."""
    return sample_at(source, coords, nearest=nearest, border="constant" if border == "constant" else "reflect101")


# ---- the generator -------------------------------------------------------------------------
def make_pseudo_video(
    image: np.ndarray,
    vessel_mask: np.ndarray,
    *,
    params: PseudoVideoParams | None = None,
    seed: int,
    start_point: tuple[int, int] | None = None,
) -> PseudoVideo:
    """Turn one real frame and its vessel mask into a pseudo-video (method: module docstring).

    Args:
        image: `(H, W)` float in [0, 1], vessels dark (a real frame, full of contrast).
        vessel_mask: `(H, W)` bool (non-zero = vessel), the annotated tree.
        params: how to make it; None = `PseudoVideoParams()`.
        seed: non-negative integer; the same inputs, params and seed give identical outputs.
            It draws the motion when ``params.motion`` is None, the wobble and the noise.
        start_point: (row, col) where contrast enters; None = `choose_start_point`. A point
            off the mask moves to the nearest mask pixel.

    Raises:
        InputError: a non-2-D image, values outside [0, 1], a mask of another size, an empty
            mask, a start point outside the image or a bad seed.
    """
    from scipy import ndimage as ndi

    image, mask = _check_inputs(image, vessel_mask)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise InputError(f"seed must be a non-negative integer; got {seed!r}") from None
    if seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed}")
    params = params if params is not None else PseudoVideoParams()
    if params.motion is None:
        params = replace(params, motion=MotionParams.random(np.random.default_rng([seed, 1])))
    height, width = image.shape

    start: tuple[int, int] | None = None
    if start_point is not None:
        try:
            row, col = (int(v) for v in start_point)
        except (TypeError, ValueError):
            raise InputError(f"start_point must be (row, col) integers; got {start_point!r}") from None
        if not (0 <= row < height and 0 <= col < width):
            raise InputError(f"start_point {(row, col)} lies outside the {height}x{width} image")
        if not mask[row, col]:
            _, (rows, cols) = ndi.distance_transform_edt(~mask, return_indices=True)
            row, col = int(rows[row, col]), int(cols[row, col])
        start = (row, col)

    layers = decompose(
        image,
        mask,
        start_point=start,
        mask_dilation_px=params.mask_dilation_px,
        inpaint_radius=params.inpaint_radius,
        unannotated_vessels=params.unannotated_vessels,
    )
    start = layers.start_point
    motion = CardiacBreathingMotion(params.effective_motion(), height=height, width=width, seed=seed)
    vessel_maps, background_maps = _MapMaker(motion, "vessel"), _MapMaker(motion, "background")
    times = params.times
    count = params.frames
    frames = np.empty((count, height, width), np.float32)
    visible = np.empty((count, height, width), np.uint8)
    anatomy = np.empty((count, height, width), bool)
    forward = np.empty((max(count - 1, 0), height, width, 2), np.float32)
    backward = np.empty_like(forward)
    at_start = np.empty(count, np.float32)

    alpha = layers.static_alpha
    has_static = bool(alpha.any())
    has_catheter = bool(layers.catheter.any())
    inside_view = alpha < 0.5
    mask_u8 = mask.astype(np.uint8)
    # The background is pasted under the static border after warping; precompute the image part.
    static_part = alpha * image
    rng = np.random.default_rng([seed, 2])
    previous = None
    for k, t in enumerate(times):
        t = float(t)
        canonical_v = vessel_maps.canonical(t)
        map_v = vessel_maps.sampling_map(canonical_v)
        map_b = background_maps.sampling_map(background_maps.canonical(t))
        conc = params.concentration(t, layers.geodesic, layers.g_max)
        if has_catheter:
            conc[layers.catheter] = 1.0
        at_start[k] = conc[start]
        optical = _remap(layers.attenuation * conc, map_v)
        frame = _remap(layers.background, map_b, border="reflect") * np.exp(-optical)
        if has_static:
            frame = static_part + (1.0 - alpha) * frame
        frames[k] = frame
        anatomy[k] = _remap(mask_u8, map_v, nearest=True).astype(bool)
        shown = (mask & (conc > params.visible_threshold)).astype(np.uint8)
        visible[k] = _remap(shown, map_v, nearest=True) & inside_view
        if previous is not None:
            t_prev, canonical_prev = previous
            forward[k - 1] = vessel_maps.flow(canonical_prev, t)
            backward[k - 1] = vessel_maps.flow(canonical_v, t_prev)
        previous = (t, canonical_v)

    np.clip(frames, 0.0, 1.0, out=frames)
    if params.dose is not None:
        dose = float(params.dose)
        frames = (rng.poisson(frames.astype(np.float64) * dose) / dose).clip(0.0, 1.0).astype(np.float32)
    video = Video(
        frames,
        fps=params.fps,
        metadata={"source_kind": "pseudo_video", "generator": "angioseg.pseudo_video", "seed": seed, "start_point": [int(start[0]), int(start[1])]},
    )
    return PseudoVideo(
        video=video,
        masks=LabelMap(visible, dict(PSEUDO_VIDEO_LABELS)),
        anatomy=anatomy,
        flow_forward=forward,
        flow_backward=backward,
        params=params,
        start_point=start,
        layers=layers,
        concentration_at_start=at_start,
    )


__all__ = [
    "COMMON_FPS",
    "PSEUDO_VIDEO_LABELS",
    "PseudoLayers",
    "PseudoVideo",
    "PseudoVideoParams",
    "all_vessels_mask",
    "choose_start_point",
    "decompose",
    "make_pseudo_video",
]
