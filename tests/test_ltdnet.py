"""DSA-LTDNet: key-frame selection, frame difference, losses, the TDL's target, every variant's
network, a tiny training run whose weights load, and `angioseg hcc` on tiny synthetic runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from angioseg.cli.main import main
from angioseg.data.davis import DavisFolder, DavisWriter
from angioseg.errors import InputError
from angioseg.io import read_video, write_dicom
from angioseg.methods.ltdnet.evaluation import evaluate_weights, score_key_frame, summarise
from angioseg.methods.ltdnet.inputs import InputSpec, resize_frames, sample_inputs, to_batch
from angioseg.methods.ltdnet.keyframe import (
    background_subtraction,
    frame_difference,
    key_frame_scores,
    select_key_frame,
    tdl_window,
)
from angioseg.methods.ltdnet.training import LTDNetTrainConfig, load_runs, sample_arrays, train
from angioseg.methods.ltdnet.weights import MAX_WEIGHTS_BYTES, VARIANTS, load_ltdnet
from angioseg.nn.losses import bce_dice_loss
from angioseg.nn.ltdnet import LTDNet, ltdnet_loss, tdl_loss
from angioseg.types import LabelMap, Video

LABELS = {0: "background", 1: "liver", 2: "tumour"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _steps_run(differences: dict[int, float], count: int = 20, default: float = 1.0) -> np.ndarray:
    """Flat frames whose adjacent summed |differences| D_i are `differences` (else `default`), 4×5 px."""
    levels = [0.0]
    for i in range(count - 1):
        levels.append(levels[-1] + differences.get(i, default) / 20.0)
    return np.stack([np.full((4, 5), 0.1 + v, np.float32) for v in levels])


def test_key_frame_is_the_least_changing_candidate_of_the_last_15() -> None:
    # 20 frames: the window is frames 5..19, candidates 6..18. D_11 = D_12 = 0.1 makes frame 12
    # the most stable; D_4 = D_5 = 0 and D_18 = 0 would favour frames 5 and 19, which are not
    # candidates (frame 5 has no difference before it inside the window, frame 19 none after).
    frames = _steps_run({4: 0.0, 5: 0.0, 11: 0.1, 12: 0.1, 18: 0.0})
    indices, scores = key_frame_scores(frames)
    assert indices.tolist() == list(range(6, 19))
    expected = {6: 0.5, 11: 0.55, 12: 0.1, 13: 0.55, 18: 0.5}
    for frame, score in expected.items():
        assert scores[frame - 6] == pytest.approx(score, rel=1e-3)
    assert select_key_frame(frames) == 12
    # ties go to the earliest candidate
    assert select_key_frame(_steps_run({8: 0.2, 9: 0.2, 14: 0.2, 15: 0.2})) == 9


def test_key_frame_needs_15_frames() -> None:
    with pytest.raises(InputError, match="at least 15 frames.*has 14"):
        select_key_frame(np.zeros((14, 4, 4), np.float32))


def test_frame_difference_uses_k_minus_9_and_clamps_at_the_start() -> None:
    frames = np.stack([np.full((3, 3), t / 100.0, np.float32) for t in range(20)])
    assert np.allclose(frame_difference(frames, 12), 0.09)  # F_12 − F_3
    assert np.allclose(frame_difference(frames, 12, step=5), 0.05)  # F_12 − F_7
    assert np.allclose(frame_difference(frames, 5), 0.05)  # F_5 − F_0 (5 − 9 < 0: clamped)
    assert np.allclose(frame_difference(frames, 13, step=13), 0.13)  # the sweep's widest step
    assert np.allclose(background_subtraction(frames, 12), 0.11)  # F_12 − median(F_0, F_1, F_2)
    window = tdl_window(frames, 12)
    assert window.shape == (10, 3, 3) and np.allclose(window[:, 0, 0], np.arange(3, 13) / 100.0)
    with pytest.raises(InputError, match="10 consecutive frames"):
        tdl_window(frames, 8)


def test_bce_dice_loss_on_a_hand_computed_case() -> None:
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    # p = 0.5 everywhere: BCE = ln 2; Dice = 1 − (2·1.5 + 1) / (2 + 3 + 1) = 1/3
    assert float(bce_dice_loss(logits, target)) == pytest.approx(0.5 * math.log(2) + 0.5 / 3, abs=1e-6)
    assert float(bce_dice_loss(logits, target, a=1.0)) == pytest.approx(math.log(2), abs=1e-6)


def test_tdl_and_total_losses_on_a_hand_computed_case() -> None:
    td = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    fd = torch.tensor([0.0, 2.0, 5.0, 4.0]).view(1, 1, 2, 2)
    assert float(tdl_loss(td, fd)) == pytest.approx(0.75)  # (1 + 0 + 2 + 0) / 4
    zeros = torch.zeros(1, 1, 2, 2)
    tumour = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    liver = torch.ones(1, 1, 2, 2)
    seg = 0.5 * math.log(2) + 0.5 / 3
    lrs = 0.5 * math.log(2) + 0.5 * (1 - (2 * 2 + 1) / (2 + 4 + 1))
    losses = ltdnet_loss({"tumour": zeros, "liver": zeros, "td": td}, tumour=tumour, liver=liver, fd=fd)
    assert float(losses["seg"]) == pytest.approx(seg, abs=1e-6)
    assert float(losses["lrs"]) == pytest.approx(lrs, abs=1e-6)
    assert float(losses["total"]) == pytest.approx(0.1 * 0.75 + 1.0 * lrs + seg, abs=1e-6)
    unsupervised = ltdnet_loss({"tumour": zeros, "td": td}, tumour=tumour, lambda_tdl=0.0)
    assert "tdl" not in unsupervised and float(unsupervised["total"]) == pytest.approx(seg, abs=1e-6)


def _dsa_run(seed: int, *, count: int = 22, height: int = 48, width: int = 40) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """A small synthetic subtracted run: grey background, a liver blush in the upper left, one
    rich tumour whose blush darkens until frame 13, stays until 15 and washes out (key frame
    14), a bowel look-alike, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    liver = ((yy - 16) / 13.0) ** 2 + ((xx - 14) / 12.0) ** 2 <= 1
    cy, cx = 14 + int(rng.integers(-2, 3)), 12 + int(rng.integers(-2, 3))
    tumour = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
    bowel = (yy - 38) ** 2 + (xx - 30) ** 2 <= 12
    frames = []
    for t in range(count):
        strength = min(t, 13) / 13.0 if t <= 15 else 1.0 - 0.08 * (t - 15)  # rise, plateau 13-15, wash-out
        frame = np.full((height, width), 0.6, np.float32)
        frame[liver] -= 0.05 * strength
        frame[tumour] -= 0.3 * strength
        frame[bowel] -= 0.25 * strength
        frame += rng.normal(0, 0.004, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 1))
    labels = np.where(tumour, 2, np.where(liver, 1, 0)).astype(np.uint8)
    meta = [{"id": 1, "class": "rich", "centroid": [cx, cy], "area_px": int(tumour.sum())}]
    return np.stack(frames), np.repeat(labels[None], count, axis=0), meta


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dsa") / "train"
    with DavisWriter(root, label_table=LABELS, info={"generator": "test"}) as writer:
        for index in range(3):
            frames, labels, tumours = _dsa_run(index)
            writer.add(f"run{index}", Video(frames, fps=7.5, pixel_spacing=(0.5, 0.5)), LabelMap(labels, LABELS),
                       meta={"tumours": tumours})
            (writer.path / "Instances").mkdir(exist_ok=True)  # tumour ids per frame, as `angioseg data dsa-liver` writes
            np.savez_compressed(writer.path / "Instances" / f"run{index}.npz", instances=(labels == 2).astype(np.uint8))
    return root


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_gives_64_by_64_outputs(name: str) -> None:
    variant = VARIANTS[name]
    config = variant.network(width="lite", depth=4)
    net = LTDNet(config).eval()
    frames = resize_frames(_dsa_run(0)[0], 64)
    batch = to_batch([sample_inputs(frames, 15, config=config, spec=InputSpec(size=64)) for _ in range(2)])
    with torch.no_grad():
        out = net(batch["key"], window=batch.get("window"), motion=batch.get("motion"))
    assert out["tumour"].shape == (2, 1, 64, 64)
    assert ("liver" in out) == variant.liver and ("td" in out) == (variant.motion == "tdl")
    for value in out.values():
        assert value.shape == (2, 1, 64, 64) and torch.isfinite(value).all()


def test_tdl_target_is_the_frame_difference(tiny_data: Path) -> None:
    spec = InputSpec(size=32)
    config = VARIANTS["ltdnet"].network(depth=3)
    runs, skipped = load_runs([str(tiny_data)], config=config, spec=spec, extra_frames=2, log=lambda _: None)
    assert not skipped and len(runs) == 3
    sequence = DavisFolder(tiny_data).load("run0")
    small = resize_frames(sequence.video.frames, 32)
    run = runs[0]
    assert run.key == select_key_frame(sequence.video.frames) and run.samples == [run.key, run.key + 1, run.key + 2]
    assert run.first > 0  # the run keeps only the frames its samples read
    for frame in run.samples:
        arrays = sample_arrays(run, frame, config=config, spec=spec, with_fd=True)
        fd = frame_difference(small, frame, 9)
        assert np.allclose(arrays["fd"][0], fd, atol=2e-3)  # float16 storage
        assert np.allclose(arrays["window"][-1], arrays["key"][0]) and np.allclose(arrays["window"][-1] - arrays["window"][0], fd, atol=2e-3)
        # every sample keeps the key frame's masks
        assert np.array_equal(arrays["tumour_target"], runs[0].tumour[None])
    assert float(tdl_loss(torch.from_numpy(arrays["fd"]), torch.from_numpy(fd[None]))) < 1e-3


@pytest.fixture(scope="module")
def tiny_weights(tiny_data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "ltdnet"
    code = main(["train", "ltdnet", "--data", str(tiny_data), "--out", str(out), "--variant", "ltdnet", "--steps", "5",
                 "--pretrain-steps", "2", "--batch", "2", "--size", "32", "--threads", "1"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [(h["phase"], h["step"]) for h in summary["history"]] == [("pretrain", 2), ("main", 5)]
    return out / "weights.safetensors"


def test_five_step_training_writes_weights_that_load(tiny_weights: Path, tiny_data: Path) -> None:
    assert tiny_weights.stat().st_size < MAX_WEIGHTS_BYTES
    loaded = load_ltdnet(tiny_weights)
    assert loaded.variant == "ltdnet" and loaded.config.motion == "tdl" and loaded.config.liver
    assert loaded.inputs.size == 32 and loaded.inputs.frame_step == 9
    assert loaded.info["steps_done"] == 5 and loaded.info["training_samples"] == 9 and loaded.info["commit"]
    assert loaded.info["config"]["data"] == [str(tiny_data)]
    report = evaluate_weights(tiny_weights, tiny_data)
    assert report["summary"]["runs"] == 3 and report["summary"]["detection"]["rich"]["tumours"] == 3


def test_training_resumes_to_the_same_weights(tiny_data: Path, tmp_path: Path) -> None:
    def config(out: Path) -> LTDNetTrainConfig:
        return LTDNetTrainConfig(variant="ffs+tdl", data=[str(tiny_data)], out=str(out), steps=3, pretrain_steps=2, batch=2,
                                 size=32, depth=2, checkpoint_every=2, log_every=1)

    class Interrupted(Exception):
        pass

    def stop_at_main_step_2(line: str) -> None:
        if line.startswith("{") and json.loads(line) == {**json.loads(line), "phase": "main", "step": 2}:
            raise Interrupted

    straight = train(config(tmp_path / "a"), log=lambda _: None)
    with pytest.raises(Interrupted):
        train(config(tmp_path / "b"), log=stop_at_main_step_2)  # last checkpoint: pre-training done
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["phase"] == "pretrain"
    resumed = train(config(tmp_path / "b"), resume=True, log=lambda _: None)
    a = load_ltdnet(straight["weights"]).net.state_dict()
    b = load_ltdnet(resumed["weights"]).net.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_scores_count_detections_and_false_positives_outside_the_liver() -> None:
    labels = np.zeros((20, 20), np.uint8)
    labels[2:12, 2:12] = 1
    labels[3:6, 3:6] = 2  # rich tumour, 9 px
    labels[8:10, 8:10] = 2  # poor tumour, 4 px
    tumours = [{"class": "rich", "centroid": [4, 4], "area": 9}, {"class": "poor", "centroid": {"x": 8.5, "y": 8.5}, "area": 4}]
    predicted = np.zeros_like(labels, bool)
    predicted[4:7, 4:7] = True  # overlaps the rich one (4 px of 9)
    predicted[15:17, 15:17] = True  # 4 px outside the liver
    row = score_key_frame(predicted, labels, LABELS, tumours=tumours)
    assert row["dice"] == pytest.approx(2 * 4 / (13 + 13))
    assert row["sensitivity"] == pytest.approx(4 / 13) and row["precision"] == pytest.approx(4 / 13)
    assert [t["detected"] for t in row["tumours"]] == [True, False]
    assert row["fp_outside_liver_px"] == 4 and row["fp_components_outside_liver"] == 1
    summary = summarise([row])
    assert summary["detection"]["rich"]["rate"] == 1.0 and summary["detection"]["poor"]["rate"] == 0.0
    # the same with the tumours' pixels given by an instance map (ids instead of centroids)
    instances = np.where(labels == 2, 0, 0).astype(np.uint8)
    instances[3:6, 3:6], instances[8:10, 8:10] = 1, 2
    by_id = [{"id": 1, "class": "rich"}, {"id": 2, "class": "poor"}]
    assert [t["detected"] for t in score_key_frame(predicted, labels, LABELS, tumours=by_id, instances=instances)["tumours"]] == [True, False]
    # a centroid far from every component leaves the tumour unmatched
    far = score_key_frame(predicted, labels, LABELS, tumours=[{"class": "poor", "centroid": [18, 1], "area": 4}])
    assert far["tumours"][0]["components"] == [] and summarise([far])["detection"]["poor"]["unmatched"] == 1


def test_hcc_writes_every_output_and_refuses_short_runs(tiny_weights: Path, tmp_path: Path, capsys) -> None:
    frames, _, _ = _dsa_run(5, count=24, height=50, width=44)
    run = write_dicom(Video(frames, fps=7.5, pixel_spacing=(0.4, 0.5)), tmp_path / "run.dcm")
    out = tmp_path / "hcc"
    assert main(["hcc", str(run), "-o", str(out), "--weights", str(tiny_weights), "--threads", "1"]) == 0
    assert "key frame" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert names == {"key_frame.png", "tumour_mask.png", "liver_mask.png", "labels.png", "masks.npz", "probabilities.npz",
                     "overlay.png", "report.json"}
    report = json.loads((out / "report.json").read_text())
    assert report["key_frame"] == select_key_frame(read_video(run).frames) == 14
    assert report["tumour_count"] == len(report["tumours"]) and report["network"]["variant"] == "ltdnet"
    assert report["input"]["pixel_spacing_mm"] == [0.4, 0.5]
    for tumour in report["tumours"]:
        assert tumour["area_mm2"] == pytest.approx(tumour["area_px"] * 0.2, abs=1e-3)
    assert "run.dcm" not in (out / "report.json").read_text()  # no file names (they can carry a patient's name)
    with np.load(out / "masks.npz") as masks:
        assert masks["labels"].shape == (50, 44) and masks["tumour_instances"].max() == report["tumour_count"]
    with np.load(out / "probabilities.npz") as probabilities:
        assert probabilities["tumour"].shape == (50, 44) and probabilities["liver"].dtype == np.float16
    from PIL import Image

    assert Image.open(out / "overlay.png").size == (44, 50)
    # an earlier output is replaced only with --overwrite
    assert main(["hcc", str(run), "-o", str(out), "--weights", str(tiny_weights)]) == 2
    assert main(["hcc", str(run), "-o", str(out), "--weights", str(tiny_weights), "--overwrite"]) == 0
    capsys.readouterr()
    short = write_dicom(Video(frames[:10], fps=7.5), tmp_path / "short.dcm")
    assert main(["hcc", str(short), "-o", str(tmp_path / "short"), "--weights", str(tiny_weights)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 15 frames" in err and "has 10" in err
    assert not (tmp_path / "short").exists()


def test_a_tdl_network_refuses_a_key_frame_without_9_frames_before_it(tiny_weights: Path) -> None:
    from angioseg.pipelines.hcc import analyse_video

    frames = np.clip(_steps_run({3: 0.0, 4: 0.0}, count=16), 0, 1)  # 16 frames, key frame 4
    assert select_key_frame(frames) == 4
    with pytest.raises(InputError, match="10 consecutive frames ending at the key frame"):
        analyse_video(Video(frames), weights=tiny_weights)


def test_hcc_without_weights_says_so_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    import angioseg.methods.ltdnet.weights as weights

    monkeypatch.setattr(weights, "shipped_ltdnet_weights", lambda: tmp_path / "absent.safetensors")
    run = tmp_path / "run.npy"
    np.save(run, np.zeros((20, 8, 8), np.float32))
    assert main(["hcc", str(run), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--weights" in err


def test_every_variant_starts_at_the_tumour_prior() -> None:
    """The FFS head starts at p = 0.01 (RetinaNet's prior initialisation), whatever the seed
    and the inputs, so no variant starts with p ≈ 0.8 everywhere (docs/methods/ltdnet.md)."""
    import math

    from angioseg.methods.ltdnet.weights import get_variant
    from angioseg.nn.ltdnet import TUMOUR_PRIOR

    for name, seed in (("unet", 0), ("ffs+fd", 0), ("ffs+fd", 1), ("ltdnet", 2)):
        torch.manual_seed(seed)
        net = LTDNet(get_variant(name).network(width="lite")).eval()
        assert float(net.ffs.head.bias.detach()) == pytest.approx(math.log(TUMOUR_PRIOR / (1 - TUMOUR_PRIOR)))
        key = torch.rand(2, 1, 64, 64)
        inputs = {"window": torch.rand(2, 10, 64, 64)} if net.config.motion == "tdl" else (
            {"motion": torch.rand(2, net.config.motion_channels, 64, 64) - 0.5} if net.config.motion != "none" else {})
        with torch.no_grad():
            p = torch.sigmoid(net(key, **inputs)["tumour"])
        assert 0.002 < float(p.mean()) < 0.05, (name, seed, float(p.mean()))
