"""Analytic cardiac + breathing motion, shared by the phantom and the real-anatomy videos.

Each layer (``"vessel"`` for the heart surface with its coronaries and the catheter,
``"background"`` for ribs, spine and diaphragm) has a forward deformation from canonical
coordinates u to frame coordinates x at time t (seconds)::

    x = F_t(u) = u + d_t(u)

    d_t^background(u) = b(t) e_breath                         (breathing: a translation)
    d_t^vessel(u)     = d_t^background(u)                     (the heart rides on the breath)
                        + a_c w_c(t) (c - u) g(u)             (contraction towards the centre c)
                        + theta w_c(t) g(u) R90 (u - c)      (systolic twist)
                        + w_n(t) sum_k v_k exp(-|u - p_k|^2 / 2 s_k^2)   (non-rigid wobble)

with g(u) = exp(-|u - c|^2 / 2 R^2). Every waveform w(t) is zero at t = 0, so frame 0 is the
canonical scene itself. The waveforms are periodic: the cardiac one has a fast systole
(the first 35 % of the beat) and a slow diastole at the heart rate; breathing is a raised
cosine at the breathing period.

Rendering needs the inverse map u = F_t^{-1}(x), found by the fixed-point iteration
u_{k+1} = x - d_t(u_k), which converges because |grad d| < 1 for the amplitudes allowed here.
The exact motion between consecutive frames follows from the maps:

    forward flow  (t -> t+1, on frame t's grid):   f(x) = F_{t+1}(F_t^{-1}(x)) - x
    backward flow (t+1 -> t, on frame t+1's grid): b(x) = F_t(F_{t+1}^{-1}(x)) - x

so frame t+1 = frame t sampled at x + b(x) (backward warping), and frame t sampled at x
matches frame t+1 at x + f(x). Flows are `(H, W, 2)` float32 in pixels, (dx, dy), the OpenCV
layout. All coordinates here are (x, y) in pixels with pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Layer = Literal["vessel", "background"]

#: Fraction of the beat spent in systole (contraction); diastole takes the rest.
SYSTOLE_FRACTION = 0.35


@dataclass(frozen=True)
class MotionParams:
    """Motion parameters. Lengths are in pixels at a 512-pixel frame and scale with the size.

    Attributes:
        heart_rate_bpm: beats per minute, 60-100.
        cardiac_phase: phase of the beat at t = 0, in [0, 1).
        contraction: fractional shrink towards the heart centre at end-systole, 0.02-0.10.
        twist_deg: systolic rotation about the heart centre in degrees, 0-6.
        wobble_px: amplitude of the random non-rigid part, 0-8 px.
        heart_centre: (x, y) of the heart centre as fractions of width and height.
        heart_radius: radius R of the moving region as a fraction of the frame size, 0.25-0.6.
        breathing_period_s: seconds per breath, 3-6.
        breathing_px: peak breathing translation, 0-20 px (mostly vertical).
        breathing_angle_deg: direction of the breathing translation from the +y axis, -30..30.
        breathing_phase: phase of the breath at t = 0, in [0, 1).
        background_breathing_factor: how much of the breathing the background layer follows,
            0-1 (ribs move less than the diaphragm-borne heart).
    """

    heart_rate_bpm: float = 75.0
    cardiac_phase: float = 0.0
    contraction: float = 0.06
    twist_deg: float = 3.0
    wobble_px: float = 3.0
    heart_centre: tuple[float, float] = (0.5, 0.55)
    heart_radius: float = 0.4
    breathing_period_s: float = 4.0
    breathing_px: float = 8.0
    breathing_angle_deg: float = 0.0
    breathing_phase: float = 0.0
    background_breathing_factor: float = 0.6

    @classmethod
    def random(cls, rng: np.random.Generator) -> "MotionParams":
        """Draw parameters uniformly from the documented ranges."""
        return cls(
            heart_rate_bpm=float(rng.uniform(60, 100)),
            cardiac_phase=float(rng.uniform(0, 1)),
            contraction=float(rng.uniform(0.03, 0.09)),
            twist_deg=float(rng.uniform(0, 5)),
            wobble_px=float(rng.uniform(1, 6)),
            heart_centre=(float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.45, 0.65))),
            heart_radius=float(rng.uniform(0.3, 0.5)),
            breathing_period_s=float(rng.uniform(3, 6)),
            breathing_px=float(rng.uniform(2, 15)),
            breathing_angle_deg=float(rng.uniform(-30, 30)),
            breathing_phase=float(rng.uniform(0, 1)),
            background_breathing_factor=float(rng.uniform(0.3, 0.8)),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def cardiac_waveform(phase: np.ndarray | float) -> np.ndarray:
    """Contraction in [0, 1] over one beat: sin^2 rise during systole, cos^2 fall after.

    phase in [0, 1) (any real, taken modulo 1); 0 = end-diastole, SYSTOLE_FRACTION = end-systole.
    """
    p = np.mod(phase, 1.0)
    rising = np.sin(0.5 * np.pi * p / SYSTOLE_FRACTION) ** 2
    falling = np.cos(0.5 * np.pi * (p - SYSTOLE_FRACTION) / (1.0 - SYSTOLE_FRACTION)) ** 2
    return np.where(p < SYSTOLE_FRACTION, rising, falling)


class CardiacBreathingMotion:
    """The deformation model above, for frames of `height` x `width` pixels.

    The random wobble centres and vectors are drawn from `seed`; the same parameters and seed
    always give the same motion.
    """

    def __init__(self, params: MotionParams, *, height: int, width: int, seed: int, num_wobbles: int = 4) -> None:
        self.params = params
        self.height = int(height)
        self.width = int(width)
        self.scale = min(self.height, self.width) / 512.0
        rng = np.random.default_rng(seed)
        size = min(self.height, self.width)
        self.centre = np.array([params.heart_centre[0] * self.width, params.heart_centre[1] * self.height])
        self.radius = params.heart_radius * size
        self.wobble_centres = self.centre + rng.normal(0, 0.5, (num_wobbles, 2)) * self.radius
        self.wobble_sigmas = rng.uniform(0.25, 0.5, num_wobbles) * self.radius
        directions = rng.normal(0, 1, (num_wobbles, 2))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True) + 1e-12
        self.wobble_vectors = directions * params.wobble_px * self.scale
        self.wobble_phase_shift = float(rng.uniform(0.1, 0.4))
        angle = np.deg2rad(params.breathing_angle_deg)
        self.breath_direction = np.array([np.sin(angle), np.cos(angle)])

    # ---- waveforms (each 0 at t = 0) -------------------------------------------------------
    def _cardiac(self, t: float) -> float:
        beats = self.params.heart_rate_bpm / 60.0
        p0 = self.params.cardiac_phase
        return float(cardiac_waveform(p0 + beats * t) - cardiac_waveform(p0))

    def _wobble(self, t: float) -> float:
        beats = self.params.heart_rate_bpm / 60.0
        p0 = self.params.cardiac_phase + self.wobble_phase_shift
        return float(cardiac_waveform(p0 + beats * t) - cardiac_waveform(p0))

    def _breathing(self, t: float) -> float:
        p0 = self.params.breathing_phase
        wave = lambda p: 0.5 * (1.0 - np.cos(2.0 * np.pi * p))  # noqa: E731
        return float(wave(p0 + t / self.params.breathing_period_s) - wave(p0))

    # ---- maps ------------------------------------------------------------------------------
    def displacement(self, points: np.ndarray, t: float, layer: Layer) -> np.ndarray:
        """d_t(u) for canonical points `(..., 2)` (x, y) -> displacement `(..., 2)` in pixels."""
        points = np.asarray(points, dtype=np.float64)
        breath = self._breathing(t) * self.params.breathing_px * self.scale * self.breath_direction
        if layer == "background":
            return np.broadcast_to(breath * self.params.background_breathing_factor, points.shape).copy()
        if layer != "vessel":
            raise ValueError(f"unknown layer {layer!r}; expected 'vessel' or 'background'")
        rel = points - self.centre
        gauss = np.exp(-(rel**2).sum(-1, keepdims=True) / (2.0 * self.radius**2))
        wave = self._cardiac(t)
        contraction = -self.params.contraction * wave * rel * gauss
        theta = np.deg2rad(self.params.twist_deg) * wave
        twist = theta * gauss * np.stack([-rel[..., 1], rel[..., 0]], axis=-1)
        wobble = np.zeros_like(points)
        w = self._wobble(t)
        if w != 0.0:
            for centre, sigma, vector in zip(self.wobble_centres, self.wobble_sigmas, self.wobble_vectors):
                weight = np.exp(-((points - centre) ** 2).sum(-1, keepdims=True) / (2.0 * sigma**2))
                wobble += w * weight * vector
        return breath + contraction + twist + wobble

    def to_frame(self, canonical: np.ndarray, t: float, layer: Layer) -> np.ndarray:
        """F_t(u) = u + d_t(u): canonical points `(..., 2)` -> frame points `(..., 2)`."""
        canonical = np.asarray(canonical, dtype=np.float64)
        return canonical + self.displacement(canonical, t, layer)

    def to_canonical(
        self, frame_points: np.ndarray, t: float, layer: Layer, *, tolerance: float = 1e-5, max_iterations: int = 60
    ) -> np.ndarray:
        """F_t^{-1}(x) by the fixed point u <- x - d_t(u); exact to `tolerance` pixels."""
        x = np.asarray(frame_points, dtype=np.float64)
        u = x - self.displacement(x, t, layer)
        for _ in range(max_iterations):
            u_next = x - self.displacement(u, t, layer)
            change = float(np.abs(u_next - u).max()) if u.size else 0.0
            u = u_next
            if change < tolerance:
                break
        return u

    def pixel_grid(self) -> np.ndarray:
        """`(H, W, 2)` float64 (x, y) coordinates of every pixel centre."""
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        return np.stack([xs, ys], axis=-1)

    def sampling_map(self, t: float, layer: Layer) -> np.ndarray:
        """`(H, W, 2)` float32: canonical (x, y) seen by each pixel of the frame at time t.

        Rendering a layer is `cv2.remap(canonical_image, map[..., 0], map[..., 1], ...)`.
        """
        return self.to_canonical(self.pixel_grid(), t, layer).astype(np.float32)

    def flows(self, times: np.ndarray, layer: Layer = "vessel") -> tuple[np.ndarray, np.ndarray]:
        """Exact forward and backward flows between consecutive times.

        Returns:
            forward: `(T-1, H, W, 2)` float32, (dx, dy) from frame t to t+1 on frame t's grid.
            backward: `(T-1, H, W, 2)` float32, (dx, dy) from frame t+1 to t on frame t+1's grid.
        """
        grid = self.pixel_grid()
        times = np.asarray(times, dtype=np.float64)
        count = max(len(times) - 1, 0)
        forward = np.zeros((count, self.height, self.width, 2), np.float32)
        backward = np.zeros_like(forward)
        canonical_prev = self.to_canonical(grid, float(times[0]), layer) if len(times) else None
        for i in range(count):
            canonical_next = self.to_canonical(grid, float(times[i + 1]), layer)
            forward[i] = self.to_frame(canonical_prev, float(times[i + 1]), layer) - grid
            backward[i] = self.to_frame(canonical_next, float(times[i]), layer) - grid
            canonical_prev = canonical_next
        return forward, backward

