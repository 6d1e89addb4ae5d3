"""Shared post-processing: temporal filters, connected components, label maps from
per-class probabilities, and sampling along a flow (`angioseg.postprocess`, `angioseg.warp`)."""

import numpy as np
import pytest

from angioseg import InputError
from angioseg.postprocess import (
    drop_small_components,
    filter_class_probabilities,
    hysteresis,
    keep_touching,
    labels_from_probabilities,
    motion_compensated_filter,
    one_hot_probabilities,
    sample_at,
    temporal_filter,
    trajectory_positions,
    warp_backward,
)


def test_temporal_filter_matches_hand_computed_average():
    g = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    f = temporal_filter(g, radius=1)
    # interior: (k-1 + k + k+1)/3 = k; ends repeat the edge frame: (0+0+1)/3, (3+4+4)/3
    assert np.allclose(f[:, 0, 0], [1 / 3, 1, 2, 3, 11 / 3])
    weighted = temporal_filter(g, radius=1, weights=np.array([0.0, 0.0, 1.0]))
    # h(+1) = 1: f(k) = g(k - 1), and g(-1) = g(0)
    assert np.allclose(weighted[:, 0, 0], [0, 0, 1, 2, 3])


def test_temporal_filter_radius_zero_is_identity_and_constant_stays_constant():
    g = np.random.default_rng(0).random((6, 3, 3)).astype(np.float32)
    assert np.allclose(temporal_filter(g, radius=0), g)
    assert np.allclose(temporal_filter(np.full((4, 2, 2), 0.3, np.float32), radius=2), 0.3)


def test_temporal_filter_rejects_bad_arguments():
    with pytest.raises(InputError, match="3 weights"):
        temporal_filter(np.zeros((3, 2, 2)), radius=1, weights=[1, 2])
    with pytest.raises(InputError, match=r"\(T, H, W\)"):
        temporal_filter(np.zeros((3, 2)), radius=1)


def test_motion_compensated_filter_keeps_a_moving_square_sharp():
    count, size, shift = 5, 40, 3
    probabilities = np.zeros((count, size, size), np.float32)
    for t in range(count):
        probabilities[t, 15:25, 5 + shift * t : 15 + shift * t] = 1.0
    forward = np.zeros((count - 1, size, size, 2), np.float32)
    forward[..., 0] = shift  # frame t at x is frame t+1 at x + 3
    backward = -forward
    compensated = motion_compensated_filter(probabilities, probabilities, radius=1, flows=(forward, backward))
    plain = temporal_filter(probabilities, radius=1)
    inside = probabilities[2] > 0
    assert compensated[2][inside].min() > 0.99
    assert plain[2][inside].min() < 0.7


def test_hysteresis_keeps_seeded_large_components():
    p = np.zeros((1, 12, 12), np.float32)
    p[0, 1:4, 1:4] = 0.6  # above threshold, no seed: dropped
    p[0, 6:10, 6:10] = 0.6
    p[0, 7, 7] = 0.9  # seeded: kept
    p[0, 0, 11] = 0.95  # seeded but one pixel: dropped with min_pixels=2
    grown = hysteresis(p, low=0.5, high=0.75, min_pixels=2)
    assert grown[0, 6:10, 6:10].all() and grown.sum() == 16


def test_drop_small_components_counts_pixels_per_frame_with_8_connectivity():
    masks = np.zeros((2, 10, 10), bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 2, 2] = True  # a diagonal: one 8-connected component of 3
    masks[0, 6:8, 6:8] = True  # 4 pixels
    masks[1, 6:8, 6:8] = True  # the same 4 pixels one frame later: not joined across frames
    masks[1, 0, 5] = True  # a single pixel
    kept = drop_small_components(masks, 4)
    assert kept[0].sum() == 4 and kept[0, 6:8, 6:8].all()
    assert kept[1].sum() == 4 and not kept[1, 0, 5]
    assert drop_small_components(masks, 3).sum() == 11
    both = drop_small_components(masks, 1)
    assert np.array_equal(both, masks) and both is not masks
    assert not drop_small_components(masks, 5).any()


def test_keep_touching_keep_what_touches_the_prior_in_the_same_frame():
    masks = np.zeros((2, 10, 10), bool)
    masks[:, 1:3, 1:9] = True  # a bar in both frames
    masks[:, 6:9, 6:9] = True  # a blob in both frames
    prior = np.zeros_like(masks)
    prior[0, 2, 4] = True  # touches the bar in frame 0 only
    prior[1, 0, 0] = True  # outside every component
    kept = keep_touching(masks, prior)
    assert kept[0].sum() == 16 and kept[0, 1:3, 1:9].all()
    assert not kept[1].any()
    assert not keep_touching(np.zeros_like(masks), prior).any()




def test_class_probabilities_are_filtered_per_class_and_still_sum_to_one():
    rng = np.random.default_rng(1)
    raw = rng.random((6, 3, 20, 20)).astype(np.float32)
    classes = raw / raw.sum(axis=1, keepdims=True)
    frames = rng.random((6, 20, 20)).astype(np.float32)
    for motion in (False, True):
        filtered = filter_class_probabilities(classes, frames, radius=1, motion=motion)
        assert filtered.shape == classes.shape
        assert np.allclose(filtered.sum(axis=1), 1.0, atol=1e-5)
    plain = filter_class_probabilities(classes, frames, radius=1, motion=False)
    assert np.allclose(plain[:, 2], temporal_filter(classes[:, 2], radius=1))  # each class on its own


def test_motion_filter_of_class_channels_equals_the_filter_of_each_channel():
    rng = np.random.default_rng(2)
    classes = rng.random((4, 2, 16, 16)).astype(np.float32)
    forward = rng.normal(0, 1.5, (3, 16, 16, 2)).astype(np.float32)
    backward = rng.normal(0, 1.5, (3, 16, 16, 2)).astype(np.float32)
    both = motion_compensated_filter(classes, None, radius=1, flows=(forward, backward))
    for c in range(2):
        alone = motion_compensated_filter(classes[:, c], None, radius=1, flows=(forward, backward))
        assert np.array_equal(both[:, c], alone)


def test_labels_from_probabilities_hand_computed():
    table = {0: "background", 1: "vessel", 2: "catheter"}
    p = np.array([[0.8, 0.1, 0.1], [0.4, 0.25, 0.35], [0.3, 0.5, 0.2], [0.55, 0.44, 0.01]], np.float32)
    classes = p.T.reshape(1, 3, 1, 4)  # four pixels of one frame
    labels = labels_from_probabilities(classes, table, threshold=0.5)
    # foreground = 0.2, 0.6, 0.7, 0.45: below, catheter wins, vessel wins, below
    assert labels.tolist() == [[[0, 2, 1, 0]]]
    assert labels_from_probabilities(classes, table, threshold=0.4).tolist() == [[[0, 2, 1, 1]]]
    binary = np.stack([1 - p[:, 1], p[:, 1]]).reshape(1, 2, 1, 4)
    assert labels_from_probabilities(binary, {0: "background", 3: "lesion"}, threshold=0.3).tolist() == [[[0, 0, 3, 3]]]
    with pytest.raises(InputError, match="do not match"):
        labels_from_probabilities(classes, {0: "background", 1: "vessel"}, threshold=0.5)


def test_one_hot_round_trips_through_labels():
    table = {0: "background", 1: "vessel", 4: "stent"}
    labels = np.array([[[0, 1], [4, 1]]], np.uint8)
    one_hot = one_hot_probabilities(labels, table)
    assert one_hot.shape == (1, 3, 2, 2) and np.array_equal(one_hot.sum(axis=1), np.ones((1, 2, 2)))
    assert np.array_equal(labels_from_probabilities(one_hot, table, threshold=0.5), labels)
    with pytest.raises(InputError, match="not in the label table"):
        one_hot_probabilities(np.array([[7]]), table)


def test_sample_at_and_warp_backward_against_hand_computed_values():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    positions = np.array([[[0.5, 0.0], [1.0, 1.5], [-3.0, 0.0], [10.0, 2.0]]], np.float32)
    sampled = sample_at(image, positions)
    assert np.allclose(sampled, [[0.5, 7.0, 0.0, 11.0]])  # bilinear; outside: the edge repeated
    assert np.allclose(sample_at(image, positions, border="constant")[0, 2:], 0.0)
    flow = np.zeros((3, 4, 2), np.float32)
    flow[..., 0] = 1.0  # every pixel reads its right neighbour
    assert np.array_equal(warp_backward(image, flow)[:, :3], image[:, 1:])
    mask = image > 5
    assert warp_backward(mask, flow, nearest=True).dtype == bool
    two = np.stack([image, 2 * image], axis=-1)
    assert np.array_equal(sample_at(two, positions)[..., 1], sample_at(2 * image, positions))
    with pytest.raises(InputError, match="border"):
        sample_at(image, positions, border="wrap")


def test_trajectory_positions_compose_constant_flows():
    forward = np.zeros((3, 8, 8, 2), np.float32)
    forward[..., 0] = 1.0
    backward = -forward
    there = trajectory_positions(forward, backward, 0, 2)
    assert np.allclose(there[..., 0] - np.arange(8)[None, :], 2.0) and np.allclose(there[..., 1], np.arange(8)[:, None])
    back = trajectory_positions(forward, backward, 3, -3)
    assert np.allclose(back[..., 0] - np.arange(8)[None, :], -3.0)
