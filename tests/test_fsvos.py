"""FSVOS: local matching (unfold = fast path), reference points, contrastive loss, bounded
memory, propagation forward and backward, the streaming API and the weights file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from angioseg.errors import InputError
from angioseg.methods import Prompt, get
from angioseg.methods.fsvos.memory import MemoryBank
from angioseg.methods.fsvos.segmenter import probability_margin_confidence
from angioseg.methods.fsvos.training import bootstrap_fraction, feature_labels
from angioseg.methods.fsvos.weights import load_fsvos, save_fsvos
from angioseg.nn.fsvos import FSVOSNet, build_fsvos, soft_aggregate
from angioseg.nn.losses import bootstrapped_cross_entropy, spatiotemporal_contrastive_loss
from angioseg.nn.matching import (
    MatchingConfig,
    read_global,
    read_local_masked,
    read_local_tiled,
    read_local_unfold,
    read_memory,
    reference_points,
    similarity,
)
from angioseg.nn.resnet import Bottleneck, resnet50_encoder
from angioseg.types import Video


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _memory(seed: int, *, frames: int = 3, dim: int = 8, objects: int = 2, channels: int = 4, h: int = 6, w: int = 7):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(2, frames, dim, h, w, generator=g)
    values = torch.randn(2, frames, objects, channels, h, w, generator=g)
    query = torch.randn(2, dim, h, w, generator=g)
    return keys, values, query


@pytest.mark.parametrize("window", [1, 3, 5, 7, 15])
@pytest.mark.parametrize("reference", ["match", "same"])
@pytest.mark.parametrize("top_k", [None, 4])
def test_unfold_path_equals_fast_path(window: int, reference: str, top_k: int | None) -> None:
    keys, values, query = _memory(window)
    fast, _ = read_local_masked(keys, values, query, window=window, reference=reference, top_k=top_k)
    literal, _ = read_local_unfold(keys, values, query, window=window, reference=reference, top_k=top_k)
    assert fast.shape == (2, 2, 4, 6, 7)
    assert torch.allclose(fast, literal, atol=1e-5)


@pytest.mark.parametrize("window", [1, 3, 7, 15])
@pytest.mark.parametrize("tile", [1, 3, 4, 8])
@pytest.mark.parametrize("top_k", [None, 4])
def test_tiled_path_equals_the_masked_path(window: int, tile: int, top_k: int | None) -> None:
    """Block-sparse tiles (the last ones padded: 6 x 7 is no multiple of 4) give the masked
    path's readout; each query's affinity sums to 1 and puts its mass on its own window."""
    keys, values, query = _memory(window + tile)
    masked, masked_affinity = read_local_masked(keys, values, query, window=window, reference="same", top_k=top_k)
    tiled, affinity = read_local_tiled(keys, values, query, window=window, tile=tile, top_k=top_k)
    side = tile + 2 * (window // 2)
    assert tiled.shape == masked.shape and affinity.shape == (2, 42, 3 * side * side)
    assert torch.allclose(tiled, masked, atol=1e-5)
    assert torch.allclose(affinity.sum(-1), torch.ones(2, 42), atol=1e-5)
    # the same mass per memory frame as the masked path (what usage eviction reads)
    per_frame = affinity.view(2, 42, 3, -1).sum(-1)
    assert torch.allclose(per_frame, masked_affinity.view(2, 42, 3, -1).sum(-1), atol=1e-5)


def test_auto_reads_same_position_windows_by_tiles() -> None:
    keys, values, query = _memory(5, h=24, w=24)
    auto, _ = read_memory(keys, values, query, MatchingConfig(window=3, reference="same"))
    tiled, _ = read_local_tiled(keys, values, query, window=3)
    assert torch.equal(auto, tiled)  # a 10 x 10 region of a 24 x 24 grid: tiles
    auto, _ = read_memory(keys, values, query, MatchingConfig(window=15, reference="same"))
    masked, _ = read_local_masked(keys, values, query, window=15, reference="same")
    assert torch.equal(auto, masked)  # a 22 x 22 region: the masked path
    with pytest.raises(InputError, match="reference='same'"):
        MatchingConfig(window=3, reference="match", implementation="tiled")


def test_a_window_covering_the_frame_is_global_matching() -> None:
    keys, values, query = _memory(1)
    local, _ = read_local_masked(keys, values, query, window=13, reference="same")
    every, affinity = read_global(keys, values, query)
    assert torch.allclose(local, every, atol=1e-6)
    assert torch.allclose(affinity.sum(-1), torch.ones(2, 42))
    # best-match windows (the default reference) take the masked path; "global" ignores the window
    auto, _ = read_memory(keys, values, query, MatchingConfig(window=3))
    masked, _ = read_local_masked(keys, values, query, window=3)
    assert torch.equal(auto, masked)


def test_similarity_is_negative_squared_distance_up_to_the_query_norm() -> None:
    keys, _, query = _memory(2)
    k = keys[:, 0].flatten(2)  # (B, D, M)
    q = query.flatten(2)
    scores = similarity(k, q)  # (B, N, M)
    distance = ((q.transpose(1, 2)[:, :, None, :] - k.transpose(1, 2)[:, None, :, :]) ** 2).sum(-1)
    expected = (-distance + (q ** 2).sum(1)[:, :, None]) / math.sqrt(8)
    assert torch.allclose(scores, expected, atol=1e-4)


def test_reference_point_is_the_best_matching_key_position() -> None:
    # one query element (at (0, 0)) and a 4x5 memory frame whose only key equal to it sits at (2, 3)
    h, w, dim = 4, 5, 3
    keys = torch.zeros(1, 1, dim, h, w)
    keys[0, 0, :, :, :] = torch.tensor([-1.0, 0.0, 0.0])[:, None, None]
    keys[0, 0, :, 2, 3] = torch.tensor([1.0, 0.0, 0.0])
    query = torch.zeros(1, dim, h, w)
    query[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0])
    scores = similarity(keys.flatten(3).permute(0, 2, 1, 3).reshape(1, dim, -1), query.flatten(2))
    rows, cols = reference_points(scores.view(1, h * w, 1, h * w), reference="match", width=w)
    assert (int(rows[0, 0, 0]), int(cols[0, 0, 0])) == (2, 3)
    rows, cols = reference_points(scores.view(1, h * w, 1, h * w), reference="same", width=w)
    assert (int(rows[0, 7, 0]), int(cols[0, 7, 0])) == (1, 2)
    # with a 3x3 window the query reads only the 3x3 neighbourhood of (2, 3)
    values = torch.zeros(1, 1, 1, 1, h, w)
    values[0, 0, 0, 0, 0, 0] = 100.0  # far from (2, 3): must not leak into the readout
    values[0, 0, 0, 0, 2, 3] = 1.0
    readout, affinity = read_local_masked(keys, values, query, window=3)
    assert float(readout[0, 0, 0, 0, 0]) < 1.0 + 1e-6
    window_cells = affinity[0, 0].view(h, w)
    assert float(window_cells[:1].sum() + window_cells[:, :2].sum()) == 0.0


def test_matching_config_validation() -> None:
    with pytest.raises(InputError, match="odd"):
        MatchingConfig(window=4)
    with pytest.raises(InputError, match="reference"):
        MatchingConfig(reference="nearest")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="top_k"):
        MatchingConfig(top_k=0)


def test_contrastive_loss_on_a_hand_computed_two_object_example() -> None:
    anchor = torch.nn.functional.normalize(torch.tensor([[[0.6, -0.2]], [[0.8, 1.0]]]), dim=0)  # (P=2, 1, 2)
    keys = torch.nn.functional.normalize(torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]]), dim=1)  # (K=1, P=2, 1, 2)
    labels = torch.tensor([[1, 2]])
    tau = 0.5
    loss = spatiotemporal_contrastive_loss(anchor, labels, keys, labels[None], temperature=tau)
    a1, a2 = anchor[:, 0, 0], anchor[:, 0, 1]
    k1, k2 = keys[0, :, 0, 0], keys[0, :, 0, 1]

    def term(z, positive, negative):
        p, n = float(z @ positive) / tau, float(z @ negative) / tau
        return -math.log(math.exp(p) / (math.exp(p) + math.exp(n)))

    expected = 0.5 * (term(a1, k1, k2) + term(a2, k2, k1))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # one shared object only: nothing to contrast, zero loss that still backpropagates
    assert float(spatiotemporal_contrastive_loss(anchor, torch.ones(1, 2, dtype=torch.long), keys,
                                                 torch.ones(1, 1, 2, dtype=torch.long))) == 0.0


def test_contrastive_loss_sample_size_is_the_smallest_object() -> None:
    g = torch.Generator().manual_seed(0)
    anchor = torch.nn.functional.normalize(torch.randn(4, 6, 6, generator=g), dim=0)
    keys = torch.nn.functional.normalize(torch.randn(2, 4, 6, 6, generator=g), dim=1)
    labels = torch.zeros(6, 6, dtype=torch.long)
    labels[0, 0] = 1  # object 1: one anchor feature
    key_labels = torch.zeros(2, 6, 6, dtype=torch.long)
    key_labels[1, 3, 3] = 1
    loss = spatiotemporal_contrastive_loss(anchor, labels, keys, key_labels, temperature=0.1, generator=g)
    assert torch.isfinite(loss) and float(loss) > 0


def test_bootstrapped_cross_entropy_keeps_the_hardest_pixels() -> None:
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 1] = torch.tensor([4.0, 2.0, -2.0, -4.0])
    target = torch.ones(1, 1, 4, dtype=torch.long)
    per_pixel = torch.nn.functional.cross_entropy(logits, target, reduction="none").flatten()
    assert float(bootstrapped_cross_entropy(logits, target)) == pytest.approx(float(per_pixel.mean()))
    hardest_half = per_pixel.sort(descending=True).values[:2].mean()
    assert float(bootstrapped_cross_entropy(logits, target, fraction=0.5)) == pytest.approx(float(hardest_half))
    assert bootstrap_fraction(0, 100) == 1.0 and bootstrap_fraction(60, 100) == 0.15
    assert bootstrap_fraction(35, 100) == pytest.approx(0.575)


def test_soft_aggregation_gives_class_probabilities() -> None:
    logits = torch.tensor([[[[2.0]], [[-1.0]]]])  # two objects
    probabilities = torch.softmax(soft_aggregate(logits), dim=1)[0, :, 0, 0]
    assert float(probabilities.sum()) == pytest.approx(1.0)
    assert int(probabilities.argmax()) == 1  # the confident object wins
    single = torch.softmax(soft_aggregate(torch.tensor([[[[1.5]]]])), dim=1)[0, :, 0, 0]
    # one object: softmax(-l, l) = sigmoid(2 l), as in STCN's aggregation
    assert float(single[1]) == pytest.approx(float(torch.sigmoid(torch.tensor(3.0))), abs=1e-6)


def test_feature_labels_keep_thin_objects() -> None:
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[0, :, 3:5] = 1  # a 2-px wide vessel: 12.5 % of its cells
    cells = feature_labels(labels, 1)
    assert cells.shape == (1, 2, 2)
    assert cells[0, :, 0].tolist() == [1, 1] and cells[0, :, 1].tolist() == [0, 0]


def test_resnet50_bottleneck_widths() -> None:
    encoder = resnet50_encoder(width=0.125, stages=3)
    assert encoder.channels == (8, 32, 64, 128)
    assert sum(isinstance(m, Bottleneck) for m in encoder.modules()) == 3 + 4 + 6
    features = encoder(torch.rand(1, 1, 64, 64))
    assert [tuple(f.shape[1:]) for f in features] == [(8, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4)]


def test_memory_stays_bounded_over_50_steps() -> None:
    bank = MemoryBank(capacity=4, keyframe_every=2)
    bank.add(torch.zeros(2, 3, 3), torch.zeros(1, 2, 3, 3), frame=0, permanent=True)
    for t in range(1, 51):
        if bank.wants_keyframe():
            bank.add(torch.full((2, 3, 3), float(t)), torch.zeros(1, 2, 3, 3), frame=t, permanent=False)
        assert len(bank) <= 4
    assert [f.frame for f in bank.frames] == [0, 46, 48, 50]  # the labelled frame stays, the oldest go
    keys, values = bank.stacked()
    assert keys.shape == (1, 4, 2, 3, 3) and values.shape == (1, 4, 1, 2, 3, 3)


def test_usage_eviction_drops_the_least_read_frame() -> None:
    bank = MemoryBank(capacity=3, eviction="usage")
    for t in range(3):
        bank.add(torch.zeros(1, 1, 2), torch.zeros(1, 1, 1, 2), frame=t, permanent=t == 0)
    affinity = torch.tensor([[[0.5, 0.0, 0.1, 0.1, 0.2, 0.1]]])  # frame 1 gets 0.2, frame 2 gets 0.3
    bank.record_usage(affinity)
    bank.add(torch.zeros(1, 1, 2), torch.zeros(1, 1, 1, 2), frame=3, permanent=False)
    assert [f.frame for f in bank.frames] == [0, 2, 3]


def test_float16_memory_halves_the_bytes() -> None:
    full, half = MemoryBank(), MemoryBank(storage_dtype=torch.float16)
    for bank in (full, half):
        bank.add(torch.rand(4, 8, 8), torch.rand(2, 16, 8, 8), frame=0, permanent=True)
    assert half.nbytes() * 2 == full.nbytes()
    assert half.stacked()[0].dtype == torch.float32


def test_confidence_is_the_probability_margin() -> None:
    probabilities = np.zeros((3, 1, 3), np.float32)
    probabilities[:, 0, 0] = [0.05, 0.9, 0.05]  # margin 0.85
    probabilities[:, 0, 1] = [0.5, 0.3, 0.2]  # margin 0.2
    probabilities[:, 0, 2] = [0.95, 0.03, 0.02]  # no object > 0.1: not counted
    assert probability_margin_confidence(probabilities) == pytest.approx((0.85 + 0.2) / 2)
    assert probability_margin_confidence(np.stack([np.ones((2, 2)), np.zeros((2, 2))])) == 1.0


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    torch.manual_seed(0)
    net = build_fsvos("lite", key_width=0.125, key_dim=8, value_dim=16, decoder_channels=[16, 8], projection_dim=8)
    path = tmp_path_factory.mktemp("fsvos") / "tiny.safetensors"
    save_fsvos(net, path, info={"note": "untrained, for tests"})
    return str(path)


def _moving_disk_run(frames: int = 9, size: int = 64) -> tuple[Video, np.ndarray]:
    yy, xx = np.mgrid[:size, :size]
    video = np.full((frames, size, size), 0.8, np.float32)
    labels = np.zeros((frames, size, size), np.uint8)
    for t in range(frames):
        disk = (yy - 32) ** 2 + (xx - 16 - 2 * t) ** 2 < 36
        bar = (np.abs(yy - 12) < 2) & (np.abs(xx - 40) < 12)
        video[t][disk] = 0.3
        video[t][bar] = 0.5
        labels[t][disk] = 1
        labels[t][bar] = 2
    return Video(video, fps=10.0), labels


def test_weights_round_trip(tiny_weights: str, tmp_path) -> None:
    net, info = load_fsvos(tiny_weights)
    assert isinstance(net, FSVOSNet) and info["note"].startswith("untrained")
    assert net.config.key_dim == 8
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(InputError, match="not a usable FSVOS weights file"):
        load_fsvos(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_fsvos(tmp_path / "missing.safetensors")


def test_propagation_forward_and_backward_from_a_middle_frame(tiny_weights: str) -> None:
    video, labels = _moving_disk_run()
    table = {0: "background", 1: "disk", 2: "bar"}
    method = get("fsvos", weights=tiny_weights, keyframe_every=2, memory_frames=3)
    result = method.segment(video, prompt=Prompt(frame=4, labels=labels[4], label_table=table))
    assert result.masks.labels.shape == labels.shape
    assert result.masks.label_table == table
    assert np.array_equal(result.masks.labels[4], labels[4])
    assert result.class_probabilities.shape == (9, 3, 64, 64)
    assert np.allclose(result.class_probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert result.confidence is not None and result.confidence.shape == (9,) and result.confidence[4] == 1.0
    assert result.timings["backward"] > 0  # frames 0-3 were propagated backwards
    assert len(method.memory) <= 3


def test_streaming_step_needs_a_labelled_frame_first(tiny_weights: str) -> None:
    video, labels = _moving_disk_run(frames=4)
    method = get("fsvos", weights=tiny_weights)
    method.reset(height=64, width=64, label_table={0: "background", 1: "disk", 2: "bar"})
    with pytest.raises(InputError, match="labelled frame"):
        method.step(video.frames[0])
    first = method.step(video.frames[0], mask=labels[0])
    assert np.array_equal(first.labels, labels[0]) and first.confidence == 1.0
    second = method.step(video.frames[1])
    assert second.probabilities.shape == (3, 64, 64) and 0.0 <= second.confidence <= 1.0


def test_segment_needs_a_prompt_and_checks_options(tiny_weights: str) -> None:
    video, _ = _moving_disk_run(frames=3)
    with pytest.raises(InputError, match="labelled frame"):
        get("fsvos", weights=tiny_weights).segment(video)
    with pytest.raises(InputError, match="odd"):
        get("fsvos", weights=tiny_weights, window=4)
    with pytest.raises(InputError, match="eviction"):
        get("fsvos", weights=tiny_weights, eviction="random")


def test_several_labelled_frames_are_kept_exactly(tiny_weights: str) -> None:
    video, labels = _moving_disk_run()
    table = {0: "background", 1: "disk", 2: "bar"}
    prompts = [Prompt(frame=6, labels=labels[6], label_table=table), Prompt(frame=1, labels=labels[1], label_table=table)]
    result = get("fsvos", weights=tiny_weights).segment(video, prompt=prompts)
    assert np.array_equal(result.masks.labels[1], labels[1]) and np.array_equal(result.masks.labels[6], labels[6])
    assert result.confidence[1] == result.confidence[6] == 1.0


def test_float16_memory_and_usage_eviction_run(tiny_weights: str) -> None:
    video, labels = _moving_disk_run(frames=12)
    table = {0: "background", 1: "disk", 2: "bar"}
    prompt = Prompt(frame=0, labels=labels[0], label_table=table)
    full = get("fsvos", weights=tiny_weights, keyframe_every=1, memory_frames=4).segment(video, prompt=prompt)
    half = get("fsvos", weights=tiny_weights, keyframe_every=1, memory_frames=4, memory_dtype="float16",
               eviction="usage").segment(video, prompt=prompt)
    assert half.masks.labels.shape == full.masks.labels.shape
    assert np.abs(half.class_probabilities - full.class_probabilities).max() < 0.5


def test_paper_width_builds_resnet50_keys_and_runs() -> None:
    net = build_fsvos("paper").eval()
    assert net.key_encoder.depth == "resnet50" and net.key_encoder.channels[3] == 1024
    assert net.config.key_dim == 64 and net.config.value_dim == 512
    with torch.inference_mode():
        features = net.encode_key(torch.rand(1, 1, 48, 64))
        values = net.encode_value(features, torch.zeros(1, 2, 48, 64))
        logits, _ = net.segment(features, features["key"][:, None], values[:, None], MatchingConfig(window=3))
    assert features["key"].shape == (1, 64, 3, 4) and values.shape == (1, 2, 512, 3, 4)
    assert logits.shape == (1, 3, 48, 64)


def test_propagate_cli_round_trips_the_labelled_objects_with_fsvos(tiny_weights: str, tmp_path, capsys) -> None:
    import json

    from angioseg.io.labels import palette_image
    from test_cli_segment import run_cli

    video, labels = _moving_disk_run(frames=5)
    run = tmp_path / "run.npy"
    np.save(run, video.frames)
    mask = tmp_path / "frame2.png"
    palette_image(labels[2]).save(mask)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "propagate", run, "--mask", mask, "--frame", 2, "-o", out,
                           "--method", f"fsvos:weights={tiny_weights}", "--threads", 1)
    assert code == 0, err
    with np.load(out / "masks.npz") as data:
        assert np.array_equal(data["labels"][2], labels[2])
        assert set(np.unique(data["labels"][2])) == {0, 1, 2}
    report = json.loads((out / "report.json").read_text())
    assert len(report["confidence"]) == 5 and report["prompt_frames"] == [2]


def test_input_scale_keeps_the_run_size(tiny_weights: str) -> None:
    video, labels = _moving_disk_run(frames=4)
    table = {0: "background", 1: "disk", 2: "bar"}
    result = get("fsvos", weights=tiny_weights, scale=1.5).segment(video, prompt=Prompt(0, labels[0], table))
    assert result.masks.labels.shape == labels.shape and result.class_probabilities.shape == (4, 3, 64, 64)
    assert np.array_equal(result.masks.labels[0], labels[0])
    with pytest.raises(InputError, match="scale"):
        get("fsvos", weights=tiny_weights, scale=10)


def _logits(net: FSVOSNet, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Class logits of frame 1 read from frame 0 (with `masks`): ``frames (2, 1, H, W)``."""
    with torch.inference_mode():
        features = net.encode_key(frames)
        first = {k: (v if k == "size" else v[:1]) for k, v in features.items()}
        second = {k: (v if k == "size" else v[1:]) for k, v in features.items()}
        values = net.encode_value(first, masks)
        logits, _ = net.segment(second, first["key"][:, None], values[:, None], MatchingConfig(window=3))
    return logits


def test_a_network_grown_with_the_fine_refinement_starts_where_its_weights_left_off(tmp_path) -> None:
    from angioseg.methods.fsvos.training import initialise_from

    torch.manual_seed(1)
    small = dict(key_width=0.125, key_dim=8, value_dim=16, decoder_channels=[16, 8], projection_dim=8)
    plain = build_fsvos("lite", refine_channels=0, **small).eval()
    path = tmp_path / "plain.safetensors"
    save_fsvos(plain, path, info={})
    grown = build_fsvos("lite", refine_channels=4, **small)
    missing = initialise_from(grown, str(path))
    assert missing and all(name.startswith("refine.") for name in missing)
    frames, masks = torch.rand(2, 1, 40, 56), (torch.rand(1, 2, 40, 56) > 0.7).float()
    assert torch.allclose(_logits(grown.eval(), frames, masks), _logits(plain, frames, masks), atol=1e-6)
    # once its last layer is no longer zero, the refinement changes single pixels: full-size detail
    torch.nn.init.normal_(grown.refine.out.weight, std=0.1)
    difference = (_logits(grown, frames, masks) - _logits(plain, frames, masks)).abs()[0, 1]
    assert difference.shape == (40, 56) and difference.max() > 1e-3
    assert not torch.allclose(difference[0::2, 0::2], difference[1::2, 1::2])  # not constant per 2×2 block
    # and weights of another architecture are refused with one line
    with pytest.raises(InputError, match="holds layers this network lacks"):
        initialise_from(build_fsvos("lite", refine_channels=0, **small), str(_saved(grown, tmp_path)))
    with pytest.raises(InputError, match="does not fit this network"):
        initialise_from(build_fsvos("lite", refine_channels=0, **{**small, "key_dim": 16}), str(path))


def _saved(net: FSVOSNet, folder) -> str:
    path = folder / "grown.safetensors"
    save_fsvos(net, path, info={})
    return str(path)


def test_weights_without_the_refinement_field_still_load(tmp_path) -> None:
    """Weights written before `refine_channels` existed (no such key in their config) load as 0."""
    import json

    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    net = build_fsvos("lite", refine_channels=0, key_width=0.125, key_dim=8, value_dim=16, decoder_channels=[16, 8], projection_dim=8)
    config = net.config.to_dict()
    del config["refine_channels"]
    path = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata={"architecture": "fsvos", "config": json.dumps(config), "info": "{}"})
    loaded, _ = load_fsvos(path)
    assert loaded.config.refine_channels == 0 and loaded.refine is None
    assert set(loaded.state_dict()) == set(load_file(str(path)))
