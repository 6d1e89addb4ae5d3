"""The DeNVeR method end to end: stage 1, stage 2, the registered segmenter and the CLI.

Every run here is a few iterations on tiny phantoms (8 frames of 64 x 64): the tests check
shapes, ranges, determinism, the option checks and the wiring, not segmentation quality.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from angioseg import methods
from angioseg.cli.main import main
from angioseg.data.phantom import PhantomParams, generate_phantom
from angioseg.errors import InputError
from angioseg.methods.denver.bspline import BSplineMotion
from angioseg.methods.denver.segmenter import DenverSegmenter, foreground_layer_prior, internal_size, prior_sigmas
from angioseg.methods.denver.stage1 import run_stage1
from angioseg.methods.denver.stage2 import fit_bspline, run_stage2, stage2_schedule, trace_eulerian
from angioseg.warp import sample_pixels
from angioseg.types import Video

FAST = "denver:stage1_iterations=2,stage2_iterations=2,resolution=64"
PHASES = {"prior", "resample", "flow", "stage1", "stage2", "temporal", "upsample", "total"}


@pytest.fixture(scope="module")
def video() -> Video:
    return generate_phantom(PhantomParams(size=64, frames=8), seed=3).video


def _run(video: Video, spec: str = FAST):
    return methods.get_from_spec(spec).segment(video)


# ---------------------------------------------------------------------------------------------
# The segmenter
# ---------------------------------------------------------------------------------------------


def test_two_iterations_end_to_end(video):
    result = _run(video)
    labels, probabilities = result.masks.labels, result.probabilities
    assert labels.shape == probabilities.shape == (8, 64, 64)
    assert labels.dtype == np.uint8 and probabilities.dtype == np.float32
    assert set(np.unique(labels)) <= {0, 1}
    assert 0.0 <= probabilities.min() and probabilities.max() <= 1.0
    assert np.array_equal(labels, (probabilities >= result.options["threshold"]).astype(np.uint8))
    assert result.label_table == {0: "background", 1: "vessel"}
    assert PHASES <= set(result.timings) and all(value >= 0 for value in result.timings.values())
    assert result.options["method"] == "denver" and result.options["stage2_iterations"] == 2
    assert result.options["iterations_used"] == [2, 2]


@pytest.mark.parametrize("prior", ["foreground", "textbook"])
def test_a_per_run_threshold_is_chosen_and_reported(video, prior):
    result = _run(video, FAST + f",threshold=otsu,prior_source={prior},prior=sato")
    chosen = result.options["threshold"]
    assert isinstance(chosen, float) and 0.0 < chosen < 1.0
    assert np.array_equal(result.masks.labels, (result.probabilities >= chosen).astype(np.uint8))
    assert 0 < result.masks.labels.mean() <= 0.5


def test_same_seed_same_probabilities(video):
    first, second = _run(video), _run(video)
    assert np.array_equal(first.probabilities, second.probabilities)
    other = _run(video, FAST + ",seed=1")
    assert not np.array_equal(first.probabilities, other.probabilities)


@pytest.mark.parametrize(
    "switches",
    ["bootstrap=false", "prior_loss=false", "parallel_loss=false", "representation=siren", "postprocess=grow,crop=0,window=8",
     "prior_source=frames", "postprocess=prior", "bootstrap=false,prior_source=frames", "mask_input=frame", "temporal=0"],
)
def test_every_ablation_switch_runs(video, switches):
    result = _run(video, f"{FAST},{switches}")
    assert result.probabilities.shape == (8, 64, 64) and np.isfinite(result.probabilities).all()
    key, _, value = switches.partition(",")[0].partition("=")
    assert str(result.options[key]).lower() == value


def test_results_come_back_at_the_input_size(video):
    result = _run(video, "denver:iterations=1,resolution=32")
    assert result.options["internal_size"] == [32, 32]
    assert result.probabilities.shape == result.masks.labels.shape == (8, 64, 64)


def test_iterations_shorthand_and_explicit_values():
    segmenter = DenverSegmenter(iterations=7, stage2_iterations=3)
    assert (segmenter.stage1_iterations, segmenter.stage2_iterations) == (7, 3)
    assert DenverSegmenter().stage1_iterations is DenverSegmenter().stage2_iterations is None  # per frame
    assert DenverSegmenter().threshold == "otsu"
    assert DenverSegmenter(iterations=5, stage1_iterations=9)._iterations(80) == (9, 5)
    assert DenverSegmenter(stage2_iterations=4)._iterations(24) == (300, 4)


def test_default_steps_follow_the_run_length():
    """12.5 steps per frame, clipped to [300, 1000]: 300 for 24 frames, 375 for 30, 1000 for 80."""
    from angioseg.methods.denver.segmenter import default_iterations

    assert [default_iterations(t) for t in (1, 24, 25, 30, 79, 80, 500)] == [300, 300, 312, 375, 988, 1000, 1000]


@pytest.mark.parametrize(
    "options",
    [
        {"representation": "mlp"},
        {"resolution": 8},
        {"stage1_iterations": -1},
        {"iterations": 2.5},
        {"flow": "farneback"},
        {"flow": "raft"},
        {"prior": "hessian"},
        {"bootstrap": "no"},
        {"prior_loss": 1},
        {"threshold": 1.5},
        {"threshold": "median"},
        {"crop": 8},
        {"window": 0},
        {"seed": -1},
        {"temporal": -1},
        {"prior_source": "vesselness"},
        {"mask_input": "layer"},
        {"postprocess": "open"},
        {"min_component": -1},
        {"min_component": 2.5},
        {"dtype": "float16"},
        {"device": "gpu0"},
        {"no_such_option": 1},
    ],
)
def test_bad_options_are_one_line_input_errors(options):
    with pytest.raises(InputError) as error:
        methods.get("denver", **options)
    assert "\n" not in str(error.value)


def test_registered_and_listed():
    names = dict(methods.available())
    assert "denver" in names and names["denver"]
    assert isinstance(methods.get_from_spec("denver:parallel_loss=false"), DenverSegmenter)


def test_cli_segment_with_denver(tmp_path, capsys):
    data = tmp_path / "phantom"
    assert main(["data", "phantom", "--out", str(data), "--n", "1", "--size", "64", "--frames", "8", "--no-overlay"]) == 0
    out = tmp_path / "seg"
    assert main(["segment", str(data / "DICOM" / "phantom_000.dcm"), "-o", str(out), "--method", FAST]) == 0
    assert "segmented 8 frames with denver" in capsys.readouterr().out
    assert np.load(out / "probabilities.npz")["probabilities"].shape == (8, 2, 64, 64)  # (T, C, H, W)
    assert main(["segment", str(data / "DICOM" / "phantom_000.dcm"), "-o", str(tmp_path / "x"), "--method", "denver:resolution=4"]) == 2
    assert "resolution" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Helpers and stages
# ---------------------------------------------------------------------------------------------


def test_internal_size_and_prior_scales():
    assert internal_size(64, 64, 256) == (64, 64)
    assert internal_size(512, 512, 256) == (256, 256)
    assert internal_size(512, 400, 256) == (256, 200)
    assert prior_sigmas(512, 512) == (1.0, 3.0, 5.0, 7.0, 9.0)
    assert prior_sigmas(128, 200) == (0.5, 0.75, 1.25, 1.75, 2.25)


def test_min_component_scales_with_the_frame_area():
    """64 px at 512 x 512 is 16 px at 256 x 256: a 15-px speck goes, a 16-px blob stays."""
    probabilities = np.zeros((1, 256, 256), np.float32)
    probabilities[0, 10, 10:25] = 0.9  # 15 px
    probabilities[0, 100:104, 100:104] = 0.9  # 16 px
    prior = np.zeros((1, 256, 256), bool)
    _, masks, threshold = methods.get("denver", threshold=0.3)._finish(probabilities, (256, 256), prior)
    assert threshold == 0.3 and masks.sum() == 16 and masks[0, 100:104, 100:104].all()
    _, kept, _ = methods.get("denver", threshold=0.3, min_component=0)._finish(probabilities, (256, 256), prior)
    assert kept.sum() == 31


def test_foreground_layer_prior_finds_a_dark_line_and_ignores_a_bright_one():
    rng = np.random.default_rng(0)
    layer = rng.normal(0.0, 0.003, (3, 64, 64)).astype(np.float32)
    layer[:, 30:33, 8:56] -= 0.2  # contrast: darker than the background explains
    layer[:, 8:56, 45:48] += 0.2  # brighter than the background: not contrast
    masks = foreground_layer_prior(layer, filter="frangi")
    assert masks.shape == (3, 64, 64) and masks.dtype == bool
    assert masks[:, 31, 12:52].mean() > 0.9
    assert masks[:, 12:28, 46].mean() < 0.1 and masks[:, 40:56, 46].mean() < 0.1
    assert masks.mean() < 0.15


def test_fit_bspline_recovers_a_spline_field():
    source = BSplineMotion((4, 5, 5), 9, 20, 24, degree=2)
    with torch.no_grad():
        source.control.copy_(torch.randn(source.control.shape, generator=torch.Generator().manual_seed(0)))
    target = BSplineMotion((4, 5, 5), 9, 20, 24, degree=2)
    fit_bspline(target, source().detach())
    assert torch.allclose(target(), source(), atol=1e-4)
    with pytest.raises(InputError):
        fit_bspline(target, torch.zeros(9, 20, 20, 2))


def test_trace_eulerian_is_euler_integration():
    field = torch.zeros(16, 16, 2)
    field[..., 0] = 0.5  # uniform: every step moves by exactly -(s / n) * 0.5 along x
    grid = torch.stack(torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="xy"), dim=-1)
    positions = grid.expand(4, -1, -1, -1)
    traced = trace_eulerian(field, positions, torch.tensor([-3, 0, 2, 20]))
    assert torch.allclose(traced[..., 0] - positions[..., 0], torch.tensor([1.5, 0.0, -1.0, -10.0])[:, None, None])
    assert torch.equal(traced[..., 1], positions[..., 1])
    swirl = torch.randn(16, 16, 2, generator=torch.Generator().manual_seed(1)) * 0.3
    image = swirl.permute(2, 0, 1)[None]
    start = positions[:1] + 4.0
    back, ahead = start, start
    for _ in range(3):
        back = back - sample_pixels(image, back).permute(0, 2, 3, 1)
        ahead = ahead + sample_pixels(image, ahead).permute(0, 2, 3, 1)
    assert torch.allclose(trace_eulerian(swirl, start, torch.tensor([3])), back, atol=1e-6)
    assert torch.allclose(trace_eulerian(swirl, start, torch.tensor([-3])), ahead, atol=1e-6)


def test_stage1_shapes_and_history():
    frames = torch.rand(3, 16, 20, generator=torch.Generator().manual_seed(0))
    result = run_stage1(frames, iterations=5, batch_size=256, seed=0, progress=False)
    assert result.canonical.shape == (16, 20)
    assert result.deformation.shape == (3, 16, 20, 2)
    assert result.background.shape == result.foreground.shape == (3, 16, 20)
    assert result.losses.shape == (5,) and np.isfinite(result.losses).all()
    with pytest.raises(InputError):
        run_stage1(frames, representation="mlp")


def test_stage2_shapes_and_schedule():
    frames = torch.rand(5, 24, 24, generator=torch.Generator().manual_seed(0))
    prior = (frames < 0.2).float()
    flow = torch.zeros(4, 24, 24, 2)
    result = run_stage2(frames, prior=prior, flow=flow, background=frames.median(dim=0).values, iterations=4, window=3, crop=16,
                        progress=False)
    assert result.probabilities.shape == (5, 24, 24)
    assert result.displacement.shape == (5, 24, 24, 2) and result.eulerian.shape == (24, 24, 2)
    assert np.isfinite(result.losses["total"]).all()
    with pytest.raises(InputError):
        run_stage2(frames, prior=prior[:4], flow=flow, background=frames[0])
    layer = frames - frames.median(dim=0).values
    with_layer = run_stage2(frames, prior=prior, flow=flow, background=frames.median(dim=0).values, layer=layer, iterations=2,
                            window=3, crop=16, progress=False)
    assert with_layer.probabilities.shape == (5, 24, 24)
    assert not np.allclose(with_layer.probabilities, result.probabilities)
    with pytest.raises(InputError, match="layer must have shape"):
        run_stage2(frames, prior=prior, flow=flow, background=frames[0], layer=layer[:4])
    schedule = stage2_schedule(10, parallel=False)
    assert (schedule.prior, schedule.parallel, schedule.warp, schedule.mask, schedule.rec, schedule.ramp) == (0, None, 3, 4, 5, 1)
    assert stage2_schedule(10, prior=False).prior is None


def test_stage2_without_prior_loss_survives_crops_without_vessels():
    # L_prior off: in the first steps only the canonical foreground's warm start is on, and it is
    # a constant 0 on a crop without prior vessels (the prior is empty here): no step to take.
    frames = torch.rand(4, 24, 24, generator=torch.Generator().manual_seed(1))
    result = run_stage2(frames, prior=torch.zeros(4, 24, 24), flow=torch.zeros(3, 24, 24, 2), background=frames[0],
                        iterations=5, window=2, crop=16, schedule=stage2_schedule(5, prior=False), progress=False)
    assert result.probabilities.shape == (4, 24, 24) and np.isfinite(result.probabilities).all()


def test_vessel_crops_contain_their_prior_vessel_pixel():
    from angioseg.methods.denver.stage2 import _draw

    generator = torch.Generator().manual_seed(3)
    anchors = torch.tensor([[9, 5, 60]])  # one vessel voxel: frame 9, row 5, column 60
    for _ in range(50):
        batch = _draw(generator, 10, 64, 64, 4, 16, torch.device("cpu"), anchors=anchors, vessel_crops=1.0)
        times = batch.times.tolist()
        assert times == list(range(6, 10))  # the only window of 4 frames out of 10 that holds frame 9
        assert batch.rows.start <= 5 < batch.rows.stop and 0 <= batch.rows.start
        assert batch.cols.start <= 60 < batch.cols.stop and batch.cols.stop <= 64
    starts = {(_draw(generator, 10, 64, 64, 4, 16, torch.device("cpu"), anchors=anchors, vessel_crops=0.0).rows.start) for _ in range(50)}
    assert len(starts) > 10  # uniform draws ignore the anchor


def test_stage2_rejects_a_bad_vessel_crop_fraction():
    frames = torch.rand(3, 16, 16)
    with pytest.raises(InputError, match="vessel_crops"):
        run_stage2(frames, prior=frames > 0.5, flow=torch.zeros(2, 16, 16, 2), background=frames[0], vessel_crops=1.5)
    with pytest.raises(InputError, match="vessel_crops"):
        methods.get("denver", vessel_crops=-0.1)


def test_benchmark_script_prints_every_phase(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "denver.py"
    spec = importlib.util.spec_from_file_location("benchmark_denver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--frames", "6", "--size", "64", "--iterations", "2", "--resolution", "32", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for phase in ("resample", "flow", "stage1", "prior", "stage2", "temporal", "upsample", "total", "frangi"):
        assert f"\n{phase} " in out
    assert "vessel dice" in out


def test_the_temporal_filter_averages_along_the_motion(video):
    """temporal=0 leaves stage 2's probabilities alone; temporal=1 replaces each frame by the
    mean of its motion-compensated neighbours, so the frame-to-frame change shrinks."""
    raw = _run(video, f"{FAST},temporal=0").probabilities
    smoothed = _run(video, f"{FAST},temporal=1").probabilities
    assert not np.allclose(raw, smoothed)
    assert np.abs(np.diff(smoothed, axis=0)).mean() < np.abs(np.diff(raw, axis=0)).mean()


# ---------------------------------------------------------------------------------------------
# Quality: the trained masks beat the prior they were trained against
# ---------------------------------------------------------------------------------------------

#: Tuned by measurement (see the docstring below); changing any of these needs a re-tune.
QUALITY_PHANTOM = PhantomParams(size=64, frames=12, fps=6.0)
QUALITY_PHANTOM_SEED = 2
#: threshold 0.3, as measured below: this test is about stage 2 against its prior; with the
#: per-run threshold (the default since issue 17) this 64² run scores 0.404 (its ~1 % of vessel
#: pixels put the log-odds Otsu threshold low).
QUALITY_SPEC = "denver:stage1_iterations=300,stage2_iterations=500,seed=0,threshold=0.3"


@pytest.fixture
def one_torch_thread():
    """Pin torch to one thread for the test: the numbers below were measured so (torch's
    reductions differ in the last bits with the thread count), and on a shared 2-core machine
    two threads oversubscribed took the run from ~15 s to minutes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_trained_masks_beat_their_own_vesselness_prior(monkeypatch, one_torch_thread):
    """Stage 2 must add something to its Hessian prior: a stub that returned the prior (margin
    0) or noise (Dice ~0) fails here, which the 2-iteration wiring tests above cannot tell.

    Phantom: 64 x 64, 12 frames at 6 fps (the run spans the contrast fill: 10 of 12 frames hold
    vessel, ~1 % of the pixels; at the default 15 fps only 7 frames and ~0.4 %), seed 2.
    DeNVeR: stage 1 300 steps, stage 2 500 steps, internal resolution = input, other options
    the defaults. Score: mean per-frame Dice against the truth's vessel label (1; the catheter,
    2, is not a vessel) over the frames that hold vessel. The prior is the one the run itself
    trains against (the bool input-size masks `_prior` returns, spied on), Frangi the classical
    baseline `methods.get("frangi")`.

    Measured (CPU, 1 thread) as denver / prior / frangi for phantom seeds 0-5 x method seeds
    0, 1:
      p0: 0.598/0.488/0.079, 0.550/0.373      p3: 0.489/0.390/0.089, 0.373/0.261
      p1: 0.606/0.519/0.057, 0.600/0.483      p4: 0.620/0.528/0.062, 0.563/0.407
      p2: 0.604/0.509/0.038, 0.591/0.452      p5: 0.602/0.510/0.053, 0.545/0.446
    margin denver - prior 0.087-0.177 (this test's p2/m0: 0.095); the predicted vessel area is
    1.3-3.3 x the true one. With stage2_iterations=300 the margin was 0.08-0.15 on p0-p4 but
    -0.05 on p5/m1 (and 100-200 steps fall below the prior on method seed 1): keep >= 500.
    Stage 2 at 2 steps (an untrained mask) scores 0.042 with half the pixels marked; two torch
    threads gave 0.612 for p2/m0. The Frangi column is the filter before CLAHE and frame-sized
    scales; with them Frangi scores 0.352 on p2.
    Run time ~15-20 s on one thread (stage 2 ~10-13 s, stage 1 ~4-5 s), pinned to one thread
    (`one_torch_thread`).
    """
    run = generate_phantom(QUALITY_PHANTOM, seed=QUALITY_PHANTOM_SEED)
    truth = run.masks.labels == 1
    filled = truth.reshape(len(truth), -1).any(axis=1)
    assert 6 <= filled.sum() < len(truth)  # the fill is in the run, and so are frames before it

    def vessel_dice(masks: np.ndarray) -> float:
        from angioseg.eval.overlap import dice

        return dice(masks[filled], truth[filled])

    segmenter = methods.get_from_spec(QUALITY_SPEC)
    priors = []
    original = segmenter._prior

    def spy(*args, **kwargs):
        small, masks = original(*args, **kwargs)
        priors.append(masks)
        return small, masks

    monkeypatch.setattr(segmenter, "_prior", spy)
    predicted = segmenter.segment(run.video).masks.labels == 1
    assert len(priors) == 1 and priors[0].shape == truth.shape
    frangi = methods.get("frangi").segment(run.video).masks.labels == 1

    ours, prior, classical = vessel_dice(predicted), vessel_dice(priors[0]), vessel_dice(frangi)
    scores = f"denver {ours:.3f}, prior {prior:.3f}, frangi {classical:.3f}"
    assert ours >= prior + 0.05, scores  # measured +0.095 here, >= +0.087 over 12 seed pairs
    assert ours >= 0.45, scores  # measured 0.604 here
    assert ours >= classical + 0.1, scores  # Frangi (CLAHE, frame scales) on the frames: 0.352 here
    # Not trivially empty or full: the vessel area is of the true one's order, frame by frame.
    ratio = predicted.mean() / truth.mean()
    assert 0.5 <= ratio <= 4.0, f"predicted / true vessel area {ratio:.2f}"
    assert predicted[filled].reshape(int(filled.sum()), -1).any(axis=1).all()
    assert predicted.reshape(len(predicted), -1).mean(axis=1).max() < 0.1
