"""ResNet encoders, widths and norms of `angioseg.nn`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from angioseg.errors import InputError
from angioseg.nn import LITE_WIDTH, BasicBlock, ResNetEncoder, resnet18_encoder, resnet34_encoder, scaled_channels
from angioseg.nn.layers import InstanceNorm2d, pad_to_multiple


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two threads can run 10-25× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _blocks_per_stage(encoder: ResNetEncoder) -> list[int]:
    stages = [encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4]
    return [sum(isinstance(m, BasicBlock) for m in stage.modules()) for stage in stages]


def test_block_counts() -> None:
    assert _blocks_per_stage(resnet34_encoder(width=0.125)) == [3, 4, 6, 3]
    assert _blocks_per_stage(resnet18_encoder(width=0.125)) == [2, 2, 2, 2]


def test_feature_strides_and_channels() -> None:
    encoder = ResNetEncoder(depth="resnet18", width=0.25).eval()
    x = torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        features = encoder(x)
    assert len(features) == 5
    for feature, stride, channels in zip(features, (2, 4, 8, 16, 32), encoder.channels):
        assert feature.shape == (2, channels, 64 // stride, 96 // stride)
    assert encoder.channels == (16, 16, 32, 64, 128)
    assert encoder.strides == (2, 4, 8, 16, 32)


def test_width_rounding() -> None:
    assert [scaled_channels(c, 1.0) for c in (64, 128, 256, 512)] == [64, 128, 256, 512]
    assert [scaled_channels(c, 0.25) for c in (64, 128, 256, 512)] == [16, 32, 64, 128]
    assert [scaled_channels(c, 0.1) for c in (64, 128, 256, 512)] == [8, 16, 24, 48]
    assert scaled_channels(64, 0.01) == 8  # never below 8
    assert scaled_channels(64, "lite") == scaled_channels(64, LITE_WIDTH) >= 8
    assert scaled_channels(64, "paper") == 64
    with pytest.raises(InputError):
        scaled_channels(64, "huge")
    with pytest.raises(InputError):
        scaled_channels(64, 0)


def test_norm_types() -> None:
    batch = resnet18_encoder(width=0.125, norm="batch")
    instance = resnet18_encoder(width=0.125, norm="instance")
    assert any(isinstance(m, nn.BatchNorm2d) for m in batch.modules())
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in batch.modules())
    norms = [m for m in instance.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(m.affine and not m.track_running_stats for m in norms)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in instance.modules())
    with pytest.raises(InputError):
        resnet18_encoder(norm="layer")


def test_fast_instance_norm_matches_torch() -> None:
    torch.manual_seed(0)
    ours = InstanceNorm2d(6, affine=True)
    reference = nn.InstanceNorm2d(6, affine=True)
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(3, 6, 17, 23) * 3 + 1
    torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)
    assert isinstance(ours, nn.InstanceNorm2d)


def test_in_channels_and_stem_hook() -> None:
    rgb = resnet34_encoder(in_channels=3, width=0.125).eval()
    with torch.no_grad():
        assert rgb(torch.rand(1, 3, 64, 64))[4].shape == (1, 64, 2, 2)
    with pytest.raises(InputError):
        rgb(torch.rand(1, 1, 64, 64))
    stem = nn.Sequential(nn.Conv2d(5, 8, 3, padding=1), nn.MaxPool2d(2))
    hooked = ResNetEncoder(depth="resnet18", width=0.125, stem=stem).eval()
    assert hooked.stem is stem
    with torch.no_grad():
        features = hooked(torch.rand(2, 5, 64, 64))
    assert [tuple(f.shape[-2:]) for f in features] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]


def test_pad_to_multiple() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    padded = pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 8, 8)
    assert torch.equal(padded[..., :3, :4], x)
    assert pad_to_multiple(torch.rand(1, 1, 32, 64), 32).shape == (1, 1, 32, 64)
    row = torch.tensor([[[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]]]).expand(1, 1, 6, 6)
    assert pad_to_multiple(row, 8)[0, 0, 0].tolist() == [1, 2, 3, 4, 5, 6, 5, 4]  # reflect


def test_fast_instance_norm_channels_last_and_grad() -> None:
    torch.manual_seed(0)
    ours = InstanceNorm2d(5, affine=True)
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    reference = nn.InstanceNorm2d(5, affine=True)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 19, 21) * 0.5 + 3.0  # mean 6 standard deviations away from 0
    expected = reference.double()(x.double()).float()
    reference.float()
    for layout in (x, x.contiguous(memory_format=torch.channels_last)):
        got = ours(layout)
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)
    channels_last = ours(x.contiguous(memory_format=torch.channels_last))
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    leaf = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    (ours(leaf) * torch.arange(19.0 * 21).reshape(19, 21)).sum().backward()
    plain = x.clone().requires_grad_(True)
    (reference(plain) * torch.arange(19.0 * 21).reshape(19, 21)).sum().backward()
    torch.testing.assert_close(leaf.grad, plain.grad, atol=1e-3, rtol=1e-4)
