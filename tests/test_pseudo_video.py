"""Real-anatomy pseudo-videos: a synthetic frame for the mechanics, real ARCADE frames (read in
place, skipped where absent) for the issue's requirements."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from angioseg.data.arcade import ARCADE_ENV_VAR, ArcadeDataset, arcade_search_paths, default_arcade_root
from angioseg.data.motion import MotionParams
from angioseg.warp import warp_backward
from angioseg.data.pseudo_video import (
    PseudoVideoParams,
    choose_start_point,
    make_pseudo_video,
)
from angioseg.errors import InputError
from angioseg.types import LabelMap, Video


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float(2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def synthetic_frame(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A smooth background with one dark curved vessel, thick (radius 5) at its top-left end."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    background = 0.75 + 0.1 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    s = np.linspace(0.0, 1.0, 300)
    cx, cy = 12 + 70 * s, 14 + 60 * s + 12 * np.sin(3 * s)
    radius = 5.0 - 2.0 * s
    distance = np.full((size, size), np.inf)
    for x, y, r in zip(cx, cy, radius):
        np.minimum(distance, np.hypot(xx - x, yy - y) - r, out=distance)
    mask = distance <= 0
    image = background * np.exp(-0.6 * np.clip(0.5 - distance, 0.0, 1.0))
    return image.astype(np.float32), mask


STRONG_MOTION = MotionParams(
    heart_rate_bpm=90, contraction=0.1, twist_deg=6, wobble_px=8, heart_radius=0.5,
    breathing_px=20, background_breathing_factor=0.5,
)  # fmt: skip


@pytest.fixture(scope="module")
def frame() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_frame()


@pytest.fixture(scope="module")
def run(frame: tuple[np.ndarray, np.ndarray]):
    image, mask = frame
    params = PseudoVideoParams(frames=12, fps=7.5, motion=STRONG_MOTION, vessel_motion_gain=2.0, dose=1000.0)
    return make_pseudo_video(image, mask, params=params, seed=3)


# ---- synthetic frame ---------------------------------------------------------------------------
def test_shapes_and_types(run, frame) -> None:
    image, mask = frame
    assert isinstance(run.video, Video) and isinstance(run.masks, LabelMap)
    assert run.video.shape == (12, 96, 96) and run.video.fps == 7.5
    assert run.masks.shape == (12, 96, 96) and run.masks.label_table == {0: "background", 1: "vessel"}
    assert set(np.unique(run.masks.labels)) <= {0, 1}
    assert run.anatomy.shape == (12, 96, 96) and run.anatomy.dtype == bool
    assert run.flow_forward.shape == run.flow_backward.shape == (11, 96, 96, 2)
    assert run.flow_forward.dtype == np.float32
    assert run.params.motion == STRONG_MOTION
    assert mask[run.start_point]
    assert not (run.masks.binary() & ~run.anatomy).any()  # visible vessel is always anatomy


def test_same_seed_same_video(frame) -> None:
    image, mask = frame
    params = PseudoVideoParams(frames=4)
    a = make_pseudo_video(image, mask, params=params, seed=7)
    b = make_pseudo_video(image, mask, params=params, seed=7)
    c = make_pseudo_video(image, mask, params=params, seed=8)
    np.testing.assert_array_equal(a.video.frames, b.video.frames)
    np.testing.assert_array_equal(a.masks.labels, b.masks.labels)
    np.testing.assert_array_equal(a.flow_backward, b.flow_backward)
    assert a.params == b.params and a.params.motion is not None  # motion drawn from the seed
    assert a.params.motion != c.params.motion
    assert not np.array_equal(a.video.frames, c.video.frames)


def test_first_anatomy_is_the_input_mask(run, frame) -> None:
    np.testing.assert_array_equal(run.anatomy[0], frame[1])


def test_vessel_area_grows_during_inflow(run) -> None:
    areas = run.masks.labels.reshape(12, -1).sum(axis=1)
    assert areas[0] == 0  # the front leaves the start point at 0.2 s, after frame 0
    filling = run.concentration_at_start > run.params.visible_threshold
    first = int(np.argmax(filling))
    assert areas[first] > 0
    anatomy = run.anatomy.reshape(12, -1).sum(axis=1)
    fraction = areas / anatomy
    assert np.all(np.diff(fraction[: first + 6]) >= -0.02)
    assert fraction[first] < 0.5 < fraction[-1]
    assert fraction[-1] > 0.95  # filled by the end: 0.2 + 1.0 + 0.25 s < 11 / 7.5 s


def test_flows_move_the_anatomy(run) -> None:
    warped, unmoved = [], []
    for t in range(run.video.num_frames - 1):
        moved = warp_backward(run.anatomy[t], run.flow_backward[t], nearest=True)
        warped.append(dice(moved, run.anatomy[t + 1]))
        unmoved.append(dice(run.anatomy[t], run.anatomy[t + 1]))
    assert min(warped) >= 0.92 and np.mean(warped) >= 0.95
    assert np.mean(unmoved) < np.mean(warped) - 0.1


def test_forward_and_backward_flows_are_inverse(run) -> None:
    t = 4
    grid = np.stack(np.meshgrid(np.arange(96.0), np.arange(96.0)), axis=-1)
    # Follow the forward flow from frame t, then the backward flow (sampled there) back.
    landing = grid + run.flow_forward[t]
    back = np.stack(
        [cv2.remap(run.flow_backward[t][..., i], landing[..., 0].astype(np.float32), landing[..., 1].astype(np.float32),
                   cv2.INTER_LINEAR) for i in range(2)],  # fmt: skip
        axis=-1,
    )
    inner = (slice(10, 86), slice(10, 86))
    assert np.abs(landing + back - grid)[inner].max() < 0.05


def test_coarse_motion_maps_match_the_exact_inverse() -> None:
    # Above 255 px the inverse motion is solved on a coarse grid and interpolated.
    from angioseg.data.motion import CardiacBreathingMotion
    from angioseg.data.pseudo_video import _MapMaker

    motion = CardiacBreathingMotion(STRONG_MOTION, height=256, width=320, seed=2)
    maker = _MapMaker(motion, "vessel")
    assert maker.stride == 2
    times = np.array([0.0, 0.3, 0.4])
    coarse = [maker.canonical(t) for t in times]
    for t, nodes in zip(times, coarse):
        exact = motion.sampling_map(float(t), "vessel")
        assert np.abs(maker.sampling_map(nodes) - exact).max() < 1e-3
    forward, backward = motion.flows(times[1:], "vessel")
    assert np.abs(maker.flow(coarse[1], 0.4) - forward[0]).max() < 1e-3
    assert np.abs(maker.flow(coarse[2], 0.3) - backward[0]).max() < 1e-3
    assert np.array_equal(maker.sampling_map(coarse[0]), motion.pixel_grid().astype(np.float32))


def test_full_contrast_frame_zero_is_the_image(frame) -> None:
    image, mask = frame
    params = PseudoVideoParams(frames=2, inflow_start_s=-10.0, dose=None)  # filled before the run
    result = make_pseudo_video(image, mask, params=params, seed=0)
    np.testing.assert_array_equal(result.masks.labels[0].astype(bool), mask)
    assert np.abs(result.video.frames[0] - image)[mask].max() < 2e-3
    # Away from the inpainted area nothing changes at all.
    untouched = ~result.layers.inpainted
    assert np.abs(result.video.frames[0] - image)[untouched].max() < 1e-6


def test_washout_empties_the_tree(frame) -> None:
    image, mask = frame
    params = PseudoVideoParams(frames=30, fps=10.0, inflow_start_s=0.0, fill_time_s=0.5, washout_start=0.5,
                               washout_time_s=0.4, dose=None)  # fmt: skip
    result = make_pseudo_video(image, mask, params=params, seed=0)
    areas = result.masks.labels.reshape(30, -1).sum(axis=1)
    assert areas.max() > 0.9 * mask.sum()
    assert areas[-1] == 0
    assert result.concentration_at_start[-1] == 0.0


def test_start_point_on_the_thick_end(frame) -> None:
    _, mask = frame
    row, col = choose_start_point(mask)
    assert mask[row, col] and row < 30 and col < 30


def test_explicit_start_point_snaps_to_the_mask(frame) -> None:
    image, mask = frame
    result = make_pseudo_video(image, mask, params=PseudoVideoParams(frames=2), seed=0, start_point=(0, 0))
    assert mask[result.start_point]
    with pytest.raises(InputError, match="outside"):
        make_pseudo_video(image, mask, params=PseudoVideoParams(frames=2), seed=0, start_point=(500, 3))


def test_bad_inputs(frame) -> None:
    image, mask = frame
    with pytest.raises(InputError, match="mask of size 90x96 does not match the image's 96x96"):
        make_pseudo_video(image, mask[:90], seed=0)
    with pytest.raises(InputError, match="empty"):
        make_pseudo_video(image, np.zeros_like(mask), seed=0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        make_pseudo_video(image * 2.0, mask, seed=0)
    with pytest.raises(InputError, match="2-D"):
        make_pseudo_video(np.stack([image, image]), mask, seed=0)
    with pytest.raises(InputError, match="seed"):
        make_pseudo_video(image, mask, seed=-1)


def test_params_sample_round_trip_and_validation() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = PseudoVideoParams.sample(rng, frames=24)
        assert params.frames == 24 and 7.5 <= params.fps <= 30
        assert 500 <= params.dose <= 5000 and 0.5 <= params.fill_time_s <= 1.5
        assert params.motion is not None
        assert PseudoVideoParams.from_dict(params.to_dict()) == params
    assert PseudoVideoParams.sample(rng, frames=8, fps=12.5).fps == 12.5
    with pytest.raises(InputError, match="fps"):
        PseudoVideoParams(fps=0)
    with pytest.raises(InputError, match="visible_threshold"):
        PseudoVideoParams(visible_threshold=1.5)


def test_vessel_motion_gain_scales_relative_motion() -> None:
    base = PseudoVideoParams(motion=STRONG_MOTION)
    assert base.effective_motion() == STRONG_MOTION
    doubled = replace(base, vessel_motion_gain=2.0).effective_motion()
    assert doubled.contraction == pytest.approx(0.2) and doubled.wobble_px == pytest.approx(16)
    # The background keeps its breathing; the vessels' extra breathing doubles.
    assert doubled.breathing_px * doubled.background_breathing_factor == pytest.approx(10.0)
    assert doubled.breathing_px - 10.0 == pytest.approx(2 * (20.0 - 10.0))


# ---- real ARCADE frames ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arcade_val() -> ArcadeDataset:
    root = default_arcade_root()
    if root is None or not (root / "val" / "images").is_dir():
        looked = ", ".join(str(p) for p in arcade_search_paths()) or f"nowhere: {ARCADE_ENV_VAR} is unset"
        pytest.skip(f"ARCADE data not found at {looked}; set {ARCADE_ENV_VAR} to the arcade-syntax folder to run this test")
    return ArcadeDataset(root, "val")


def independent_rasterisation(polygons, height: int, width: int) -> np.ndarray:
    """skimage's polygon fill, pixel centres at (j + 0.5, i + 0.5) in x * width units."""
    from skimage.draw import polygon

    mask = np.zeros((height, width), bool)
    for class_id, points in polygons:
        if class_id < 25:
            rows, cols = polygon(points[:, 1] * height - 0.5, points[:, 0] * width - 0.5, (height, width))
            mask[rows, cols] = True
    return mask


@pytest.mark.parametrize("index", [0, 100])
def test_real_frame_zero_matches_the_polygons(arcade_val: ArcadeDataset, index: int) -> None:
    sample = arcade_val.load(index)
    params = PseudoVideoParams(frames=2, inflow_start_s=-10.0)  # contrast already in at t = 0
    result = make_pseudo_video(sample.image, sample.vessel_mask, params=params, seed=index)
    reference = independent_rasterisation(sample.polygons, *sample.image.shape)
    assert dice(result.anatomy[0], reference) >= 0.99
    assert dice(result.masks.labels[0] > 0, reference) >= 0.99


def test_real_background_has_the_vessels_removed(arcade_val: ArcadeDataset) -> None:
    sample = arcade_val.load(0)
    result = make_pseudo_video(sample.image, sample.vessel_mask, params=PseudoVideoParams(frames=1), seed=0)
    image, background, mask = sample.image, result.layers.background, sample.vessel_mask
    outer = cv2.dilate(mask.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
    inner = cv2.dilate(mask.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
    ring = outer & ~inner
    assert np.abs(background - image)[mask].mean() > 0.05  # the vessel was taken out
    contrast_image = image[ring].mean() - image[mask].mean()
    contrast_background = abs(background[ring].mean() - background[mask].mean())
    assert contrast_image > 0.05
    assert contrast_background < 0.2 * contrast_image


def test_all_vessels_mask_adds_an_unannotated_branch_but_not_a_piece_at_the_edge():
    """A syntax-style annotation marks the main vessel only; the "all"-style target adds the
    dark branch joined to it, and leaves out a dark line running to the frame's edge."""
    import cv2

    from angioseg.data.pseudo_video import all_vessels_mask

    rng = np.random.default_rng(0)
    image = np.clip(0.75 + 0.01 * rng.standard_normal((256, 256)), 0, 1).astype(np.float32)
    cv2.line(image, (40, 128), (216, 128), 0.35, 7)  # the annotated main vessel
    cv2.line(image, (128, 131), (150, 190), 0.5, 3)  # an unannotated side branch joined to it
    cv2.line(image, (60, 125), (60, 0), 0.5, 3)  # a dark line from the vessel to the frame's edge
    mask = np.zeros((256, 256), bool)
    cv2.line(mask.view(np.uint8), (40, 128), (216, 128), 1, 7)
    target = all_vessels_mask(image, mask)
    assert target[mask].all()
    assert target[160:180, 135:145].any()  # the branch
    assert not target[5:60, 55:65].any()  # the edge-reaching line
