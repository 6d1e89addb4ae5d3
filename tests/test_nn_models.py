"""U-Net, `build_model`, `count_parameters` and the Dice loss of `angioseg.nn`."""

from __future__ import annotations

import math

import pytest
import torch

from angioseg.errors import InputError
from angioseg.nn import CENet, CENet3D2D, UNet, build_model, count_parameters, dice_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two threads can run 10-25× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_unet_any_size_and_size() -> None:
    model = UNet().eval()
    params = count_parameters(model)
    assert 400_000 < params < 600_000, params
    with torch.no_grad():
        assert model(torch.rand(2, 1, 97, 131)).shape == (2, 1, 97, 131)
        assert model(torch.rand(1, 1, 3, 5)).shape == (1, 1, 3, 5)
    deep = UNet(base=8, depth=5, num_classes=2, norm="instance", in_channels=3).eval()
    with torch.no_grad():
        assert deep(torch.rand(2, 3, 97, 131)).shape == (2, 2, 97, 131)
    with pytest.raises(InputError):
        UNet(depth=0)


def test_build_model_and_count_parameters() -> None:
    assert isinstance(build_model("unet", base=8), UNet)
    assert isinstance(build_model("cenet", width="lite"), CENet)
    model = build_model("cenet3d2d", width="lite", temporal_radius=1)
    assert isinstance(model, CENet3D2D) and model.clip_length == 3
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    model.temporal_conv.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - 16 * 3 * 9
    with pytest.raises(InputError):
        build_model("segformer")
    with pytest.raises(InputError):
        build_model("cenet", widht=0.5)
    with pytest.raises(InputError):
        build_model("cenet", norm="group")


def test_dice_loss_hand_computed() -> None:
    # p = sigmoid(logits) = 0.5, 0.5, 0.75, 0.25; g = 1, 0, 1, 0
    # sum p·g = 1.25, sum p = 2, sum g = 2
    logits = torch.tensor([0.0, 0.0, math.log(3.0), -math.log(3.0)]).reshape(1, 1, 2, 2)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0]).reshape(1, 1, 2, 2)
    torch.testing.assert_close(dice_loss(logits, target, eps=1.0), torch.tensor(1 - 3.5 / 5))  # 0.3
    torch.testing.assert_close(dice_loss(logits, target, eps=0.0), torch.tensor(1 - 2.5 / 4))  # 0.375
    torch.testing.assert_close(dice_loss(logits, target[:, 0]), torch.tensor(0.3))  # (B, H, W) target
    perfect = dice_loss(torch.full((1, 1, 2, 2), 50.0), torch.ones(1, 1, 2, 2), eps=0.0)
    assert perfect.item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(torch.full((1, 1, 2, 2), -50.0), torch.zeros(1, 1, 2, 2)).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_loss_multiclass() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 6, requires_grad=True)
    labels = torch.randint(0, 3, (2, 5, 6))
    one_hot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    loss = dice_loss(logits, labels)
    torch.testing.assert_close(loss, dice_loss(logits, one_hot))
    loss.backward()
    assert logits.grad is not None and 0.0 < loss.item() < 1.0
    with pytest.raises(InputError):
        dice_loss(logits, one_hot[:, :2])
