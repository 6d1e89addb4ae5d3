"""Tests for the DSA liver phantom (small frames and few frames, so the file runs in seconds)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from angioseg.cli.main import main
from angioseg.data.dsa_liver import (
    DSA_LIVER_LABELS,
    NEUTRAL,
    DSALiverParams,
    DSALiverRun,
    generate_dsa_liver,
)
from angioseg.errors import InputError

SMALL = dict(height=128, width=128, frames=16)


@pytest.fixture(scope="module")
def run() -> DSALiverRun:
    """Noiseless, with breathing and a shift: masks move, tumours can be measured exactly."""
    params = DSALiverParams(**SMALL, num_rich=3, num_poor=3, noise=False, breathing_px=8.0, breathing_onset=0.3,
                            shift_px=3.0, shift_time=0.5)
    return generate_dsa_liver(params, seed=5)


@pytest.fixture(scope="module")
def still_run() -> DSALiverRun:
    """No motion and no noise: the subtraction must cancel the anatomy exactly."""
    params = DSALiverParams(**SMALL, noise=False, injection_site="celiac", bowel_loops=4, pseudo_lesions=2).without_motion()
    return generate_dsa_liver(params, seed=2)


# ---- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_runs_and_other_seeds_differ() -> None:
    params = DSALiverParams(height=96, width=112, frames=12)
    first, second = generate_dsa_liver(params, seed=3), generate_dsa_liver(params, seed=3)
    for name in ("liver", "instances", "contrast"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    assert np.array_equal(first.video.frames, second.video.frames)
    assert np.array_equal(first.masks.labels, second.masks.labels)
    assert first.tumours == second.tumours and first.params == second.params
    other = generate_dsa_liver(params, seed=4)
    assert not np.array_equal(first.video.frames, other.video.frames)
    assert not np.array_equal(first.liver, other.liver)


def test_shapes_types_labels_and_metadata(run: DSALiverRun) -> None:
    T, H, W = 16, 128, 128
    assert run.video.frames.shape == (T, H, W) and run.video.frames.dtype == np.float32
    assert 0.0 <= run.video.frames.min() and run.video.frames.max() <= 1.0
    assert run.video.fps == pytest.approx(3.0)
    assert run.masks.label_table == DSA_LIVER_LABELS
    assert run.liver.shape == run.instances.shape == run.contrast.shape == (T, H, W)
    labels = run.masks.labels
    assert np.array_equal(labels >= 1, run.liver)  # tumour over liver
    assert np.array_equal(labels == 2, run.instances > 0)
    assert run.video.metadata["tumours"] == run.tumours
    assert run.video.metadata["display"]["neutral"] == float(NEUTRAL)
    json.dumps(run.video.metadata)  # plain JSON
    # The liver moves with breathing and the shift: its mask is not the same on every frame.
    assert not np.array_equal(run.liver[0], run.liver[-1])


# ---- subtraction ----------------------------------------------------------------------------


def test_first_frame_is_exactly_neutral_without_noise(run: DSALiverRun, still_run: DSALiverRun) -> None:
    for r in (run, still_run):
        assert np.all(r.video.frames[0] == NEUTRAL)
        assert not r.contrast[0].any()


def test_static_anatomy_cancels_exactly_away_from_iodine(still_run: DSALiverRun) -> None:
    frames, contrast = still_run.video.frames, still_run.contrast
    params = still_run.params
    iodine = (contrast > 0).any(axis=0).astype(np.uint8)
    assert 0.02 < iodine.mean() < 0.8  # the run has iodine, and pixels without it
    reach = int(math.ceil(4 * params.blur_sigma * params.scale)) + 2  # the detector blur's kernel
    near = cv2.dilate(iodine, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    far = ~near
    assert far.mean() > 0.2
    assert np.all(frames[:, far] == NEUTRAL)
    # ... and where iodine is, frames are darker than neutral once it has arrived.
    late = frames[-1][contrast[-1] > 0.05]
    assert late.size and float(late.mean()) < float(NEUTRAL) - 0.03


def test_motion_leaves_bright_and_dark_misregistration(run: DSALiverRun) -> None:
    # Before the breath-hold fails and the patient shifts nothing moved: with no iodine the
    # frame is neutral. Afterwards, anatomy edges leave values on both sides of neutral.
    last = run.video.frames[-1]
    no_iodine = run.contrast[-1] == 0
    assert (last[no_iodine] > NEUTRAL + 0.05).any() and (last[no_iodine] < NEUTRAL - 0.05).any()


# ---- tumours --------------------------------------------------------------------------------


def test_tumour_areas_classes_and_liver_containment(run: DSALiverRun) -> None:
    params = run.params
    s2 = params.scale**2
    low, high = max(1, round(params.tumour_min_area * s2)), max(1, round(params.tumour_max_area * s2))
    assert len(run.tumours) == params.num_rich + params.num_poor
    assert sorted(t["class"] for t in run.tumours) == ["poor"] * 3 + ["rich"] * 3
    for tumour in run.tumours:
        assert low <= tumour["area_px"] <= high
        assert (run.instances[0] == tumour["id"]).sum() == tumour["area_px"]
        x, y = tumour["centroid"]
        assert 0 <= x < params.width and 0 <= y < params.height
    for t in range(params.frames):
        tumour = run.instances[t] > 0
        assert tumour.any()
        assert not (tumour & ~run.liver[t]).any()  # every tumour pixel lies in the liver


def test_larger_frames_give_tumours_in_the_paper_range() -> None:
    params = DSALiverParams(height=256, width=320, frames=4, num_rich=5, num_poor=5, noise=False)
    tumours = generate_dsa_liver(params, seed=1).tumours
    s2 = params.scale**2
    assert all(round(6 * s2) <= t["area_px"] <= round(220 * s2) for t in tumours)
    assert len({t["area_px"] for t in tumours}) > 3  # drawn, not all the same


def mean_darkness(run: DSALiverRun, tumour: dict, frame: int) -> float:
    mask = run.instances[frame] == tumour["id"]
    return float(NEUTRAL - run.video.frames[frame][mask].mean())


def test_rich_tumours_grow_and_outshine_poor_ones(run: DSALiverRun) -> None:
    params = run.params
    first_contrast = int(np.argmax(params.run_fractions > params.injection_start))
    early = range(first_contrast, first_contrast + 2)
    last = params.frames - 1
    rich = [t for t in run.tumours if t["class"] == "rich"]
    poor = [t for t in run.tumours if t["class"] == "poor"]
    rich_last = [mean_darkness(run, t, last) for t in rich]
    poor_last = [mean_darkness(run, t, last) for t in poor]
    assert np.mean(rich_last) > np.mean(poor_last) + 0.05
    for tumour, final in zip(rich, rich_last):
        assert final > max(mean_darkness(run, tumour, f) for f in early) + 0.05
    # Rich blush is stable at the end of the run (what the key frame looks for).
    settled = [abs(mean_darkness(run, t, last) - mean_darkness(run, t, last - 1)) for t in rich]
    assert max(settled) < 0.25 * min(rich_last)


def test_noise_follows_the_dose() -> None:
    # Frame 0 holds no iodine and no motion: what is left is the quantum noise of two exposures.
    spreads = []
    for dose in (2000.0, 200000.0):
        params = DSALiverParams(height=96, width=96, frames=2, dose=dose)
        frame = generate_dsa_liver(params, seed=0).video.frames[0]
        assert abs(float(frame.mean()) - float(NEUTRAL)) < 0.01
        spreads.append(float(frame.std()))
    assert spreads[0] > 3 * spreads[1] > 0


# ---- parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"frames": 1}, "frames"),
        ({"height": 16}, "height"),
        ({"width": 5000}, "width"),
        ({"num_rich": 0, "num_poor": 0}, "num_rich + num_poor"),
        ({"num_rich": 7, "num_poor": 4}, "num_rich + num_poor"),
        ({"num_poor": 1.5}, "num_poor"),
        ({"tumour_min_area": 300.0}, "tumour_min_area"),
        ({"injection_site": "portal"}, "injection_site"),
        ({"dose": -1.0}, "dose"),
        ({"noise": "yes"}, "noise"),
        ({"breathing_px": float("nan")}, "breathing_px"),
        ({"washout_start": 0.1}, "washout_start"),
        ({"fps": True}, "fps"),
        ({"min_radius": 3.0}, "min_radius"),
    ],
)
def test_bad_parameters_raise_one_line_input_error_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(InputError) as error:
        DSALiverParams(**changes)
    message = str(error.value)
    assert field in message and "\n" not in message


def test_bad_generate_arguments_and_unknown_keys() -> None:
    with pytest.raises(InputError, match="seed"):
        generate_dsa_liver(DSALiverParams(**SMALL), seed=-1)
    with pytest.raises(InputError, match="DSALiverParams"):
        generate_dsa_liver({"height": 128}, seed=0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown keys"):
        DSALiverParams.from_dict({"height": 128, "colour": "red"})


def test_round_trip_and_sampled_parameters_are_valid() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = DSALiverParams.sample(rng, height=96, width=128, frames=20, fps=4.0)
        data = json.loads(json.dumps(params.to_dict()))
        assert DSALiverParams.from_dict(data) == params
        assert (params.height, params.width, params.frames, params.fps) == (96, 128, 20, 4.0)
        assert 1 <= params.num_rich + params.num_poor <= 10
        assert 6.0 <= params.tumour_min_area <= params.tumour_max_area <= 220.0
    still = params.without_motion()
    assert still.breathing_px == still.shift_px == still.peristalsis_px == 0.0


# ---- data set and command line ------------------------------------------------------------


def test_cli_writes_davis_folder_with_dicom_instances_and_tumour_list(tmp_path, capsys) -> None:
    out = tmp_path / "dsa"
    code = main(["data", "dsa-liver", "--out", str(out), "--n", "2", "--seed", "0", "--size", "112x96", "--frames", "12"])
    assert code == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["label_table"] == {"0": "background", "1": "liver", "2": "tumour"}
    assert sorted(meta["sequences"]) == ["dsa_liver_000", "dsa_liver_001"]
    for name, entry in meta["sequences"].items():
        assert (entry["width"], entry["height"], entry["frames"]) == (112, 96, 12)
        assert len(list((out / "JPEGImages" / name).glob("*.png"))) == 12
        assert len(list((out / "Annotations" / name).glob("*.png"))) == 12
        assert (out / "DICOM" / f"{name}.dcm").is_file()
        assert entry["tumours"] and {"id", "class", "centroid", "area_px"} <= set(entry["tumours"][0])
        assert DSALiverParams.from_dict(entry["generator"]).frames == 12
        with np.load(out / "Instances" / f"{name}.npz") as data:
            instances = data["instances"]
        assert instances.shape == (12, 96, 112)
        assert sorted(set(np.unique(instances).tolist()) - {0}) == [t["id"] for t in entry["tumours"]]
    capsys.readouterr()
    assert main(["info", "--json", str(out / "DICOM" / "dsa_liver_001.dcm")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 12 and (info["width"], info["height"]) == (112, 96)
    assert info["fps"] == pytest.approx(3.0, abs=1e-3)


def test_cli_size_and_frames_errors_are_one_line(capsys) -> None:
    for argv, word in ((["--size", "20"], "frame size"), (["--size", "64x"], "frame size"), (["--frames", "1"], "2 frames")):
        assert main(["data", "dsa-liver", "--out", "x", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and word in err
