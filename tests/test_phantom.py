"""Tests for the phantom generator (small sizes and few frames, so the file runs in seconds)."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import cv2
import numpy as np
import pytest

from angioseg.data.motion import CardiacBreathingMotion, MotionParams
from angioseg.warp import warp_backward
from angioseg.data.phantom import (
    DEVICE_LABELS,
    DEVICE_NAMES,
    VISIBLE_CONCENTRATION,
    PhantomParams,
    PhantomRun,
    generate_phantom,
    phantom_label_table,
)
from angioseg.errors import InputError
from angioseg.types import DEFAULT_LABELS

# Contrast timing that fills fast and washes out before the end of a 16-frame, 7.5 fps run.
FAST_CONTRAST = dict(
    injection_start_s=0.0,
    fill_time_s=0.7,
    rise_time_s=0.15,
    washout_start_fraction=0.6,
    washout_time_s=0.8,
    fall_time_s=0.4,
)

STRONG_MOTION = MotionParams(
    heart_rate_bpm=95.0,
    cardiac_phase=0.9,
    contraction=0.09,
    twist_deg=5.0,
    wobble_px=6.0,
    heart_centre=(0.5, 0.55),
    heart_radius=0.45,
    breathing_period_s=3.0,
    breathing_px=18.0,
    breathing_angle_deg=10.0,
    breathing_phase=0.2,
    background_breathing_factor=0.5,
)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


@pytest.fixture(scope="module")
def run() -> PhantomRun:
    params = PhantomParams(size=128, frames=16, fps=7.5, motion=STRONG_MOTION, **FAST_CONTRAST)
    return generate_phantom(params, seed=11)


# ---- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_output_and_other_seeds_differ() -> None:
    params = PhantomParams(size=96, frames=8, **FAST_CONTRAST)
    first = generate_phantom(params, seed=3)
    second = generate_phantom(params, seed=3)
    assert np.array_equal(first.video.frames, second.video.frames)
    assert np.array_equal(first.masks.labels, second.masks.labels)
    assert np.array_equal(first.flow_forward, second.flow_forward)
    assert np.array_equal(first.flow_backward, second.flow_backward)
    assert first.params == second.params
    other = generate_phantom(params, seed=4)
    assert not np.array_equal(first.video.frames, other.video.frames)
    assert not np.array_equal(first.masks.labels, other.masks.labels)
    assert first.params.motion != other.params.motion  # motion None is drawn from the seed


# ---- shapes, ranges, labels -------------------------------------------------------------------


def test_shapes_dtypes_and_ranges(run: PhantomRun) -> None:
    t, size = run.params.frames, run.params.size
    frames = run.video.frames
    assert frames.shape == (t, size, size) and frames.dtype == np.float32
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    assert run.video.fps == pytest.approx(7.5)
    assert run.video.metadata["source_kind"] == "phantom"
    assert run.video.metadata["generator"] == "angioseg.phantom"
    labels = run.masks.labels
    assert labels.shape == (t, size, size) and np.issubdtype(labels.dtype, np.integer)
    assert set(np.unique(labels).tolist()) <= {0, 1, 2}
    assert run.masks.label_table == {0: "background", 1: "vessel", 2: "catheter"}
    run.masks.check_matches(run.video)
    for flow in (run.flow_forward, run.flow_backward):
        assert flow.shape == (t - 1, size, size, 2) and flow.dtype == np.float32
        assert np.isfinite(flow).all()
    assert run.concentration is not None
    assert run.concentration.shape == (t, size, size) and run.concentration.dtype == np.float16
    assert run.params.motion == STRONG_MOTION


def test_catheter_in_every_frame_and_labels_follow_concentration(run: PhantomRun) -> None:
    labels = run.masks.labels
    assert all((labels[i] == 2).sum() > 20 for i in range(len(labels)))
    visible = run.concentration.astype(np.float32) > VISIBLE_CONCENTRATION
    assert np.array_equal(labels == 1, visible & (labels != 2))


def test_vessel_area_grows_at_inflow_and_falls_at_washout(run: PhantomRun) -> None:
    area = (run.masks.labels == 1).sum(axis=(1, 2))
    plateau = int(area[5:9].max())  # 0.67-1.07 s: filled, wash-out not started (1.28 s)
    assert area[0] == 0  # injection starts at t = 0, concentration 0 there
    assert area[1] < 0.5 * plateau
    assert area[2] < plateau
    assert area[-1] < 0.7 * plateau


def relaxed_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice where a pixel counts as matched if the other mask has a pixel within 1 px."""
    kernel = np.ones((3, 3), np.uint8)
    near_a = cv2.dilate(a.astype(np.uint8), kernel) > 0
    near_b = cv2.dilate(b.astype(np.uint8), kernel) > 0
    precision = (a & near_b).sum() / max(a.sum(), 1)
    recall = (b & near_a).sum() / max(b.sum(), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-12))


@pytest.fixture(scope="module")
def plateau_run() -> PhantomRun:
    """Strong motion, and contrast that is full from frame 1 on (so masks change only by motion)."""
    params = PhantomParams(
        size=128,
        frames=12,
        fps=10.0,
        motion=STRONG_MOTION,
        injection_start_s=0.0,
        fill_time_s=0.01,
        rise_time_s=0.01,
        washout_start_fraction=50.0,
    )
    return generate_phantom(params, seed=12)


def test_motion_fields_carry_masks_between_frames(plateau_run: PhantomRun) -> None:
    labels = plateau_run.masks.labels
    strict, identity, relaxed, catheter = [], [], [], []
    for t in range(1, len(labels) - 1):  # frame 0 has no contrast yet
        flow = plateau_run.flow_backward[t]
        current, following = labels[t] > 0, labels[t + 1] > 0
        warped = warp_backward(current, flow, nearest=True)
        strict.append(dice(warped, following))
        identity.append(dice(current, following))
        relaxed.append(relaxed_dice(warped, following))
        catheter.append(relaxed_dice(warp_backward(labels[t] == 2, flow, nearest=True), labels[t + 1] == 2))
    # Nearest-neighbour sampling (once to render, once to warp) moves edges of these 1-3 px
    # wide structures by up to a pixel, so the pixel-exact Dice is bounded well below 1; up
    # to one pixel of tolerance the warped masks must match.
    assert min(relaxed) >= 0.95, relaxed
    assert min(catheter) >= 0.95, catheter
    assert min(strict) >= 0.55, strict
    # The motion is strong enough that ignoring it scores clearly worse.
    assert np.mean(identity) < np.mean(strict) - 0.15, (identity, strict)


def test_flows_are_the_exact_motion_of_the_vessel_layer(plateau_run: PhantomRun) -> None:
    params = plateau_run.params
    motion = CardiacBreathingMotion(
        params.motion, height=params.size, width=params.size, seed=plateau_run.video.metadata["motion_seed"]
    )
    forward, backward = motion.flows(params.times, "vessel")
    assert np.abs(plateau_run.flow_forward - forward).max() < 1e-3
    assert np.abs(plateau_run.flow_backward - backward).max() < 1e-3
    assert np.abs(forward).max() > 2.0  # strong motion: the check above means something
    # Forward and backward flows are inverse to each other (up to interpolation).
    t = 3
    ys, xs = np.mgrid[0 : params.size, 0 : params.size].astype(np.float32)
    fwd = plateau_run.flow_forward[t]
    back_at_target = np.stack(
        [
            cv2.remap(plateau_run.flow_backward[t][..., k], xs + fwd[..., 0], ys + fwd[..., 1], cv2.INTER_LINEAR)
            for k in range(2)
        ],
        axis=-1,
    )
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(fwd + back_at_target)[inner].max() < 0.05


def test_vessels_are_dark(plateau_run: PhantomRun) -> None:
    frame = plateau_run.video.frames[5]
    labels = plateau_run.masks.labels[5]
    vessel = (labels == 1).astype(np.uint8)
    depth = cv2.distanceTransform(vessel, cv2.DIST_L2, 3)
    trunk = depth >= 0.6 * depth.max()  # the middle of the thickest vessels
    assert trunk.sum() >= 3
    kernel = np.ones((3, 3), np.uint8)
    anything = (labels > 0).astype(np.uint8)
    ring = (cv2.dilate(anything, kernel, iterations=5) > 0) & ~(cv2.dilate(anything, kernel, iterations=2) > 0)
    background = frame[ring].mean()
    assert 0.15 < background - frame[trunk].mean() < 0.5
    assert background - frame[vessel > 0].mean() > 0.05
    assert background - frame[labels == 2].mean() > 0.1  # the catheter too


def test_noise_grows_as_dose_falls() -> None:
    base = PhantomParams(size=96, frames=1, motion=MotionParams(), **FAST_CONTRAST)

    def residual_std(dose: float) -> float:
        run = generate_phantom(replace(base, dose=dose), seed=5)
        frame = run.video.frames[0]
        smooth = cv2.GaussianBlur(frame, (0, 0), 2.0)
        flat = cv2.dilate((run.masks.labels[0] > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        return float((frame - smooth)[flat].std())

    low, high = residual_std(300.0), residual_std(5000.0)
    assert low > 2.0 * high, (low, high)


# ---- parameters ---------------------------------------------------------------------------------

RANGES = {
    "num_main_arteries": (1, 3),
    "root_radius": (5.0, 7.0),
    "min_radius": (0.6, 0.8),
    "left_main_length": (15.0, 45.0),
    "vessel_length": (80.0, 120.0),
    "branch_spacing": (5.0, 10.0),
    "branch_asymmetry": (0.4, 0.7),
    "tortuosity": (0.1, 1.0),
    "tree_rotation_deg": (-20.0, 20.0),
    "catheter_radius": (2.5, 3.5),
    "lung_attenuation": (0.25, 0.45),
    "heart_attenuation": (0.3, 0.6),
    "diaphragm_attenuation": (0.4, 0.9),
    "diaphragm_height": (0.65, 0.95),
    "spine_attenuation": (0.15, 0.35),
    "spine_position": (0.1, 0.9),
    "rib_attenuation": (0.06, 0.18),
    "rib_spacing": (80.0, 120.0),
    "texture_amplitude": (0.03, 0.1),
    "injection_start_s": (0.0, 0.5),
    "fill_time_s": (0.7, 2.0),
    "rise_time_s": (0.15, 0.5),
    "washout_start_fraction": (0.55, 0.8),
    "washout_time_s": (0.8, 2.5),
    "fall_time_s": (0.4, 1.2),
    "vessel_attenuation": (0.06, 0.11),
    "catheter_attenuation": (0.09, 0.14),
    "blur_sigma": (0.6, 1.2),
    "dose": (300.0, 5000.0),
    "gamma": (0.85, 1.15),
}


def test_sample_respects_ranges_and_serialises() -> None:
    rng = np.random.default_rng(0)
    seen_main = set()
    for _ in range(40):
        params = PhantomParams.sample(rng, size=200, frames=12, fps=25.0)
        assert (params.size, params.frames, params.fps) == (200, 12, 25.0)
        assert isinstance(params.motion, MotionParams)
        assert 60 <= params.motion.heart_rate_bpm <= 100
        for name, (low, high) in RANGES.items():
            assert low <= getattr(params, name) <= high, name
        assert not 0.3 < params.spine_position < 0.7
        assert params.catheter_entry in ("top", "left")
        seen_main.add(params.num_main_arteries)
        text = json.dumps(params.to_dict())
        assert PhantomParams.from_dict(json.loads(text)) == params
    assert seen_main == {1, 2, 3}
    named = set(RANGES) | {"size", "frames", "fps", "motion", "catheter_entry", "devices"}
    assert named == {f.name for f in fields(PhantomParams)}
    assert json.loads(json.dumps(PhantomParams().to_dict()))["motion"] is None


@pytest.mark.parametrize(
    "changes",
    [
        {"size": 16},
        {"size": 100.5},
        {"frames": 0},
        {"fps": 0.0},
        {"fps": float("nan")},
        {"dose": 0.0},
        {"dose": -5.0},
        {"num_main_arteries": 4},
        {"catheter_entry": "bottom"},
        {"min_radius": 8.0},
        {"motion": "strong"},
    ],
)
def test_bad_parameters_raise_input_error(changes: dict) -> None:
    with pytest.raises(InputError):
        PhantomParams(**changes)


def test_bad_generate_arguments_raise_input_error() -> None:
    with pytest.raises(InputError):
        generate_phantom(PhantomParams(size=64, frames=1), seed=-1)
    with pytest.raises(InputError):
        generate_phantom({"size": 64}, seed=0)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        PhantomParams.from_dict({"size": 64, "colour": "red"})


def test_single_frame_and_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    run = generate_phantom(PhantomParams(size=48, frames=2), seed=0, progress=True)
    assert run.video.frames.shape == (2, 48, 48)
    assert run.flow_forward.shape == (1, 48, 48, 2)
    single = generate_phantom(PhantomParams(size=48, frames=1), seed=0)
    assert single.flow_forward.shape == (0, 48, 48, 2)
    assert "phantom" in capsys.readouterr().err


# ---- devices ------------------------------------------------------------------------------------

DEVICE_RUN = dict(size=128, frames=6, fps=10.0, motion=STRONG_MOTION)


@pytest.fixture(scope="module")
def device_runs() -> tuple[PhantomRun, PhantomRun]:
    """The same seed and params with every device and with none."""
    params = PhantomParams(**DEVICE_RUN, devices=DEVICE_NAMES)
    return generate_phantom(params, seed=21), generate_phantom(replace(params, devices=()), seed=21)


def test_every_device_label_is_in_every_frame(device_runs: tuple[PhantomRun, PhantomRun]) -> None:
    run, _ = device_runs
    assert run.masks.label_table == {**DEFAULT_LABELS, **DEVICE_LABELS}
    run.masks.check_matches(run.video)
    for t, labels in enumerate(run.masks.labels):
        assert set(DEVICE_LABELS) <= set(np.unique(labels).tolist()), t
    assert (run.masks.labels == 2).any(axis=(1, 2)).all()  # the catheter is still there
    assert run.video.metadata["devices"] == list(DEVICE_NAMES)


def test_devices_change_the_run_only_near_themselves(device_runs: tuple[PhantomRun, PhantomRun]) -> None:
    run, plain = device_runs
    assert np.array_equal(run.flow_backward, plain.flow_backward)
    assert np.array_equal(run.concentration, plain.concentration)
    devices = run.masks.labels >= 3
    assert np.array_equal(run.masks.labels[~devices], plain.masks.labels[~devices])
    kernel = np.ones((7, 7), np.uint8)  # more than 3 px from every device pixel
    for t in range(run.params.frames):
        far = cv2.dilate(devices[t].astype(np.uint8), kernel) == 0
        assert np.array_equal(run.video.frames[t][far], plain.video.frames[t][far]), t
        assert not np.array_equal(run.video.frames[t], plain.video.frames[t])


def test_device_regions_are_darker_than_their_surroundings(device_runs: tuple[PhantomRun, PhantomRun]) -> None:
    run, _ = device_runs
    frame, labels = run.video.frames[0], run.masks.labels[0]
    kernel = np.ones((3, 3), np.uint8)
    for label, name in DEVICE_LABELS.items():
        region = (labels == label).astype(np.uint8)
        around = (cv2.dilate(region, kernel, iterations=5) > 0) & (labels == 0)
        assert around.sum() > region.sum(), name
        assert frame[region > 0].mean() < frame[around].mean() - 0.02, name


def test_devices_subset_label_table_and_independence() -> None:
    params = PhantomParams(**DEVICE_RUN, devices=("clip", "guidewire"))
    assert params.devices == ("guidewire", "clip")  # stored in DEVICE_NAMES order
    run = generate_phantom(params, seed=5)
    assert run.masks.label_table == {0: "background", 1: "vessel", 2: "catheter", 3: "guidewire", 7: "clip"}
    assert set(np.unique(run.masks.labels).tolist()) <= {0, 1, 2, 3, 7}
    assert phantom_label_table(("sternal_wire",)) == {**DEFAULT_LABELS, 6: "sternal_wire"}
    # A device's shape does not depend on which other devices the run has.
    alone = generate_phantom(replace(params, devices=("clip",)), seed=5)
    assert np.array_equal(run.masks.labels == 7, alone.masks.labels == 7)


@pytest.mark.parametrize(
    "devices, word",
    [(("guidewire", "stent"), "'stent'"), (("marker", "marker"), "'marker'"), ("guidewire", "guidewire")],
)
def test_bad_devices_raise_input_error_naming_them(devices: object, word: str) -> None:
    with pytest.raises(InputError, match=word) as error:
        PhantomParams(devices=devices)  # type: ignore[arg-type]
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match=word):
        PhantomParams.from_dict({"devices": devices if isinstance(devices, str) else list(devices)})


def test_devices_round_trip_and_sample_pass_through() -> None:
    params = PhantomParams.sample(np.random.default_rng(3), size=64, frames=2, devices=["marker", "electrode"])
    assert params.devices == ("marker", "electrode")
    text = json.dumps(params.to_dict())
    assert json.loads(text)["devices"] == ["marker", "electrode"]
    assert PhantomParams.from_dict(json.loads(text)) == params
    # Asking for devices draws nothing more from the generator: the scene is the same.
    plain = PhantomParams.sample(np.random.default_rng(3), size=64, frames=2)
    assert plain.devices == () and replace(params, devices=()) == plain
    assert PhantomParams.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain


def test_phantom_set_and_cli_carry_the_device_labels(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from angioseg.cli.main import main
    from angioseg.data.davis import DavisFolder
    from angioseg.pipelines.datasets import make_phantom_set

    out = make_phantom_set(tmp_path / "some", n=1, size=48, frames=2, dicom=False, overlay=False,
                           devices=["clip", "marker"])
    folder = DavisFolder(out)
    assert folder.label_table == {0: "background", 1: "vessel", 2: "catheter", 4: "marker", 7: "clip"}
    sequence = folder.load(folder.names[0])
    assert sequence.meta["generator"]["devices"] == ["marker", "clip"]
    assert set(np.unique(sequence.masks.labels).tolist()) <= {0, 1, 2, 4, 7}
    argv = ["data", "phantom", "--out", str(tmp_path / "all"), "--n", "1", "--size", "48", "--frames", "2",
            "--no-dicom", "--no-overlay", "--no-motion"]
    assert main([*argv, "--devices", "all"]) == 0
    assert DavisFolder(tmp_path / "all").label_table == {**DEFAULT_LABELS, **DEVICE_LABELS}
    capsys.readouterr()
    assert main([*argv, "--devices", "guidewire, stent"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'stent'" in err
