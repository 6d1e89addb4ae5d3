"""3D-2D CE-Net of `angioseg.nn`: clips, the Conv3d input layer, the centre-slice equivalence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from angioseg.errors import InputError
from angioseg.nn import CENet3D2D, centre_slice_2d_model, dice_loss, make_clips
from angioseg.nn.layers import to_channels_last


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine two threads can run 10-25× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_make_clips_repeats_edge_frames() -> None:
    frames = torch.arange(4.0)[:, None, None].expand(4, 3, 2)  # frame t is filled with t
    clips = make_clips(frames, 2)
    assert clips.shape == (4, 5, 3, 2)
    assert clips[:, :, 0, 0].tolist() == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 3],
        [0, 1, 2, 3, 3],
        [1, 2, 3, 3, 3],
    ]
    assert make_clips(frames, radius=1)[:, :, 1, 1].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert make_clips(frames[:1], 2)[:, :, 0, 0].tolist() == [[0, 0, 0, 0, 0]]
    assert torch.equal(make_clips(frames, 0)[:, 0], frames)
    with pytest.raises(InputError):
        make_clips(torch.rand(2, 3), 1)
    with pytest.raises(InputError):
        make_clips(frames, -1)


def test_input_layer_is_the_papers_conv3d() -> None:
    model = CENet3D2D(temporal_radius=2, width="lite")
    conv = model.temporal_conv
    assert isinstance(conv, nn.Conv3d)
    assert (conv.in_channels, conv.out_channels) == (1, 16)
    assert conv.kernel_size == (5, 3, 3) and conv.padding == (0, 1, 1) and conv.stride == (1, 1, 1)
    assert all(isinstance(m, nn.InstanceNorm2d) for m in model.modules() if "Norm" in type(m).__name__)
    clips = torch.randn(2, 5, 19, 23)
    with torch.no_grad():
        fused = model.fuse(clips)
        literal = model.fuse_conv3d(clips)
        assert literal.shape == (2, 16, 19, 23)
        torch.testing.assert_close(fused, literal, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("radius", [1, 2])
def test_centre_slice_equivalence(radius: int) -> None:
    torch.manual_seed(radius)
    model = CENet3D2D(temporal_radius=radius, width="lite").eval()
    clips = torch.randn(2, 2 * radius + 1, 97, 131)
    with torch.no_grad():
        before = model(clips)
        weight = model.temporal_conv.weight  # (16, 1, 2N+1, 3, 3)
        weight[:, :, :radius] = 0
        weight[:, :, radius + 1 :] = 0
        two_d = centre_slice_2d_model(model)
        assert isinstance(two_d.first_conv, nn.Conv2d)
        assert (two_d.first_conv.in_channels, two_d.first_conv.out_channels) == (1, 16)
        assert two_d.first_conv.kernel_size == (3, 3)
        assert two_d.body is model.body  # every other weight shared
        three = model(clips)
        two = two_d(clips[:, radius : radius + 1])
        two_again = model.as_2d()(clips[:, radius : radius + 1])
    assert three.shape == two.shape == (2, 1, 97, 131)
    torch.testing.assert_close(two, three, atol=1e-5, rtol=0)
    torch.testing.assert_close(two_again, three, atol=1e-5, rtol=0)
    assert (before - three).abs().max() > 1e-3  # the neighbour frames did matter before zeroing


def test_any_size_and_channels_last() -> None:
    torch.manual_seed(0)
    model = CENet3D2D(temporal_radius=2, width="lite").eval()
    with torch.no_grad():
        assert model(torch.rand(1, 5, 300, 300)).shape == (1, 1, 300, 300)
        clips = torch.rand(2, 5, 64, 96)
        expected = model(clips)
        to_channels_last(model)
        assert model.body.final_conv2.weight.is_contiguous(memory_format=torch.channels_last)
        got = model(clips.contiguous(memory_format=torch.channels_last))
    # same maths, other summation order: float noise grows through ~100 layers (IN on 2×3 maps)
    torch.testing.assert_close(got, expected, atol=3e-4, rtol=1e-4)
    small = CENet3D2D(temporal_radius=1, width=0.125, encoder="resnet18", num_classes=2).eval()
    with torch.no_grad():
        assert small(torch.rand(3, 3, 97, 131)).shape == (3, 2, 97, 131)
    with pytest.raises(InputError):
        small(torch.rand(1, 5, 64, 64))  # radius 1 expects 3 frames


def test_cenet3d2d_lite_learns_a_line() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(2)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    masks = torch.stack([(yy - xx).abs() < 3, (yy - 0.5 * xx - 10).abs() < 3]).float().unsqueeze(1)
    frames = 0.7 - 0.4 * masks + 0.05 * torch.randn(2, 5, 64, 64, generator=generator)  # a still clip
    model = CENet3D2D(temporal_radius=2, width="lite").train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimiser.zero_grad()
        loss = dice_loss(model(frames), masks)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05, losses


def test_safetensors_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CENet3D2D(temporal_radius=1, width="lite").eval()
    path = tmp_path / "cenet3d2d.safetensors"
    save_file(model.state_dict(), str(path))
    torch.manual_seed(1)
    restored = CENet3D2D(temporal_radius=1, width="lite").eval()
    restored.load_state_dict(load_file(str(path)))
    clips = torch.rand(2, 3, 64, 80)
    with torch.no_grad():
        assert torch.equal(model(clips), restored(clips))


def test_torch_export_with_dynamic_batch() -> None:
    """The graph uses only exportable ops (the route to ONNX); batch size stays dynamic."""
    torch.manual_seed(0)
    model = CENet3D2D(temporal_radius=1, width=0.125, encoder="resnet18").eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(model, (torch.rand(2, 3, 97, 131),), dynamic_shapes=({0: batch},))
    clips = torch.rand(3, 3, 97, 131)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(clips), model(clips))


def _perturbed(model: nn.Module, seed: int = 0) -> nn.Module:
    """Move every parameter off its initial value (zero biases would hide bias mistakes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


@pytest.mark.parametrize("radius", [1, 2])
def test_folded_input_layer_equals_the_two_convolutions_including_the_border(radius):
    from angioseg.nn import FoldedInputLayer

    model = _perturbed(CENet3D2D(temporal_radius=radius, width="lite"), seed=radius)
    stem_conv = model.body.encoder.stem[0]
    layer = FoldedInputLayer(model.temporal_conv.weight.flatten(1, 2), model.temporal_conv.bias, stem_conv.weight)
    x = torch.rand(2, 2 * radius + 1, 23, 30)
    with torch.inference_mode():
        reference = stem_conv(model.fuse(x))
        folded = layer(x)
        naive = torch.nn.functional.conv2d(x, layer.kernel, layer.bias, padding=2)  # without the ring fix
    assert torch.allclose(folded, reference, atol=1e-4)
    assert (naive - reference)[..., 1:-1, 1:-1].abs().max() < 1e-4
    assert (naive - reference)[..., 0, :].abs().max() > 1e-2  # the ring really needs the fix


@pytest.mark.parametrize("size", [(97, 131), (300, 300)])
def test_folded_model_gives_the_same_logits_and_leaves_the_original_alone(size):
    from angioseg.nn import FoldedCENet3D2D, fold_for_inference

    model = _perturbed(CENet3D2D(temporal_radius=2, width="lite"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_for_inference(model)
    assert isinstance(folded, FoldedCENet3D2D)
    x = torch.rand(1, 5, *size)
    with torch.inference_mode():
        reference = model(x)
        assert torch.allclose(folded(x), reference, atol=1e-3 * reference.abs().max().item())
        channels_last = to_channels_last(fold_for_inference(model))
        assert torch.allclose(channels_last(x.contiguous(memory_format=torch.channels_last)), reference,
                              atol=1e-3 * reference.abs().max().item())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert fold_for_inference(nn.Conv2d(1, 1, 3)).__class__ is nn.Conv2d
