"""Training, weights and inference of the supervised segmenters, on tiny generated data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from angioseg import InputError, Video
from angioseg.cli.main import main
from angioseg.methods import get
from angioseg.methods.supervised.clips import ClipSampler, TrainingSequence, clip_indices
from angioseg.methods.supervised.inference import predict_probabilities
from angioseg.methods.supervised.training import TrainConfig, train
from angioseg.methods.supervised.weights import get_spec, load_model, read_metadata, save_weights


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sup")
    assert main(["data", "phantom", "--out", str(root / "ph"), "--n", "2", "--seed", "3", "--size", "64", "--frames", "5", "--no-dicom", "--no-overlay"]) == 0
    return root


def test_clip_indices_repeat_edge_frames():
    assert clip_indices(0, 5, 2).tolist() == [0, 0, 0, 1, 2]
    assert clip_indices(4, 5, 2).tolist() == [2, 3, 4, 4, 4]
    assert clip_indices(2, 5, 1).tolist() == [1, 2, 3]


def test_sampler_shapes_and_vessel_bias():
    frames = np.zeros((4, 40, 40), np.uint8)
    vessel = np.zeros((4, 40, 40), bool)
    vessel[:, 30:32, 30:34] = True
    sampler = ClipSampler([TrainingSequence("s", frames, vessel)], radius=2, crop=16, vessel_bias=1.0, seed=0)
    inputs, targets = sampler.batch(6)
    assert inputs.shape == (6, 5, 16, 16) and targets.shape == (6, 1, 16, 16)
    assert (targets.flatten(1).sum(1) > 0).all()  # every crop holds the vessel
    with pytest.raises(InputError, match="crop"):
        ClipSampler([TrainingSequence("s", frames, vessel)], radius=0, crop=64)


def test_training_is_deterministic_and_resumable(tiny_data, tmp_path):
    common = dict(model="cenet3d2d-n1", data=[str(tiny_data / "ph")], val=[str(tiny_data / "ph")], steps=4,
                  batch=2, crop=32, checkpoint_every=2, val_every=2, val_frames=1, seed=5)
    train(TrainConfig(out=str(tmp_path / "a"), **common), log=lambda _: None)
    train(TrainConfig(out=str(tmp_path / "b"), **{**common, "steps": 2}), log=lambda _: None)
    train(TrainConfig(out=str(tmp_path / "b"), **common), resume=True, log=lambda _: None)
    state_a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    state_b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["model"]
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    info = read_metadata(tmp_path / "a" / "best.safetensors")
    assert info["architecture"] == "cenet3d2d" and info["radius"] == 1
    assert read_metadata(tmp_path / "a" / "last.safetensors")["info"]["step"] == 4
    assert info["info"]["config"]["data"] == [str(tiny_data / "ph")]


def test_weights_round_trip_and_bad_files(tmp_path):
    spec = get_spec("cenet")
    model = spec.build().eval()
    path = save_weights(model, spec, tmp_path / "w.safetensors", info={"command": "test"})
    loaded, loaded_spec, info = load_model(path)
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))
    assert loaded_spec == spec and info == {"command": "test"}
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="bad.safetensors"):
        load_model(tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")


def test_segmenter_with_given_weights_segments_a_video(tmp_path):
    spec = get_spec("cenet3d2d-n2")
    path = save_weights(spec.build(), spec, tmp_path / "n2.safetensors", info={})
    segmenter = get("cenet3d2d", n=2, weights=str(path))
    video = Video(np.random.default_rng(0).random((5, 48, 40)).astype(np.float32), fps=10)
    result = segmenter.segment(video)
    assert result.masks.shape == (5, 48, 40) and result.probabilities.dtype == np.float32
    direct = predict_probabilities(segmenter.model, segmenter.spec, video.frames, batch=1)  # batching changes nothing
    assert np.allclose(direct, result.probabilities, atol=1e-4)


def test_method_spec_parsing():
    from angioseg.methods import parse_method_spec

    assert parse_method_spec("frangi") == ("frangi", {})
    assert parse_method_spec("seq-cenet:k=2,motion=none") == ("seq-cenet", {"k": 2, "motion": "none"})
    assert parse_method_spec("cenet3d2d: n=1, threshold=0.4, backend=onnx") == (
        "cenet3d2d", {"n": 1, "threshold": 0.4, "backend": "onnx"})
    assert parse_method_spec("x:flag=true,fps-goal=15") == ("x", {"flag": True, "fps_goal": 15})
    for bad in (":k=1", "seq-cenet:k", "seq-cenet:2=k"):
        with pytest.raises(InputError, match="method spec"):
            parse_method_spec(bad)


@pytest.mark.parametrize("name, size", [("cenet3d2d-n2", (197, 233)), ("cenet", (300, 300)), ("unet", (200, 210))])
def test_onnx_backend_gives_the_same_masks(tmp_path, name, size):
    pytest.importorskip("onnxruntime")
    from angioseg.methods.supervised.onnx_backend import OnnxModel, export_onnx

    spec = get_spec(name)
    torch.manual_seed(1)
    path = save_weights(spec.build(), spec, tmp_path / "w.safetensors", info={})
    video = Video(np.random.default_rng(2).random((6,) + size).astype(np.float32), fps=10)
    method = "cenet3d2d" if spec.radius else name
    eager = get(method, weights=str(path), threshold=0.5)
    onnx = get(method, weights=str(path), threshold=0.5, backend="onnx")
    assert onnx.options()["backend"] == "onnx"
    reference, exported = eager.segment(video), onnx.segment(video)
    assert np.abs(reference.probabilities - exported.probabilities).max() < 1e-4
    decided = np.abs(reference.probabilities - 0.5) > 1e-4  # pixels not on the threshold itself
    assert decided.mean() > 0.99
    assert np.array_equal(reference.masks.labels[decided], exported.masks.labels[decided])
    file = export_onnx(eager.model, eager.spec, tmp_path / "model.onnx")  # a file serves any size too
    logits = OnnxModel(file.read_bytes())(torch.rand(2, 2 * spec.radius + 1, 200, 257))
    assert tuple(logits.shape) == (2, 1, 200, 257)
    if spec.architecture != "unet":  # the RMP's 6x6 pool needs 192 px after padding
        with pytest.raises(InputError, match="at least 161 pixels"):
            OnnxModel(file.read_bytes())(torch.rand(1, 2 * spec.radius + 1, 150, 257))


def test_network_segmenter_rejects_bad_backend_options(tmp_path):
    spec = get_spec("cenet")
    path = save_weights(spec.build(), spec, tmp_path / "w.safetensors", info={})
    with pytest.raises(InputError, match="backend must be"):
        get("cenet", weights=str(path), backend="tensorflow")
    with pytest.raises(InputError, match="CPU only"):
        get("cenet", weights=str(path), backend="onnx", device="cuda")
    with pytest.raises(InputError, match="batch must be"):
        get("cenet", weights=str(path), batch=0)


def test_training_can_start_from_weights_and_records_them(tiny_data, tmp_path):
    common = dict(model="cenet3d2d-n1", data=[str(tiny_data / "ph")], steps=1, batch=2, crop=32, seed=5)
    spec = get_spec("cenet3d2d-n1")
    torch.manual_seed(3)
    start = save_weights(spec.build(), spec, tmp_path / "start.safetensors", info={"command": "first run"})
    train(TrainConfig(out=str(tmp_path / "a"), init=str(start), **common), log=lambda _: None)
    info = read_metadata(tmp_path / "a" / "best.safetensors")["info"]
    assert info["initialised_from"] == {"command": "first run"} and info["config"]["init"] == str(start)
    other = get_spec("cenet")
    wrong = save_weights(other.build(), other, tmp_path / "cenet.safetensors", info={})
    with pytest.raises(InputError, match="not the cenet3d2d"):
        train(TrainConfig(out=str(tmp_path / "b"), init=str(wrong), **common), log=lambda _: None)


def test_validation_dice_scores_the_frames_that_show_vessel():
    from angioseg.methods.supervised.training import validation_dice

    class Threshold(torch.nn.Module):  # logits > 0 exactly where the frame is bright
        def forward(self, x):
            return 50.0 * (x[:, :1] - 0.5)

    vessel = np.zeros((6, 32, 32), bool)
    vessel[3:, 10:20, 14:18] = True
    frames = (vessel * 255).astype(np.uint8)
    frames[0, 0, 0] = 255  # a stray bright pixel before the contrast arrives
    sequence = TrainingSequence("s", frames, vessel)
    spec = get_spec("cenet")
    assert validation_dice(Threshold(), spec, [sequence], frames_per_sequence=8) == pytest.approx(1.0)
    half = vessel.copy()
    half[3:, 10:15] = False  # the model sees only half of each vessel
    assert validation_dice(Threshold(), spec, [TrainingSequence("s", (half * 255).astype(np.uint8), vessel)],
                           frames_per_sequence=8) == pytest.approx(2 * 20 / (20 + 40))
    empty = TrainingSequence("e", frames[:3], vessel[:3])
    assert validation_dice(Threshold(), spec, [empty], frames_per_sequence=8) == 0.0


def test_training_on_stills_with_site_augmentation_and_dice_bce(tmp_path):
    """An image + mask folder trains like a DAVIS folder (one-frame sequences); the site
    augmentation, static clips and Dice + BCE run and are recorded in the weights."""
    import cv2

    from angioseg.methods.supervised.training import training_loss

    for sub in ("images", "masks"):
        (tmp_path / "stills" / sub).mkdir(parents=True)
    for k in range(3):
        image = np.full((48, 48), 200, np.uint8)
        cv2.line(image, (2, 10 + 10 * k), (45, 14 + 10 * k), 60, 3)
        cv2.imwrite(str(tmp_path / "stills" / "images" / f"{k}.png"), image)
        cv2.imwrite(str(tmp_path / "stills" / "masks" / f"{k}.png"), (image < 100).astype(np.uint8) * 255)
    config = TrainConfig(model="cenet3d2d-n1", data=[str(tmp_path / "stills")], out=str(tmp_path / "run"), steps=2, batch=2,
                         crop=32, augment="site", static_fraction=0.5, loss="dice+bce", seed=1)
    summary = train(config, log=lambda _: None)
    assert summary["steps"] == 2
    recorded = read_metadata(tmp_path / "run" / "last.safetensors")["info"]["config"]
    assert recorded["augment"] == "site" and recorded["loss"] == "dice+bce"
    logits = torch.tensor([[[[4.0, -4.0]]]])
    targets = torch.tensor([[[[1.0, 0.0]]]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert training_loss(logits, targets, "dice+bce") == pytest.approx(float(training_loss(logits, targets, "dice") + bce))
    with pytest.raises(InputError, match="augment"):
        train(TrainConfig(**{**config.__dict__, "augment": "heavy", "out": str(tmp_path / "x")}), log=lambda _: None)


def test_rough_outlines_are_left_out_of_the_loss():
    """ignore_outline marks the pixels within `band` of the outline (hand-checked on a
    rectangle), the sampler applies it to rough sequences only, and the loss with ignored
    pixels equals the loss over the valid pixels alone."""
    from angioseg.methods.supervised.clips import IGNORE, ignore_outline
    from angioseg.methods.supervised.training import training_loss

    mask = np.zeros((12, 12), bool)
    mask[4:8, 2:10] = True
    target = ignore_outline(mask, 1)
    assert (target[5:7, 3:9] == 1).all()  # the interior, one pixel in from the outline
    assert (target[3, 2:10] == IGNORE).all() and (target[5, 1] == IGNORE) and (target[5, 2] == IGNORE)
    assert (target[0:2] == 0).all() and target[3, 1] == 0  # beyond the band; the disc skips the corner
    assert int((target == IGNORE).sum()) == (8 + 10 + 10 + 10 + 10 + 8) - 2 * 6  # dilated minus eroded
    frames = np.zeros((1, 40, 40), np.uint8)
    vessel = np.zeros((1, 40, 40), bool)
    vessel[:, 10:30, 18:24] = True
    exact = ClipSampler([TrainingSequence("s", frames, vessel)], radius=0, crop=40, vessel_bias=0.0, ignore_band=2)
    rough = ClipSampler([TrainingSequence("s", frames, vessel, rough=True)], radius=0, crop=40, vessel_bias=0.0, ignore_band=2)
    assert (exact.batch(2)[1] >= 0).all()
    assert (rough.batch(2)[1] == IGNORE).sum() > 0
    logits = torch.tensor([[[[4.0, -4.0, 2.0, 9.0]]]])
    targets = torch.tensor([[[[1.0, 0.0, IGNORE, IGNORE]]]])
    for kind in ("dice", "dice+bce"):
        assert float(training_loss(logits, targets, kind)) == pytest.approx(float(training_loss(logits[..., :2], targets[..., :2], kind)))
    with pytest.raises(InputError, match="ignore_band"):
        ClipSampler([TrainingSequence("s", frames, vessel)], radius=0, crop=40, ignore_band=-1)
