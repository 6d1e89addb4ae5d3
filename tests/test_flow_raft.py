"""RAFT (angioseg.flow.raft), its weight layouts, flow backends, training and `angioseg flow`.

Everything runs on tiny inputs (64 px, 2-3 iterations) on one CPU thread.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from angioseg.cli.main import main
from angioseg.errors import InputError
from angioseg.flow import dis_flow, estimate_flows, get_flow_backend, parse_backend_spec
from angioseg.flow.raft import (
    RAFT,
    CorrelationPyramid,
    bilinear_upsample,
    convert_state_dict,
    convex_upsample,
    correlation_volume,
    count_parameters,
    foreign_names,
    load_raft,
    raft_flow,
    raft_flows,
    save_raft,
)
from angioseg.flow.raft_training import FlowPairs, PairSampler, load_flow_pairs, sequence_loss, supervision_weight, train_raft


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(config: str, seed: int = 0) -> RAFT:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RAFT(config).eval()


@pytest.fixture(scope="module")
def small() -> RAFT:
    return seeded("small")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flow") / "phantom"
    code = main(["data", "phantom", "--out", str(out), "--n", "1", "--size", "64", "--frames", "4", "--no-overlay", "--no-dicom"])
    assert code == 0
    return out


# ---- architecture ------------------------------------------------------------------------------


def test_parameter_counts_match_the_published_models():
    # torchvision documents 5,257,536 (raft_large) and 990,162 (raft_small) parameters.
    assert count_parameters(RAFT("large")) == 5_257_536
    assert count_parameters(RAFT("small")) == 990_162


def test_forward_returns_one_full_resolution_flow_per_iteration(small):
    images = torch.rand(2, 3, 64, 72) * 255
    with torch.no_grad():
        estimates = small(images, images.flip(0), iterations=3)
    assert len(estimates) == 3
    assert all(e.shape == (2, 2, 64, 72) and torch.isfinite(e).all() for e in estimates)


def test_forward_rejects_sizes_that_are_not_multiples_of_8(small):
    with pytest.raises(InputError, match="multiples of 8"):
        small(torch.zeros(1, 3, 64, 70), torch.zeros(1, 3, 64, 70), iterations=1)


@pytest.mark.parametrize("size", [(61, 77), (40, 50), (64, 64)])
def test_raft_flow_shape_at_any_size(small, size):
    rng = np.random.default_rng(0)
    first, second = rng.random(size, dtype=np.float32), rng.random(size, dtype=np.float32)
    flow = raft_flow(small, first, second, iterations=2)
    assert flow.shape == (*size, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_raft_flow_repeats_grey_scales_to_255_and_crops_the_centre(small):
    rng = np.random.default_rng(1)
    first, second = rng.random((61, 77), dtype=np.float32), rng.random((61, 77), dtype=np.float32)
    flow = raft_flow(small, first, second, iterations=2)

    def image(frame):  # grey -> 3 channels in [0, 255], replicate-padded 61x77 -> 64x80 (1 | 2 each side)
        tensor = torch.from_numpy(frame)[None, None] * 255.0
        return F.pad(tensor, (1, 2, 1, 2), mode="replicate").repeat(1, 3, 1, 1)

    with torch.no_grad():
        expected = small(image(first), image(second), iterations=2)[-1][0, :, 1:62, 1:78].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(flow, expected, rtol=0, atol=1e-5)


def test_raft_flows_batch_equals_single_pairs(small):
    rng = np.random.default_rng(2)
    first, second = rng.random((3, 64, 64), dtype=np.float32), rng.random((3, 64, 64), dtype=np.float32)
    batch = raft_flows(small, first, second, iterations=2)
    single = np.stack([raft_flow(small, a, b, iterations=2) for a, b in zip(first, second)])
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-4)


# ---- correlation -----------------------------------------------------------------------------------


def test_correlation_volume_is_the_scaled_dot_product():
    g = torch.Generator().manual_seed(0)
    f1, f2 = torch.randn(2, 8, 3, 4, generator=g), torch.randn(2, 8, 3, 4, generator=g)
    volume = correlation_volume(f1, f2)
    assert volume.shape == (2, 3, 4, 3, 4)
    for b, i, j, k, l in [(0, 0, 0, 0, 0), (1, 2, 3, 0, 1), (0, 1, 2, 2, 3)]:
        by_hand = sum(float(f1[b, d, i, j]) * float(f2[b, d, k, l]) for d in range(8)) / math.sqrt(8)
        assert float(volume[b, i, j, k, l]) == pytest.approx(by_hand, abs=1e-5)


def test_pyramid_lookup_reads_offsets_x_major_with_zeros_outside():
    g = torch.Generator().manual_seed(1)
    f1, f2 = torch.randn(1, 4, 4, 5, generator=g), torch.randn(1, 4, 4, 5, generator=g)
    volume = correlation_volume(f1, f2)[0]  # (h, w, h, w)
    radius = 1
    pyramid = CorrelationPyramid(f1, f2, levels=2, radius=radius)
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(5.0), indexing="ij")
    coords = torch.stack([xs + 0.25, ys])[None]  # a quarter pixel to the right of every pixel
    features = pyramid.lookup(coords)
    assert features.shape == (1, 2 * 9, 4, 5)

    def level0(i, j, y, x):
        return float(volume[i, j, y, x]) if 0 <= y < 4 and 0 <= x < 5 else 0.0

    for i, j in [(0, 0), (1, 2), (3, 4)]:
        for a in range(3):  # x offset a - r
            for c in range(3):  # y offset c - r
                x, y = j + a - radius, i + c - radius
                expected = 0.75 * level0(i, j, y, x) + 0.25 * level0(i, j, y, x + 1)
                assert float(features[0, a * 3 + c, i, j]) == pytest.approx(expected, abs=1e-5)
    # level 1: the 2x2-averaged volume at coords / 2 (centre offset only, pixel (1, 2) -> (1.125, 0.5))
    pooled = F.avg_pool2d(volume[1, 2][None, None], 2, stride=2)[0, 0]  # (2, 2)
    expected = 0.5 * 0.875 * (float(pooled[0, 1]) + float(pooled[1, 1]))  # x 1.125 -> pixel 1 (0.875) and 2 (outside)
    assert float(features[0, 9 + 4, 1, 2]) == pytest.approx(expected, abs=1e-5)


# ---- upsampling ------------------------------------------------------------------------------------


def test_convex_upsampling_of_a_constant_flow_is_8_times_the_constant():
    g = torch.Generator().manual_seed(2)
    flow = torch.tensor([1.5, -0.75]).view(1, 2, 1, 1).expand(1, 2, 4, 5).contiguous()
    fine = convex_upsample(flow, torch.randn(1, 576, 4, 5, generator=g) * 3)
    assert fine.shape == (1, 2, 32, 40)
    interior = fine[0, :, 8:24, 8:32]  # cells whose 3x3 neighbours all lie inside
    torch.testing.assert_close(interior, 8 * flow[0, :, :1, :1].expand_as(interior), rtol=0, atol=1e-5)
    centre_only = torch.full((1, 9, 64, 4, 5), -1e4)
    centre_only[:, 4] = 0.0
    everywhere = convex_upsample(flow, centre_only.view(1, 576, 4, 5))
    torch.testing.assert_close(everywhere, 8 * flow.repeat_interleave(8, 2).repeat_interleave(8, 3), rtol=0, atol=1e-5)


def test_convex_upsampling_mask_channel_is_64k_plus_8s_plus_t():
    h, w = 3, 4
    flow = torch.arange(2 * h * w, dtype=torch.float32).view(1, 2, h, w)
    logits = torch.full((1, 9, 8, 8, h, w), -1e4)
    chosen = {}
    for s in range(8):
        for t in range(8):
            k = (s + 2 * t) % 9
            chosen[s, t] = k
            logits[0, k, s, t] = 0.0
    fine = convex_upsample(flow, logits.view(1, 576, h, w))
    for i, j, s, t in [(0, 0, 0, 0), (1, 2, 3, 5), (2, 3, 7, 7), (1, 1, 6, 1)]:
        ky, kx = divmod(chosen[s, t], 3)
        y, x = i + ky - 1, j + kx - 1
        inside = 0 <= y < h and 0 <= x < w
        expected = 8 * flow[0, :, y, x] if inside else torch.zeros(2)
        torch.testing.assert_close(fine[0, :, 8 * i + s, 8 * j + t], expected, rtol=0, atol=1e-4)


def test_bilinear_upsampling_of_a_constant_flow_is_8_times_the_constant():
    flow = torch.tensor([0.5, 2.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)
    torch.testing.assert_close(bilinear_upsample(flow), torch.tensor([4.0, 16.0]).view(1, 2, 1, 1).expand(1, 2, 24, 24))


# ---- weight layouts --------------------------------------------------------------------------------
# The inverse mappings below are written independently of angioseg.flow.raft, from the public
# layouts of the authors' release (core/extractor.py, core/update.py) and of torchvision's
# torchvision/models/optical_flow/raft.py.

TORCHVISION_RULES = [
    (r"^fnet\.", "feature_encoder."),
    (r"^cnet\.", "context_encoder."),
    (r"_encoder\.conv1\.", "_encoder.convnormrelu.0."),
    (r"_encoder\.norm1\.", "_encoder.convnormrelu.1."),
    (r"_encoder\.conv2\.", "_encoder.conv."),
    (r"(layer\d\.\d)\.conv(\d)\.", r"\1.convnormrelu\2.0."),
    (r"(layer\d\.\d)\.norm(\d)\.", r"\1.convnormrelu\2.1."),
    (r"^update_block\.encoder\.convc(\d)\.", r"update_block.motion_encoder.convcorr\1.0."),
    (r"^update_block\.encoder\.convf(\d)\.", r"update_block.motion_encoder.convflow\1.0."),
    (r"^update_block\.encoder\.conv\.", "update_block.motion_encoder.conv.0."),
    (r"^update_block\.gru\.conv([zrq])(\d)\.", r"update_block.recurrent_block.convgru\2.conv\1."),
    (r"^update_block\.gru\.conv([zrq])\.", r"update_block.recurrent_block.convgru1.conv\1."),
    (r"^update_block\.mask\.0\.", "mask_predictor.convrelu.0."),
    (r"^update_block\.mask\.2\.", "mask_predictor.conv."),
]

#: Representative keys of each public layout with their shapes: our key -> (theirs, shape).
TORCHVISION_LARGE = {
    "fnet.conv1.weight": ("feature_encoder.convnormrelu.0.weight", (64, 3, 7, 7)),
    "fnet.layer1.0.conv2.bias": ("feature_encoder.layer1.0.convnormrelu2.0.bias", (64,)),
    "cnet.norm1.running_var": ("context_encoder.convnormrelu.1.running_var", (64,)),
    "cnet.layer2.0.norm1.weight": ("context_encoder.layer2.0.convnormrelu1.1.weight", (96,)),
    "cnet.layer3.0.downsample.1.running_mean": ("context_encoder.layer3.0.downsample.1.running_mean", (128,)),
    "cnet.conv2.weight": ("context_encoder.conv.weight", (256, 128, 1, 1)),
    "update_block.encoder.convc1.weight": ("update_block.motion_encoder.convcorr1.0.weight", (256, 324, 1, 1)),
    "update_block.encoder.convc2.weight": ("update_block.motion_encoder.convcorr2.0.weight", (192, 256, 3, 3)),
    "update_block.encoder.convf1.weight": ("update_block.motion_encoder.convflow1.0.weight", (128, 2, 7, 7)),
    "update_block.encoder.conv.weight": ("update_block.motion_encoder.conv.0.weight", (126, 256, 3, 3)),
    "update_block.gru.convz1.weight": ("update_block.recurrent_block.convgru1.convz.weight", (128, 384, 1, 5)),
    "update_block.gru.convq2.bias": ("update_block.recurrent_block.convgru2.convq.bias", (128,)),
    "update_block.flow_head.conv2.weight": ("update_block.flow_head.conv2.weight", (2, 256, 3, 3)),
    "update_block.mask.0.weight": ("mask_predictor.convrelu.0.weight", (256, 128, 3, 3)),
    "update_block.mask.2.weight": ("mask_predictor.conv.weight", (576, 256, 1, 1)),
}
TORCHVISION_SMALL = {
    "fnet.conv1.weight": ("feature_encoder.convnormrelu.0.weight", (32, 3, 7, 7)),
    "fnet.layer2.0.conv3.weight": ("feature_encoder.layer2.0.convnormrelu3.0.weight", (64, 16, 1, 1)),
    "cnet.layer3.0.downsample.0.weight": ("context_encoder.layer3.0.downsample.0.weight", (96, 64, 1, 1)),
    "cnet.conv2.weight": ("context_encoder.conv.weight", (160, 96, 1, 1)),
    "update_block.encoder.convc1.weight": ("update_block.motion_encoder.convcorr1.0.weight", (96, 196, 1, 1)),
    "update_block.encoder.conv.weight": ("update_block.motion_encoder.conv.0.weight", (80, 128, 3, 3)),
    "update_block.gru.convz.weight": ("update_block.recurrent_block.convgru1.convz.weight", (96, 242, 3, 3)),
    "update_block.flow_head.conv1.weight": ("update_block.flow_head.conv1.weight", (128, 96, 3, 3)),
}
AUTHORS_LARGE = {
    "fnet.conv1.weight": ("module.fnet.conv1.weight", (64, 3, 7, 7)),
    "cnet.layer2.0.downsample.1.weight": ("module.cnet.layer2.0.downsample.1.weight", (96,)),
    "update_block.gru.convz1.weight": ("module.update_block.gru.convz1.weight", (128, 384, 1, 5)),
    "update_block.mask.2.bias": ("module.update_block.mask.2.bias", (576,)),
}


def randomised(model: RAFT, seed: int = 3) -> RAFT:
    """Every float tensor (batch-norm statistics included) random, so that no two keys coincide."""
    g = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if value.is_floating_point():
            fresh = torch.rand(value.shape, generator=g) + 0.5 if "running_var" in key else torch.randn(value.shape, generator=g) * 0.1
            state[key] = fresh
        else:
            state[key] = torch.tensor(7)
    model.load_state_dict(state)
    return model.eval()


def to_torchvision(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        name = key
        for pattern, replacement in TORCHVISION_RULES:
            name = re.sub(pattern, replacement, name)
        out[name] = value.clone()
    return out


def to_authors(state: dict, config: str) -> dict:
    out = {f"module.{key}": value.clone() for key, value in state.items()}
    alias = "norm3" if config == "large" else "norm4"  # the release stores a strided block's shortcut norm twice
    for key, value in state.items():
        match = re.fullmatch(r"(cnet|fnet)\.(layer\d\.0)\.downsample\.1\.(\w+)", key)
        if match:
            out[f"module.{match[1]}.{match[2]}.{alias}.{match[3]}"] = value.clone()
    return out


def flows_of(model: RAFT) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    image1, image2 = torch.rand(1, 3, 64, 64, generator=g) * 255, torch.rand(1, 3, 64, 64, generator=g) * 255
    with torch.no_grad():
        return model(image1, image2, iterations=2)[-1]


@pytest.mark.parametrize("config", ["small", "large"])
@pytest.mark.parametrize("source", ["authors", "torchvision", "auto"])
def test_foreign_layouts_load_bit_for_bit(config, source):
    model = randomised(seeded(config))
    foreign = to_torchvision(model.state_dict()) if source == "torchvision" else to_authors(model.state_dict(), config)
    loaded = RAFT(config)
    loaded.load_state_dict(convert_state_dict(foreign, source=source), strict=True)
    assert torch.equal(flows_of(loaded.eval()), flows_of(model))


@pytest.mark.parametrize(("config", "table"), [("large", TORCHVISION_LARGE), ("small", TORCHVISION_SMALL)])
def test_torchvision_names_and_shapes_match_the_public_layout(config, table):
    model = seeded(config)
    foreign = to_torchvision(model.state_dict())
    names = foreign_names(config, source="torchvision")
    for ours, (theirs, shape) in table.items():
        assert names[ours] == theirs
        assert tuple(foreign[theirs].shape) == shape
    assert len(foreign) == {"large": 169, "small": 106}[config]


def test_authors_names_and_the_release_key_count():
    foreign = to_authors(seeded("large").state_dict(), "large")
    for theirs, shape in AUTHORS_LARGE.values():
        assert tuple(foreign[theirs].shape) == shape
    assert "module.cnet.layer2.0.norm3.running_mean" in foreign
    assert len(foreign) == 179  # the number of tensors in the released raft-things.pth


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s: s.pop("module.update_block.gru.convr2.weight"), "module.update_block.gru.convr2.weight"),
        (lambda s: s.__setitem__("module.fnet.layer9.0.conv1.weight", torch.zeros(1)), "module.fnet.layer9.0.conv1.weight"),
        (lambda s: s.__setitem__("module.fnet.conv2.bias", torch.zeros(3)), "module.fnet.conv2.bias"),
    ],
    ids=["missing", "unexpected", "wrong-shape"],
)
def test_bad_authors_keys_are_one_line_input_errors(edit, named):
    foreign = to_authors(seeded("large").state_dict(), "large")
    edit(foreign)
    with pytest.raises(InputError) as error:
        convert_state_dict(foreign, source="auto")
    assert named in str(error.value) and "\n" not in str(error.value)


def test_missing_torchvision_key_is_named():
    foreign = to_torchvision(seeded("small").state_dict())
    del foreign["update_block.recurrent_block.convgru1.convq.bias"]
    with pytest.raises(InputError, match=re.escape("update_block.recurrent_block.convgru1.convq.bias")):
        convert_state_dict(foreign, source="torchvision")


def test_load_raft_reads_pth_and_safetensors(tmp_path):
    model = randomised(seeded("small"))
    pth = tmp_path / "raft-small.pth"
    torch.save(to_authors(model.state_dict(), "small"), pth)
    assert torch.equal(flows_of(load_raft(pth)), flows_of(model))
    tv = tmp_path / "raft_small_tv.pth"
    torch.save(to_torchvision(model.state_dict()), tv)
    assert torch.equal(flows_of(load_raft(tv, config="small")), flows_of(model))
    ours = save_raft(model, tmp_path / "ours.safetensors", metadata={"command": "test"})
    assert torch.equal(flows_of(load_raft(ours)), flows_of(model))
    with pytest.raises(InputError, match="does not exist"):
        load_raft(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth"):
        load_raft(tmp_path / "junk.pth")


# ---- backends --------------------------------------------------------------------------------------


def test_dis_backend_equals_the_existing_functions():
    rng = np.random.default_rng(5)
    frames = np.clip(rng.random((3, 48, 48)).astype(np.float32), 0, 1)
    forward, backward = get_flow_backend("dis").estimate(frames)
    expected_forward, expected_backward = estimate_flows(frames)
    np.testing.assert_array_equal(forward, expected_forward)
    np.testing.assert_array_equal(backward, expected_backward)
    pairs = get_flow_backend("dis").estimate_pairs(frames[1:], frames[:-1])
    np.testing.assert_array_equal(pairs[0], dis_flow(frames[1], frames[0]))


def test_raft_backend_gives_forward_and_backward_in_batches():
    backend = get_flow_backend("raft", config="small", iterations=2, batch=2)
    frames = np.random.default_rng(6).random((4, 40, 56)).astype(np.float32)
    forward, backward = backend.estimate(frames)
    assert forward.shape == backward.shape == (3, 40, 56, 2)
    np.testing.assert_allclose(backward[1], raft_flow(backend.model, frames[2], frames[1], iterations=2), atol=1e-4)


def test_backend_specs_and_errors():
    assert parse_backend_spec("raft:weights=w.pth,iterations=20") == ("raft", {"weights": "w.pth", "iterations": 20})
    with pytest.raises(InputError, match="unknown flow backend"):
        get_flow_backend("farneback")
    with pytest.raises(InputError, match="iterations"):
        get_flow_backend("raft", config="small", iterations=0)
    with pytest.raises(InputError, match="medium"):
        get_flow_backend("dis", preset="slow")


# ---- training -------------------------------------------------------------------------------------


def test_supervision_weight_marks_vessels_of_frame_t_plus_1():
    labels = np.zeros((3, 9, 9), np.uint8)
    labels[1, 4, 4] = 1
    labels[2, 0, 0] = 2
    weight = supervision_weight(labels, shape=(2, 9, 9), supervision="vessel", dilation=1)
    assert weight[0, 4, 4] == 1 and weight[0, 3, 4] == 1 and weight[0, 0, 0] == 0 and weight[0].sum() == 5
    assert weight[1, 0, 0] == 1 and weight[1, 4, 4] == 0
    assert supervision_weight(None, shape=(2, 9, 9), supervision="dense", dilation=0).all()


def test_sampler_flips_the_flow_with_the_images():
    ramp = np.tile(np.linspace(0, 1, 80, dtype=np.float32), (80, 1))
    frames = np.stack([ramp, ramp])
    flow = np.broadcast_to(np.array([2.0, 3.0], np.float32), (1, 80, 80, 2)).copy()
    sampler = PairSampler([FlowPairs("s", frames, flow, np.ones((1, 80, 80), np.float32))], crop=64, flip=True,
                          rng=np.random.default_rng(0))
    image1, _, flows, _ = sampler.sample(16)
    mirrored = image1[:, 0, 0] > image1[:, 0, -1]
    np.testing.assert_array_equal(flows[:, 0, 0, 0], np.where(mirrored, -2.0, 2.0))
    assert set(np.abs(flows[..., 1]).ravel()) == {3.0}


def test_sequence_loss_weights_late_iterations_more():
    target = torch.zeros(1, 2, 4, 4)
    weight = torch.ones(1, 4, 4)
    loss, epe = sequence_loss([torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4)], target, weight, gamma=0.8)
    assert float(loss) == pytest.approx(0.8) and float(epe) == 0.0
    loss, _ = sequence_loss([torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4, 4)], target, weight, gamma=0.8)
    assert float(loss) == pytest.approx(1.0)


def fixed_loss(model: RAFT, pairs: FlowPairs) -> float:
    def images(frames):
        return torch.from_numpy(frames)[:, None].repeat(1, 3, 1, 1) * 255.0

    with torch.no_grad():
        estimates = model.eval()(images(pairs.frames[1:]), images(pairs.frames[:-1]), iterations=2)
    loss, _ = sequence_loss(estimates, torch.from_numpy(pairs.flow).permute(0, 3, 1, 2), torch.from_numpy(pairs.weight))
    return float(loss)


def test_training_lowers_the_loss_and_writes_weights(phantom, tmp_path):
    pairs = load_flow_pairs([phantom])[0]
    assert pairs.flow.shape == (3, 64, 64, 2) and pairs.weight.any()
    before = fixed_loss(seeded("small"), pairs)  # train_raft initialises from the same seed
    result = train_raft(data=phantom, out=tmp_path / "run", config="small", steps=6, batch=2, crop=64, iterations=2,
                        lr=3e-4, seed=0, command="test-command", progress=False)
    after = fixed_loss(load_raft(result.weights), pairs)
    assert after < 0.8 * before
    from safetensors import safe_open

    with safe_open(str(result.weights), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["config"] == "small" and metadata["command"] == "test-command"
    assert json.loads(metadata["settings"])["supervision"] == "vessel"
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert len(log["loss"]) == 6


# ---- command line -----------------------------------------------------------------------------------


def test_flow_evaluate_reports_a_finite_dis_epe(phantom, tmp_path, capsys):
    code = main(["flow", "evaluate", "--data", str(phantom), "--backend", "dis", "--backend", "zero", "-o", str(tmp_path / "report")])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    stats = report["backends"]["dis"]["cases"]["phantom_000"]
    assert math.isfinite(stats["all"]["epe_mean"]) and math.isfinite(stats["vessel"]["epe_mean"])
    assert 0 <= stats["all"]["outliers_1px"] <= 1
    assert "| dis | all |" in capsys.readouterr().out
    assert (tmp_path / "report.md").read_text().startswith("Data:")


@pytest.mark.parametrize("spec", ["farneback", "dis:preset", "raft:weights=missing.pth"])
def test_flow_evaluate_bad_backend_is_one_line(phantom, capsys, spec):
    code = main(["flow", "evaluate", "--data", str(phantom), "--backend", spec])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("angioseg: error:") and err.count("\n") == 1


def test_flow_train_command(phantom, tmp_path, capsys):
    out = tmp_path / "cli-run"
    code = main(["flow", "train", "--data", str(phantom), "--out", str(out), "--steps", "2", "--batch", "1",
                 "--crop", "64", "--iterations", "2"])
    assert code == 0 and (out / "raft-small.safetensors").is_file()
    assert main(["flow", "train", "--data", str(phantom), "--out", str(out), "--crop", "32", "--steps", "1"]) == 2
    assert "at least 64" in capsys.readouterr().err
