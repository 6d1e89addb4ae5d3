"""Random coronary-like vessel trees and their rasterisation, for the phantom generator.

A tree is a list of `Segment`s, each a densely sampled centreline with a radius and the
geodesic distance from the ostium (arc length along the tree) at every point. Trees are grown
in 512-pixel units and scaled to the frame size afterwards, so the same seed gives the same
anatomy at every size.

Growth, for one segment: a walk of 1-pixel steps whose heading follows a smooth random
curvature (an Ornstein-Uhlenbeck process, the tortuosity), an optional constant curvature for
the first part of a main artery (the LCx in the AV groove, the C-shaped RCA), and a steering
term that bends vessels leaving the heart region back along its contour. The radius tapers
exponentially, and at random intervals proportional to the radius a side branch leaves:
``r_parent^3 = r_continuation^3 + r_branch^3`` (Murray's law) with an asymmetric split, and
angles from Murray's minimum-work optimum (plus noise, the side branch clipped to 25-75
degrees) so thin side branches leave steeply and the continuation barely kinks. Growth stops
where the radius falls below the minimum or the walk leaves the canvas.

Rasterisation (`tube_footprint`) uses a k-d tree over the dense centreline points, queried
only at pixels near the centreline; no per-pixel Python loops.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

#: Growth step in pixels at 512.
STEP = 1.0
#: Hard caps that keep pathological parameter draws bounded.
MAX_SEGMENTS = 500
MAX_TOTAL_STEPS = 60_000
MAX_SEGMENT_STEPS = 1_500


@dataclass
class Segment:
    """One vessel segment, from its branch point to its tip.

    Attributes:
        points: `(N, 2)` float64 centreline (x, y) in pixels.
        radii: `(N,)` lumen radius in pixels at each point.
        arc: `(N,)` geodesic distance from the ostium along the tree, in pixels.
        parent: index of the segment it branches from; -1 for the root.
        parent_point: index into the parent's points where it branches (before resampling:
            only used to find siblings sharing a branch point).
        generation: 0 for the root, +1 per branching.
    """

    points: np.ndarray
    radii: np.ndarray
    arc: np.ndarray
    parent: int = -1
    parent_point: int = -1
    generation: int = 0

    @property
    def length(self) -> float:
        return float(self.arc[-1] - self.arc[0])


@dataclass
class VesselTree:
    """A grown tree: its segments, the ostium and the heading of the root at the ostium."""

    segments: list[Segment]
    ostium: np.ndarray
    ostium_heading: float
    metadata: dict = field(default_factory=dict)

    @property
    def max_arc(self) -> float:
        return max(float(s.arc.max()) for s in self.segments)

    @property
    def total_length(self) -> float:
        return float(sum(s.length for s in self.segments))

    def transformed(self, scale: float, offset: tuple[float, float] = (0.0, 0.0)) -> "VesselTree":
        """Every length multiplied by `scale`, then points shifted by `offset` (x, y)."""
        off = np.asarray(offset, dtype=np.float64)
        segments = [
            Segment(s.points * scale + off, s.radii * scale, s.arc * scale, s.parent, s.parent_point, s.generation)
            for s in self.segments
        ]
        return VesselTree(segments, self.ostium * scale + off, self.ostium_heading, dict(self.metadata))

    def pruned(self, min_radius: float) -> "VesselTree":
        """Cut every segment where its radius first falls below `min_radius`; drop orphans.

        Radii only decrease along a segment and children start thinner than their parent, so
        the result is still a connected tree.
        """
        kept: list[Segment] = []
        new_index: dict[int, int] = {}
        for index, seg in enumerate(self.segments):
            if seg.parent >= 0 and seg.parent not in new_index:
                continue
            below = np.nonzero(seg.radii < min_radius)[0]
            end = int(below[0]) if below.size else len(seg.radii)
            if end < 2:
                continue
            parent = new_index[seg.parent] if seg.parent >= 0 else -1
            new_index[index] = len(kept)
            kept.append(
                Segment(seg.points[:end], seg.radii[:end], seg.arc[:end], parent, seg.parent_point, seg.generation)
            )
        return VesselTree(kept, self.ostium, self.ostium_heading, dict(self.metadata))


def resample_polyline(points: np.ndarray, spacing: float, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Points (and per-point values) resampled at equal arc-length `spacing` along a polyline."""
    points = np.asarray(points, dtype=np.float64)
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(steps)])
    total = cumulative[-1]
    count = max(int(math.ceil(total / spacing)) + 1, 2)
    where = np.linspace(0.0, total, count)
    out = [np.stack([np.interp(where, cumulative, points[:, 0]), np.interp(where, cumulative, points[:, 1])], axis=1)]
    out.extend(np.interp(where, cumulative, np.asarray(v, dtype=np.float64)) for v in values)
    return tuple(out)


# ---- growth ---------------------------------------------------------------------------------


@dataclass
class _Job:
    start: np.ndarray
    heading: float
    radius: float
    arc: float
    parent: int
    parent_point: int
    generation: int
    bias: float = 0.0  # constant curvature (rad/px) while the budget lasts
    bias_budget: float = 0.0  # total turn (rad) the bias may add
    max_length: float = float("inf")
    branching: bool = True
    children: list["_Job"] = field(default_factory=list)  # grown after this one, in order


def _murray_angles(alpha: float) -> tuple[float, float]:
    """(continuation, branch) angles in radians minimising pumping + volume work for r2 = alpha r1."""
    r1 = (1.0 + alpha**3) ** (-1.0 / 3.0)  # with r_parent = 1
    r2 = alpha * r1
    cos1 = (1.0 + r1**4 - r2**4) / (2.0 * r1**2)
    cos2 = (1.0 + r2**4 - r1**4) / (2.0 * r2**2)
    return math.acos(max(-1.0, min(1.0, cos1))), math.acos(max(-1.0, min(1.0, cos2)))


class TreeGrower:
    """Grows one tree; see the module docstring. All lengths in pixels at 512."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        min_radius: float,
        taper_length: float,
        branch_spacing: float,
        branch_asymmetry: float,
        tortuosity: float,
        region_centre: tuple[float, float],
        region_radii: tuple[float, float],
        bounds: tuple[float, float, float, float],
    ) -> None:
        self.rng = rng
        self.min_radius = float(min_radius)
        self.taper_length = float(taper_length)
        self.branch_spacing = float(branch_spacing)
        self.branch_asymmetry = float(branch_asymmetry)
        self.tortuosity = float(tortuosity)
        self.centre = np.asarray(region_centre, dtype=np.float64)
        self.region_radii = np.asarray(region_radii, dtype=np.float64)
        self.bounds = bounds
        self.segments: list[Segment] = []
        self.total_steps = 0

    def _spacing(self, radius: float) -> float:
        return float(self.branch_spacing * max(radius, 1.2) * self.rng.uniform(0.4, 1.6) + 4.0)

    def _grow_one(self, job: _Job) -> tuple[Segment, list[_Job]]:
        rng = self.rng
        pos = job.start.astype(np.float64).copy()
        theta = float(job.heading)
        radius = float(job.radius)
        # Exponential taper with a decay length proportional to the starting radius: trunks
        # narrow slowly over hundreds of pixels, small branches die out within tens.
        decay = self.taper_length * max(job.radius, 0.5) * float(rng.uniform(0.75, 1.25))
        # Thin vessels are somewhat more tortuous than trunks.
        sigma = self.tortuosity * 0.010 * (1.0 + 0.6 / math.sqrt(max(job.radius, 0.5)))
        corr = float(rng.uniform(8.0, 20.0))
        a = math.exp(-STEP / corr)
        kappa = float(rng.normal(0.0, sigma))
        pending_turn = 0.0
        bias_left = job.bias_budget
        next_branch = self._spacing(radius) * rng.uniform(0.3, 1.0) if job.branching else float("inf")
        last_side = int(rng.choice([-1, 1]))
        points = [pos.copy()]
        radii = [radius]
        arcs = [job.arc]
        children: list[_Job] = []
        s = 0.0
        x0, y0, x1, y1 = self.bounds
        while len(points) < MAX_SEGMENT_STEPS and s < job.max_length:
            kappa = a * kappa + sigma * math.sqrt(1.0 - a * a) * float(rng.normal())
            # Steering: a vessel heading out of the heart region (an ellipse: coronaries project
            # inside the heart's outline) bends along its contour and tapers faster there.
            rel = (pos - self.centre) / self.region_radii
            q = float(np.hypot(*rel))
            steer = 0.0
            direction = np.array([math.cos(theta), math.sin(theta)])
            if q > 0.8:
                normal = rel / self.region_radii
                normal /= float(np.hypot(*normal)) + 1e-12
                radial = float(direction @ normal)
                if radial > 0:
                    side = math.copysign(1.0, -(direction[0] * normal[1] - direction[1] * normal[0]))
                    steer = side * 0.03 * min((q - 0.8) / 0.2, 3.0) * radial
                if q > 1.0:
                    radius *= math.exp(-STEP * (q - 1.0) * 4.0 / decay)
            bias = 0.0
            if bias_left > 0:
                bias = job.bias
                bias_left -= abs(bias) * STEP
            turn = pending_turn * 0.3
            pending_turn -= turn
            theta += (bias + kappa + steer) * STEP + turn
            pos = pos + STEP * np.array([math.cos(theta), math.sin(theta)])
            s += STEP
            radius *= math.exp(-STEP / decay)
            if s >= next_branch:
                # Main arteries keep most of their flow; deeper generations split more evenly.
                main = job.generation <= 1
                mean_alpha = self.branch_asymmetry * (0.8 if main else 1.0)
                alpha = float(np.clip(mean_alpha * math.exp(rng.normal(0.0, 0.35)), 0.15, 0.7 if main else 0.95))
                r1 = radius * (1.0 + alpha**3) ** (-1.0 / 3.0)
                r2 = alpha * r1
                phi1, phi2 = _murray_angles(alpha)
                phi2 = float(np.clip(phi2 + rng.normal(0.0, math.radians(8.0)), math.radians(25), math.radians(75)))
                phi1 = float(np.clip(phi1 + rng.normal(0.0, math.radians(3.0)), 0.0, math.radians(40)))
                # Side: prefer the heart-centre side, and alternate.
                toward = direction[0] * (self.centre[1] - pos[1]) - direction[1] * (self.centre[0] - pos[0])
                p_plus = 0.5 + (0.12 if toward > 0 else -0.12) + (-0.15 if last_side > 0 else 0.15)
                side = 1 if rng.uniform() < p_plus else -1
                last_side = side
                if r2 >= self.min_radius:
                    children.append(
                        _Job(
                            start=pos.copy(),
                            heading=theta + side * phi2,
                            radius=r2,
                            arc=job.arc + s,
                            parent=-1,
                            parent_point=len(points),
                            generation=job.generation + 1,
                        )
                    )
                radius = r1
                pending_turn -= side * phi1
                next_branch = s + self._spacing(radius) * (1.2 if main else 1.0)
            points.append(pos.copy())
            radii.append(radius)
            arcs.append(job.arc + s)
            if radius < self.min_radius:
                break
            if not (x0 <= pos[0] <= x1 and y0 <= pos[1] <= y1):
                break
        self.total_steps += len(points)
        seg = Segment(np.array(points), np.array(radii), np.array(arcs), job.parent, job.parent_point, job.generation)
        return seg, children + job.children

    def grow(self, roots: list[_Job]) -> list[Segment]:
        queue: deque[_Job] = deque(roots)
        while queue and len(self.segments) < MAX_SEGMENTS and self.total_steps < MAX_TOTAL_STEPS:
            job = queue.popleft()
            seg, children = self._grow_one(job)
            index = len(self.segments)
            self.segments.append(seg)
            for child in children:
                child.parent = index
                if child.parent_point < 0:  # pre-planned split at the segment's end
                    child.parent_point = len(seg.points) - 1
                    child.start = seg.points[-1].copy()
                    child.arc = float(seg.arc[-1])
                queue.append(child)
        return self.segments


def grow_coronary_tree(
    rng: np.random.Generator,
    *,
    num_main: int,
    root_radius: float,
    min_radius: float,
    left_main_length: float,
    taper_length: float,
    branch_spacing: float,
    branch_asymmetry: float,
    tortuosity: float,
    rotation_deg: float,
    heart_centre: tuple[float, float],
    bounds: tuple[float, float, float, float],
) -> VesselTree:
    """Grow a left-coronary-like (num_main 2-3) or right-coronary-like (num_main 1) tree.

    Everything is in pixels at 512 (x right, y down; headings are atan2(dy, dx), so a
    positive curvature turns clockwise on screen). `heart_centre` is (x, y) in pixels.
    """
    rot = math.radians(rotation_deg)
    c, s = math.cos(rot), math.sin(rot)
    centre = np.asarray(heart_centre, dtype=np.float64)

    def place(dx: float, dy: float) -> np.ndarray:
        return centre + 512.0 * np.array([c * dx - s * dy, s * dx + c * dy])

    grower = TreeGrower(
        rng,
        min_radius=min_radius,
        taper_length=taper_length,
        branch_spacing=branch_spacing,
        branch_asymmetry=branch_asymmetry,
        tortuosity=tortuosity,
        region_centre=tuple(centre),
        region_radii=(0.5 * 512.0, 0.46 * 512.0),
        bounds=bounds,
    )
    deg = math.radians
    if num_main == 1:
        # RCA: from an ostium above the heart centre, a C-shaped course down the left of the
        # image, turning right at the bottom (towards the crux / posterior descending).
        ostium = place(rng.uniform(-0.02, 0.10), rng.uniform(-0.34, -0.24))
        heading = deg(rng.uniform(110, 150)) + rot
        root = _Job(
            start=ostium,
            heading=heading,
            radius=root_radius,
            arc=0.0,
            parent=-1,
            parent_point=-1,
            generation=0,
            bias=-1.0 / rng.uniform(190, 300),
            bias_budget=deg(rng.uniform(110, 170)),
        )
        roots = [root]
        kind = "right"
    else:
        # Left main from an ostium up and left of the heart centre, splitting into the LAD
        # (towards the apex), the LCx (wrapping round in the AV groove) and maybe a ramus.
        ostium = place(rng.uniform(-0.24, -0.12), rng.uniform(-0.32, -0.20))
        heading = deg(rng.uniform(10, 50)) + rot
        weights = [rng.uniform(0.45, 0.6)]  # share of r^3 going to the LAD
        if num_main == 3:
            weights.append(rng.uniform(0.12, 0.22))  # ramus
        weights.append(1.0 - sum(weights))  # LCx takes the rest
        cubes = np.array(weights) * root_radius**3
        radii = np.cbrt(cubes)
        lad = _Job(
            start=ostium, heading=heading + deg(rng.uniform(15, 40)), radius=float(radii[0]), arc=0.0,
            parent=-1, parent_point=-1, generation=1,
            bias=rng.choice([-1, 1]) / rng.uniform(400, 1000), bias_budget=deg(40),
        )
        children = [lad]
        if num_main == 3:
            children.append(
                _Job(
                    start=ostium, heading=heading + deg(rng.uniform(-12, 8)), radius=float(radii[1]), arc=0.0,
                    parent=-1, parent_point=-1, generation=1,
                )
            )
        children.append(
            _Job(
                start=ostium, heading=heading - deg(rng.uniform(30, 60)), radius=float(radii[-1]), arc=0.0,
                parent=-1, parent_point=-1, generation=1,
                bias=1.0 / rng.uniform(110, 200), bias_budget=deg(rng.uniform(70, 120)),
            )
        )
        root = _Job(
            start=ostium, heading=heading, radius=root_radius, arc=0.0, parent=-1, parent_point=-1,
            generation=0, max_length=left_main_length, branching=False, children=children,
        )
        roots = [root]
        kind = "left"
    # The taper of the left main is slight; grow it without branching and hand over.
    segments = grower.grow(roots)
    return VesselTree(segments, ostium, heading, {"kind": kind, "segments": len(segments)})


# ---- rasterisation -----------------------------------------------------------------------------


def chord_pixel_average(distance: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Chord 2 sqrt(r^2 - d^2) through a cylinder, averaged over a 1-pixel box across the axis.

    Averaging keeps the projected area (pi r^2 per unit length) exact for sub-pixel vessels
    instead of aliasing them into a dotted line.
    """
    r = np.maximum(radius, 1e-6)

    def antiderivative(u: np.ndarray) -> np.ndarray:
        v = np.clip(u, -r, r)
        return v * np.sqrt(np.maximum(r * r - v * v, 0.0)) + r * r * np.arcsin(v / r)

    return antiderivative(distance + 0.5) - antiderivative(distance - 0.5)


def chord_exact(distance: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Chord length 2 sqrt(r^2 - d^2) (0 outside the cylinder)."""
    return 2.0 * np.sqrt(np.maximum(radius * radius - distance * distance, 0.0))


@dataclass
class Tube:
    """A centreline with radius and arc length, and its k-d tree."""

    points: np.ndarray
    radii: np.ndarray
    arc: np.ndarray
    tree: cKDTree

    @classmethod
    def from_arrays(cls, points: np.ndarray, radii: np.ndarray, arc: np.ndarray, spacing: float = 0.3) -> "Tube":
        pts, rad, arcs = resample_polyline(points, spacing, radii, arc)
        return cls(pts, rad, arcs, cKDTree(pts))

    def candidate_pixels(self, shape: tuple[int, int], reach: float, chunk: int = 40) -> np.ndarray:
        """`(M, 2)` int (row, col) of canvas pixels within about `reach` + radius of the centreline."""
        height, width = shape
        pts = self.points
        boxes = []
        for start in range(0, len(pts), chunk):
            part = pts[start : start + chunk + 1]
            pad = float(self.radii[start : start + chunk + 1].max()) + reach + 1.0
            xa = max(int(math.floor(part[:, 0].min() - pad)), 0)
            xb = min(int(math.ceil(part[:, 0].max() + pad)), width - 1)
            ya = max(int(math.floor(part[:, 1].min() - pad)), 0)
            yb = min(int(math.ceil(part[:, 1].max() + pad)), height - 1)
            if xa <= xb and ya <= yb:
                boxes.append((ya, yb, xa, xb))
        if not boxes:
            return np.zeros((0, 2), np.int64)
        top = min(b[0] for b in boxes)
        left = min(b[2] for b in boxes)
        marks = np.zeros((max(b[1] for b in boxes) - top + 1, max(b[3] for b in boxes) - left + 1), bool)
        for ya, yb, xa, xb in boxes:
            marks[ya - top : yb - top + 1, xa - left : xb - left + 1] = True
        rr, cc = np.nonzero(marks)
        return np.stack([rr + top, cc + left], axis=1).astype(np.int64)

    def query(self, pixels: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
        """Distance to the centreline and index of the nearest point (index -1 beyond reach)."""
        bound = float(self.radii.max()) + reach
        xy = pixels[:, ::-1].astype(np.float64)
        dist, index = self.tree.query(xy, distance_upper_bound=bound)
        index = np.where(np.isfinite(dist), index, -1)
        return dist, index
