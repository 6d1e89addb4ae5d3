"""Per-run thresholds from the run itself (`angioseg.postprocess.calibration`)."""

from __future__ import annotations

import numpy as np
import pytest

from angioseg.errors import InputError
from angioseg.postprocess import logit_otsu_threshold, otsu_threshold, run_threshold


def test_otsu_on_a_hand_built_bimodal_map_splits_the_modes() -> None:
    # background at 0.1 (90 %), vessels at 0.7 (10 %): every edge of the empty gap between the two
    # bins maximises ω0·ω1·(μ0 − μ1)² equally, so the threshold is the gap's middle
    values = np.array([0.1] * 900 + [0.7] * 100)
    low_bin, high_bin = int(0.1 * 256), int(0.7 * 256)  # 25 and 179
    expected = np.mean(np.arange(low_bin + 1, high_bin + 1) / 256)  # the edges between the two bins
    assert otsu_threshold(values) == pytest.approx(expected)
    run = np.full((2, 10, 10), 0.1, np.float32)
    run[:, 4:6, :] = 0.7
    t = run_threshold(run)
    assert 0.1 < t <= 0.7 and np.array_equal(run >= t, run > 0.5)
    assert otsu_threshold(np.full(10, 0.3)) == 0.5  # constant: nothing to split
    # on the log-odds: the gap between logit(0.1) = -2.197 and logit(0.7) = 0.847, back as a probability
    t = logit_otsu_threshold(values)
    assert 0.1 < t < 0.7 and t == pytest.approx(1 / (1 + np.exp(-(-2.197 + 0.847) / 2)), abs=0.03)


def test_never_empty_where_the_prior_finds_vessels() -> None:
    run = np.zeros((3, 16, 16), np.float32)
    run[1, 5, 5:9] = [0.001, 0.002, 0.003, 0.004]  # a timid map: every value below the floor
    prior = np.zeros(run.shape, bool)
    prior[1, 5, 6:9] = True  # the prior marks three pixels
    t = run_threshold(run, prior)
    assert np.count_nonzero(run >= t) == 3  # the prior's area, the most probable pixels
    assert run_threshold(run) >= 0.005 and not (run >= run_threshold(run)).any()  # no prior: empty is allowed


def test_the_mask_never_exceeds_twice_the_prior_area() -> None:
    """A background whose log-odds are themselves bimodal (68 % of the pixels at p = 0.001, 30 %
    at 0.05) and vessels at 0.6 on 2 %: Otsu's best split of the log-odds is between the two
    background modes (between-class variance 0.68 * 0.32 * (-6.91 + 2.73)² = 3.8 against
    0.98 * 0.02 * (-5.69 - 0.41)² = 0.73), which marks 31 % of the run, under the half-frame
    cap. The prior marks the vessels (2 %), so the mask may hold at most 4 %: the threshold
    rises above 0.05 and exactly the vessels remain."""
    run = np.full((2, 50, 50), 0.001, np.float32)
    run[:, :, 35:] = 0.05
    run[:, 10, :] = 0.6  # 50 of 2500 pixels per frame: 2 %
    prior = run > 0.5
    assert logit_otsu_threshold(run.ravel()) < 0.05  # the uncapped rule cuts inside the background
    assert np.count_nonzero(run >= run_threshold(run, prior, prior_multiple=None)) > 0.3 * run.size
    t = run_threshold(run, prior)
    assert np.array_equal(run >= t, prior)
    with pytest.raises(InputError, match="prior_multiple"):
        run_threshold(run, prior, prior_multiple=0.5)


def test_never_over_half_the_field_of_view() -> None:
    rng = np.random.default_rng(0)
    run = rng.uniform(0.96, 0.999, (2, 20, 20)).astype(np.float32)  # a generous map: every value above the ceiling
    view = np.zeros((20, 20), bool)
    view[:, :10] = True
    t = run_threshold(run, field_of_view=view)
    inside = run[:, view]
    assert np.count_nonzero(inside >= t) <= inside.size // 2
    assert np.count_nonzero(inside >= t) >= inside.size // 2 - 1


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(InputError, match=r"\(T, H, W\)"):
        run_threshold(np.zeros((4, 4)))
    with pytest.raises(InputError, match="floor"):
        run_threshold(np.zeros((1, 4, 4)), floor=0.9, ceiling=0.1)
    with pytest.raises(InputError, match="field of view"):
        run_threshold(np.zeros((1, 4, 4)), field_of_view=np.zeros((4, 4), bool))
