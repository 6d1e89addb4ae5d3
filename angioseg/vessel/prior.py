"""DeNVeR-style vessel prior: Hessian vesselness -> one sequence-wide threshold -> cleaned masks.

DeNVeR (Sec. 3.1 of its paper) preprocesses an angiography sequence in three steps: (1) a
Hessian vesselness filter on the entire sequence, its output scaled to 0-255; (2) ONE Otsu
threshold computed over the intensities of the whole sequence; (3) region growing to remove
noise. Its authors' public code instead uses the Sato filter, a percentile threshold, and keeps
the brightest connected component plus the components passing size, intensity and distance
tests. Both are implemented here, as ``variant="paper"`` and ``variant="public"``.

``variant="paper"``
    1. ``response = clip(raw / scale, 0, 1)`` with ``scale`` the ``scale_percentile``-th
       percentile of the raw response over the whole sequence (default 100: the sequence
       maximum, i.e. the paper's 0-255 scaling divided by 255).
    2. ``threshold = skimage.filters.threshold_otsu(response)`` over all frames' pixels at
       once (256 bins, as for 8-bit 0-255 data).
    3. Region growing = 8-connected hysteresis per frame: seeds are pixels with
       ``response > seed_threshold``, ``seed_threshold = min(seed_factor * threshold,
       (threshold + max) / 2)`` (the cap keeps seeds when ``seed_factor * threshold`` would
       exceed the brightest response); a pixel is kept when ``response > threshold`` and it is
       8-connected, through such pixels, to a seed. Then components (8-connected, per frame)
       smaller than ``min_size`` pixels are dropped.

``variant="public"``
    1. ``response = raw / sequence max``.
    2. ``threshold`` = the ``percentile``-th percentile of the response over the whole sequence;
       candidate pixels are ``response > threshold``.
    3. Per frame, label 8-connected components; keep the *brightest* (highest mean response,
       chosen among components of at least ``min_size`` pixels when there are any), then
       repeatedly add every component with ``size >= min_size``, ``mean response >=
       intensity_fraction * brightest mean`` and distance to the kept set ``<= max_distance``
       (the smallest Euclidean distance between a pixel centre of the component and one of
       the kept set; 8-adjacent components are 1 or sqrt(2) apart), until none is added.

The filter defaults to Sato for both variants. Frangi (``filter="frangi"``) is available, but
with scikit-image's conventions (no sigma normalisation, ``gamma`` fixed at the finest scale)
its response on real angiograms is dominated by sigma = 1 noise and thin edges: on the ARCADE
val frames checked (3) the median Frangi response on annotated vessel pixels is below the 90th
percentile of the frame, and on 20 val frames the "paper" pipeline with Frangi keeps 0.3 % of
the pixels (Dice 0.003 with the annotated major segments) against Dice 0.38 with Sato. (ARCADE
annotates only the major segments, about 3 % of the pixels, so these Dice values are low for
both; they rank filters and settings, they do not measure a segmentation.)

Defaults measured on those 20 frames taken as one sequence (each frame as its own sequence
gives 0.36 for both variants at the defaults): "paper" with ``seed_factor`` 1.5 / 2 / 3 gives
Dice 0.38 / 0.36 / 0.30, ``min_size`` 32 to 128 makes no difference; "public" with
``percentile`` 85 / 90 / 92 / 95 gives 0.33 / 0.36 / 0.38 / 0.30, ``intensity_fraction`` 0.1 to
0.5 and ``max_distance`` 20 to 80 move it by at most 0.03.

Sizes and distances are given for 512 x 512 frames and scaled to the actual frame: ``min_size``
by the area ratio ``H * W / 512**2``, ``max_distance`` by ``sqrt`` of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.filters import threshold_otsu

from angioseg.errors import InputError
from angioseg.vessel.hessian import DEFAULT_SIGMAS, as_frames, frangi, hessian_matrix, sato
from angioseg.vessel.roi import field_of_view

__all__ = ["VesselnessResult", "vesselness_masks", "REFERENCE_SIZE"]

#: Frame side (pixels) that the size and distance parameters refer to.
REFERENCE_SIZE = 512
_FILTERS = {"frangi": frangi, "sato": sato}
_DEFAULT_FILTER = {"paper": "sato", "public": "sato"}
#: 8-connectivity within a frame, none across frames (for labelling a (T, H, W) stack at once).
_EIGHT_IN_FRAME = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_IN_FRAME[1] = True


@dataclass
class VesselnessResult:
    """Vesselness prior of a sequence.

    Attributes:
        response: `(T, H, W)` float32 in [0, 1], the normalised filter response (a soft map).
        masks: `(T, H, W)` bool vessel masks.
        threshold: the sequence-wide threshold on `response` (Otsu for "paper", the
            percentile value for "public").
        scale: raw filter value that maps to 1.0 in `response`.
        filter: "frangi" or "sato".
        variant: "paper" or "public".
        seed_threshold: "paper" only: the region-growing seed level on `response` (else None).
    """

    response: np.ndarray
    masks: np.ndarray
    threshold: float
    scale: float
    filter: str
    variant: str
    seed_threshold: float | None = None


def vesselness_masks(
    frames: Any,
    *,
    filter: str | None = None,
    variant: str = "paper",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    fov: Any = "auto",
    scale_percentile: float = 99.5,
    frangi_gamma: Any = "fov",
    seed_factor: float = 1.5,
    min_size: int = 64,
    percentile: float = 92.0,
    intensity_fraction: float = 0.3,
    max_distance: float = 40.0,
    **filter_options: Any,
) -> VesselnessResult:
    """Vessel masks of a whole sequence, DeNVeR's preprocessing (see the module docstring).

    Args:
        frames: `(T, H, W)` (or one `(H, W)` frame, treated as a 1-frame sequence) numpy array
            or torch tensor, float in [0, 1], vessels dark.
        filter: "frangi" or "sato"; None = "sato" (see the module docstring for why).
        variant: "paper" (Otsu + region growing) or "public" (percentile + component tests).
        device, dtype: passed to the filter.
        scale_percentile: "paper": percentile of the raw response mapped to 1.0 (100 = max).
        seed_factor: "paper": seeds are pixels above ``seed_factor * otsu`` (capped, see above).
        min_size: both: smallest component kept, in pixels at 512 x 512 (scaled by area).
        percentile: "public": threshold percentile of the sequence response.
        intensity_fraction: "public": a component's mean response must reach this fraction of
            the brightest component's.
        max_distance: "public": largest gap (pixels at 512 x 512, scaled) between a component
            and the kept set.
        **filter_options: passed on to `frangi` / `sato` (sigmas, black_ridges, beta, gamma,
            chunk...). ``black_ridges`` defaults to True (dark vessels).

    Returns:
        a `VesselnessResult` with `(T, H, W)` arrays.
    """
    if variant not in _DEFAULT_FILTER:
        raise InputError(f"unknown variant {variant!r}; expected 'paper' or 'public'")
    filter = _DEFAULT_FILTER[variant] if filter is None else filter
    if filter not in _FILTERS:
        raise InputError(f"unknown filter {filter!r}; expected 'frangi' or 'sato'")
    if not (isinstance(min_size, (int, np.integer)) and min_size >= 0):
        raise InputError(f"min_size must be a non-negative integer; got {min_size!r}")
    for name, value, low, high in (
        ("scale_percentile", scale_percentile, 0.0, 100.0),
        ("percentile", percentile, 0.0, 100.0),
        ("intensity_fraction", intensity_fraction, 0.0, 1.0),
    ):
        if not (math.isfinite(float(value)) and low <= float(value) <= high):
            raise InputError(f"{name} must lie in [{low:g}, {high:g}]; got {value}")
    if not (math.isfinite(float(seed_factor)) and seed_factor >= 1.0):
        raise InputError(f"seed_factor must be a number >= 1; got {seed_factor}")
    if not (math.isfinite(float(max_distance)) and max_distance >= 0):
        raise InputError(f"max_distance must be a non-negative number; got {max_distance}")

    video, _ = as_frames(frames, device=device, dtype=dtype)
    filter_options.setdefault("black_ridges", True)
    sigmas = tuple(float(s) for s in filter_options.get("sigmas", DEFAULT_SIGMAS))
    height, width = video.shape[1:]
    import os
    xo = __import__("json").loads(os.environ.get("PRIOR_X", "{}"))
    if isinstance(fov, str) and fov == "auto":
        fov_mask = field_of_view(video.cpu(), sigma=max(sigmas), **xo.get("fov", {}))
    elif fov is None:
        fov_mask = np.ones((height, width), dtype=bool)
    else:
        fov_mask = np.asarray(fov, dtype=bool)
    if filter == "frangi" and "gamma" not in filter_options and frangi_gamma == "fov" and not fov_mask.all():
        mode = xo.get("gmode", "seqmax")
        if mode.startswith("ps"):
            stat = mode[2:]
            parts = []
            opts = {k: v for k, v in filter_options.items() if k != "sigmas"}
            for sg in sigmas:
                h = hessian_matrix(video, sg, device=device, dtype=dtype)
                norm = (h[:, 0] ** 2 + 2 * h[:, 1] ** 2 + h[:, 2] ** 2).sqrt().cpu().numpy()[:, fov_mask]
                g = norm.max() / 2 if stat == "max" else np.percentile(norm, float(stat)) / 2
                parts.append(frangi(video, device=device, dtype=dtype, sigmas=(sg,), gamma=float(max(g, 1e-12)), **opts))
            raw = np.max(parts, axis=0)
            mode = "done"
        h = hessian_matrix(video, sigmas[0], device=device, dtype=dtype)
        norm = (h[:, 0] ** 2 + 2 * h[:, 1] ** 2 + h[:, 2] ** 2).sqrt().cpu().numpy()[:, fov_mask]
        if mode == "done":
            pass
        elif mode == "frame":
            gam = np.maximum(norm.max(axis=1) / 2, 1e-12)
            raw = np.stack([frangi(video[t : t + 1], device=device, dtype=dtype, gamma=float(g), **filter_options)[0] for t, g in enumerate(gam)])
        else:
            g = {"seqmax": norm.max() / 2, "framemed": np.median(norm.max(axis=1)) / 2}[mode] if mode in ("seqmax", "framemed") else np.percentile(norm, float(mode)) / 2
            raw = frangi(video, device=device, dtype=dtype, gamma=float(max(g, 1e-12)), **filter_options)
    else:
        raw = _FILTERS[filter](video, device=device, dtype=dtype, **filter_options)
    area_ratio = height * width / REFERENCE_SIZE**2
    min_pixels = int(round(min_size * area_ratio))

    inside = raw[:, fov_mask]
    scale = float(np.percentile(inside, scale_percentile)) if scale_percentile < 100 else float(inside.max())
    if not scale > 0:  # no structure anywhere: nothing to segment
        zeros = np.zeros(raw.shape, dtype=np.float32)
        return VesselnessResult(zeros, np.zeros(raw.shape, dtype=bool), 0.0, 0.0, filter, variant, None)
    response = np.clip(raw / np.float32(scale), 0.0, 1.0).astype(np.float32, copy=False)
    response[:, ~fov_mask] = 0
    pool = response[:, fov_mask] if xo.get("otsu_fov", True) else response

    if variant == "paper":
        threshold = float(threshold_otsu(pool))
        top = float(response.max())
        seed_threshold = min(seed_factor * threshold, 0.5 * (threshold + top))
        masks = _grow(response, threshold, seed_threshold)
        masks = _drop_small(masks, min_pixels)
        return VesselnessResult(response, masks, threshold, scale, filter, variant, seed_threshold)

    threshold = float(np.percentile(pool, percentile))
    candidates = response > threshold
    masks = np.zeros(response.shape, dtype=bool)
    gap = max_distance * math.sqrt(area_ratio)
    for t in range(response.shape[0]):
        masks[t] = _select_components(candidates[t], response[t], min_pixels, intensity_fraction, gap)
    return VesselnessResult(response, masks, threshold, scale, filter, variant, None)


def _grow(response: np.ndarray, low: float, high: float) -> np.ndarray:
    """8-connected hysteresis per frame: pixels > low connected to a pixel > high."""
    labels, count = ndi.label(response > low, structure=_EIGHT_IN_FRAME)
    if count == 0:
        return np.zeros(response.shape, dtype=bool)
    seeded = np.zeros(count + 1, dtype=bool)
    seeded[np.unique(labels[response > high])] = True
    seeded[0] = False
    return seeded[labels]


def _drop_small(masks: np.ndarray, min_pixels: int) -> np.ndarray:
    """Remove 8-connected (per frame) components with fewer than `min_pixels` pixels."""
    if min_pixels <= 1:
        return masks
    labels, count = ndi.label(masks, structure=_EIGHT_IN_FRAME)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def _select_components(candidates: np.ndarray, response: np.ndarray, min_pixels: int, fraction: float, gap: float) -> np.ndarray:
    """The "public" selection on one frame (see the module docstring).

    Growth is a breadth-first search over components: each round adds every eligible component
    within `gap` of a component added in the previous round. Distances between components are
    exact Euclidean distances between pixel centres, found with k-d trees over their boundary
    pixels (the pixel of a set nearest to any outside point always has a 4-neighbour outside it).
    """
    labels, count = ndi.label(candidates, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros(candidates.shape, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    means = np.asarray(ndi.mean(response, labels, np.arange(1, count + 1)), dtype=np.float64)
    large = sizes >= max(min_pixels, 1)
    pool = np.flatnonzero(large) if large.any() else np.arange(count)
    brightest = int(pool[np.argmax(means[pool])])
    eligible = large & (means >= fraction * means[brightest])
    eligible[brightest] = False
    kept = np.zeros(count + 1, dtype=bool)  # indexed by label; 0 = background, never kept
    kept[brightest + 1] = True
    if eligible.any():
        wanted = eligible.copy()
        wanted[brightest] = True
        points = _boundary_points(candidates, labels, wanted)
        bound = gap * (1 + 1e-9) + 1e-9  # distances equal to gap count as within it
        frontier = [brightest]
        remaining = set(np.flatnonzero(eligible).tolist())
        while frontier and remaining:
            tree = cKDTree(np.concatenate([points[c] for c in frontier]))
            frontier = [
                c for c in sorted(remaining) if np.isfinite(tree.query(points[c], k=1, distance_upper_bound=bound)[0]).any()
            ]
            remaining.difference_update(frontier)
            kept[[c + 1 for c in frontier]] = True
    return kept[labels]


def _boundary_points(candidates: np.ndarray, labels: np.ndarray, wanted: np.ndarray) -> dict[int, np.ndarray]:
    """Component index (label - 1) -> `(n, 2)` coordinates of its pixels with a 4-neighbour
    outside the candidate mask (or on the frame edge), for the wanted components."""
    interior = ndi.binary_erosion(candidates, structure=ndi.generate_binary_structure(2, 1))
    edge = candidates & ~interior
    edge &= wanted[np.maximum(labels, 1) - 1] & (labels > 0)
    coords = np.argwhere(edge)
    owner = labels[edge] - 1
    order = np.argsort(owner, kind="stable")
    owner, coords = owner[order], coords[order].astype(np.float64)
    cuts = np.flatnonzero(np.diff(owner)) + 1
    return {int(group[0]): pts for group, pts in zip(np.split(owner, cuts), np.split(coords, cuts))}
