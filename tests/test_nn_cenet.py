"""CE-Net blocks and model of `angioseg.nn`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from angioseg.errors import InputError
from angioseg.nn import CENet, DACBlock, DecoderBlock, RMPBlock, count_parameters, dice_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two threads can run 10-25× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_dac_keeps_channels_and_sums_branches() -> None:
    torch.manual_seed(0)
    dac = DACBlock(8)
    x = torch.randn(2, 8, 13, 11)
    calls = []
    dac.conv1x1.register_forward_hook(lambda module, args, out: calls.append(module))
    with torch.no_grad():
        out = dac(x)
        assert out.shape == x.shape
        assert len(calls) == 3  # the one 1×1 conv serves branches 2, 3 and 4
        # recompute with the block's own convolutions
        d1, d2, d3, c = dac.dilate1, dac.dilate2, dac.dilate3, dac.conv1x1
        expected = (
            x
            + F.relu(d1(x))
            + F.relu(c(d2(x)))
            + F.relu(c(d2(d1(x))))
            + F.relu(c(d3(d2(d1(x)))))
        )
    torch.testing.assert_close(out, expected)
    assert [d1.dilation, d2.dilation, d3.dilation] == [(1, 1), (3, 3), (5, 5)]
    assert [d1.padding, d2.padding, d3.padding] == [(1, 1), (3, 3), (5, 5)]
    assert c.kernel_size == (1, 1) and c.in_channels == c.out_channels == 8
    convs = [m for m in dac.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(torch.count_nonzero(m.bias) == 0 for m in convs)


def test_rmp_channels_and_one_shared_conv() -> None:
    torch.manual_seed(0)
    rmp = RMPBlock(16)
    x = torch.randn(2, 16, 12, 14)
    seen = []
    rmp.conv.register_forward_hook(lambda module, args, out: seen.append(module.weight))
    with torch.no_grad():
        out = rmp(x)
    assert out.shape == (2, 20, 12, 14)
    assert torch.equal(out[:, 4:], x)
    assert len(seen) == 4 and all(w is seen[0] for w in seen)  # one weight tensor for the 4 maps
    assert [m for m in rmp.modules() if isinstance(m, nn.Conv2d)] == [rmp.conv]
    assert rmp.conv.out_channels == 1 and rmp.conv.kernel_size == (1, 1)
    with torch.no_grad():
        for channel, k in enumerate((2, 3, 5, 6)):
            expected = F.interpolate(
                rmp.conv(F.max_pool2d(x, k, stride=k)), size=(12, 14), mode="bilinear", align_corners=False
            )
            torch.testing.assert_close(out[:, channel : channel + 1], expected)
        assert rmp(torch.randn(1, 16, 2, 3)).shape == (1, 20, 2, 3)  # kernels clamped on tiny maps


def test_decoder_block_doubles_size() -> None:
    block = DecoderBlock(32, 16).eval()
    with torch.no_grad():
        assert block(torch.randn(2, 32, 7, 9)).shape == (2, 16, 14, 18)
    assert block.conv1.out_channels == 8 and block.deconv2.stride == (2, 2)


def test_cenet_lite_any_size() -> None:
    model = CENet(width="lite").eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 300, 300)).shape == (2, 1, 300, 300)
        assert model(torch.rand(3, 1, 97, 131)).shape == (3, 1, 97, 131)
        assert model(torch.rand(1, 1, 9, 5)).shape == (1, 1, 9, 5)
    model18 = CENet(encoder="resnet18", width=0.125, norm="instance", num_classes=3, in_channels=3).eval()
    with torch.no_grad():
        assert model18(torch.rand(2, 3, 97, 131)).shape == (2, 3, 97, 131)
    with pytest.raises(InputError):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(InputError):
        model(torch.rand(1, 64, 64))


def test_cenet_paper_parameter_count() -> None:
    rgb = count_parameters(CENet(in_channels=3, width=1.0))
    grey = count_parameters(CENet(in_channels=1, width=1.0))
    print(f"CE-Net ResNet-34 width 1.0: {rgb:,d} parameters (3-channel input), {grey:,d} (grey)")
    assert 28_500_000 < rgb < 29_500_000  # the published CE-Net has about 29 M
    assert rgb - grey == 64 * 2 * 7 * 7  # only the first convolution differs


def _line_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 64×64 frames with a dark diagonal band (vessel) on noise, and its mask."""
    generator = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    masks = torch.stack([(yy - xx).abs() < 3, (yy + xx - 63).abs() < 3]).float().unsqueeze(1)
    images = 0.7 - 0.4 * masks + 0.05 * torch.randn(masks.shape, generator=generator)
    return images, masks


def _train(model: nn.Module, inputs: torch.Tensor, masks: torch.Tensor, steps: int = 15) -> tuple[float, float]:
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = dice_loss(model(inputs), masks)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def test_cenet_lite_learns_a_line() -> None:
    torch.manual_seed(0)
    images, masks = _line_batch()
    first, last = _train(CENet(width="lite"), images, masks)
    assert last < first - 0.05, (first, last)


def test_state_dict_safetensors_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CENet(width="lite")
    images, masks = _line_batch()
    _train(model, images, masks, steps=2)  # running statistics away from their defaults
    model.eval()
    path = tmp_path / "cenet.safetensors"
    save_file(model.state_dict(), str(path))
    torch.manual_seed(1)
    restored = CENet(width="lite").eval()
    restored.load_state_dict(load_file(str(path)))
    x = torch.rand(2, 1, 97, 131)
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))
