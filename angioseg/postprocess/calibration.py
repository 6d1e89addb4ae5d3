"""Choosing a threshold for one run from the run itself (no labels).

An unsupervised probability map (DeNVeR's) ranks vessel pixels well, but where its scale sits
changes from run to run, so a fixed threshold is timid on one run and generous on the next.
`run_threshold` reads the run's own probabilities instead:

1. Otsu's threshold on the log-odds of the probabilities of every frame inside the field of
   view, z = log(p / (1 − p)) clipped to [−10, 10]: the z that maximises the between-class
   variance ``ω₀ ω₁ (μ₀ − μ₁)²`` of the histogram (256 bins), back to t = σ(z), bounded to
   [`floor`, `ceiling`]. On the log-odds because a sigmoid output piles the background up
   against 0 and spreads the vessels thinly over (0, 1): on the probabilities themselves Otsu
   lands in the vessels' spread and is as timid as the fixed 0.3 (measured in
   docs/methods/denver.md);
2. never an empty run where the prior finds vessels: if no pixel reaches t while the prior
   marks A pixels, t drops to the A-th largest probability (the prior's own area as anchor);
3. never more than `prior_multiple` (2) times the prior's own area A: if more pixels reach t,
   t rises to the probability of the (2A)-th largest. Otsu's split of the log-odds is not
   always the vessels' edge: on runs whose background log-odds are themselves spread (two
   dca1 evaluation runs of issue 17, thresholds 0.005 and 0.009) it cut inside the background
   and marked 7-12x the vessel area (Dice 0.15 and 0.23; 0.59 and 0.74 with the cap). On the
   18 development runs (dca1 images 1-18, seed 17) the cap gave 0.588 and 0.568 against 0.581
   and 0.559 without it, and fixed thresholds 0.3 / 0.1 gave 0.560 / 0.587 and 0.551 / 0.571;
   caps of 3 and 5 A changed less. The Hessian prior is a label-free estimate of the vessel
   area (0.8-4 % of the pixels on those runs, against 0.5-6 % true);
4. never more than `max_fraction` (one half) of the field of view: if more pixels reach t, t
   rises to the probability above which exactly that share lies.
"""

from __future__ import annotations

import numpy as np

from angioseg.errors import InputError

#: Histogram bins of Otsu's threshold on probabilities in [0, 1].
BINS = 256
#: Log-odds are clipped to ±LOGIT_RANGE before Otsu's threshold.
LOGIT_RANGE = 10.0


def logit_otsu_threshold(probabilities: np.ndarray) -> float:
    """Otsu's threshold on z = log(p / (1 − p)) in [−10, 10] (mapped to [0, 1] for the
    histogram), returned as a probability σ(z*)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    z = np.clip(np.log(p) - np.log1p(-p), -LOGIT_RANGE, LOGIT_RANGE)
    level = otsu_threshold((z + LOGIT_RANGE) / (2.0 * LOGIT_RANGE)) * 2.0 * LOGIT_RANGE - LOGIT_RANGE
    return float(1.0 / (1.0 + np.exp(-level)))


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of `values` in [0, 1] (any shape): the bin edge that maximises the
    between-class variance ω₀ω₁(μ₀ − μ₁)² over a 256-bin histogram (the middle of the edges
    that tie, as across an empty gap between two modes); 0.5 for a constant input."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise InputError("Otsu's threshold needs at least one value")
    counts, edges = np.histogram(np.clip(values, 0.0, 1.0), bins=BINS, range=(0.0, 1.0))
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight_low = np.cumsum(counts)[:-1].astype(np.float64)
    weight_high = values.size - weight_low
    sum_low = np.cumsum(counts * centres)[:-1]
    valid = (weight_low > 0) & (weight_high > 0)
    if not valid.any():
        return 0.5
    mean_low = np.where(valid, sum_low / np.maximum(weight_low, 1), 0.0)
    mean_high = np.where(valid, (sum_low[-1] + counts[-1] * centres[-1] - sum_low) / np.maximum(weight_high, 1), 0.0)
    between = np.where(valid, weight_low * weight_high * (mean_low - mean_high) ** 2, -1.0)
    best = between.max()
    ties = np.flatnonzero(between >= best - 1e-12 * abs(best))  # an empty gap between two modes: its middle
    return float(edges[1:-1][ties].mean())


def run_threshold(probabilities: np.ndarray, prior: np.ndarray | None = None, *, field_of_view: np.ndarray | None = None,
                  floor: float = 0.005, ceiling: float = 0.95, prior_multiple: float | None = 2.0,
                  max_fraction: float = 0.5) -> float:
    """The threshold of one run (module docstring).

    Args:
        probabilities: `(T, H, W)` vessel probabilities in [0, 1].
        prior: `(T, H, W)` bool, the vessels a label-free prior finds (e.g. the Hessian prior),
            or None.
        field_of_view: `(H, W)` or `(T, H, W)` bool, the pixels that show anatomy (None: all).
        floor, ceiling: bounds of the log-odds Otsu threshold, as probabilities.
        prior_multiple: the mask holds at most this many times the prior's pixels (None: no
            such cap).
        max_fraction: the largest share of the field of view the mask may cover.
    Returns:
        t such that the mask is ``probabilities >= t``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 3:
        raise InputError(f"run_threshold expects (T, H, W) probabilities; got shape {probabilities.shape}")
    if not 0.0 < floor <= ceiling < 1.0 or not 0.0 < max_fraction <= 1.0:
        raise InputError(f"need 0 < floor <= ceiling < 1 and 0 < max_fraction <= 1; got {floor}, {ceiling}, {max_fraction}")
    if prior_multiple is not None and not prior_multiple >= 1.0:
        raise InputError(f"prior_multiple must be at least 1 (or None); got {prior_multiple}")
    inside = np.ones(probabilities.shape, bool) if field_of_view is None else np.broadcast_to(field_of_view, probabilities.shape)
    values = probabilities[inside]
    if values.size == 0:
        raise InputError("the field of view holds no pixel")
    threshold = min(max(logit_otsu_threshold(values), floor), ceiling)
    descending = np.sort(values)[::-1]
    prior_area = int(np.count_nonzero(prior & inside)) if prior is not None else 0
    if prior_area and not np.any(values >= threshold):
        threshold = float(descending[min(prior_area, descending.size) - 1])
    largest = max(1, int(max_fraction * descending.size))
    if prior_area and prior_multiple is not None:
        largest = min(largest, max(1, int(prior_multiple * prior_area)))
    if np.count_nonzero(values >= threshold) > largest:
        threshold = float(np.nextafter(descending[largest], np.float32(np.inf)))
    return threshold
