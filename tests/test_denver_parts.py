"""DeNVeR building blocks (angioseg.methods.denver), each on a hand-computed case."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from angioseg.errors import InputError
from angioseg.warp import pixel_grid
from angioseg.methods.denver import (
    BSplineMotion,
    EulerianFlow,
    LossSchedule,
    LossWeights,
    MultiResGrid,
    SirenMLP,
    active_losses,
    background_flow,
    bootstrap_loss,
    bspline_basis,
    composite,
    coordinate_scale,
    jacobian_smoothness_loss,
    jacobian_smoothness_loss_autograd,
    jacobian_smoothness_loss_grid,
    layer_flow_loss,
    limit_loss,
    make_stage1_fields,
    mask_loss,
    parallel_loss,
    prior_loss,
    rec_loss,
    reconstruction_loss,
    transport,
    vessel_flow,
    vessel_normals,
    video_coordinates,
    warp_loss,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# Stage 1 losses
# ---------------------------------------------------------------------------------------------


def test_stage1_losses_by_hand():
    prediction, target = torch.tensor([1.0, 2.0, 0.0, -1.0]), torch.zeros(4)
    assert reconstruction_loss(prediction, target).item() == pytest.approx((1 + 4 + 0 + 1) / 4)
    assert limit_loss(torch.tensor([-1.0, 2.0, 0.0, 1.0])).item() == pytest.approx(1.0)
    total = bootstrap_loss(prediction, target, smoothness=torch.tensor(3.0), foreground=torch.tensor([-1.0, 2.0, 0.0, 1.0]))
    assert total.item() == pytest.approx(1.5 + 0.02 * 3.0 + 0.02 * 1.0)
    with pytest.raises(InputError):
        reconstruction_loss(prediction, torch.zeros(3))


def _quadratic_field(coords: torch.Tensor) -> torch.Tensor:
    """g(x, y, t) = (0.3 x^2 + x y - 0.5 t, y t + 0.2 t^2 - x): `(..., 3)` -> `(..., 2)`."""
    x, y, t = coords.unbind(-1)
    return torch.stack((0.3 * x * x + x * y - 0.5 * t, y * t + 0.2 * t * t - x), dim=-1)


def test_jacobian_finite_differences_match_autograd_on_an_analytic_field():
    coords = video_coordinates(5, 9, 11, dtype=torch.float64)  # (T, H, W, 3) in [-1, 1]
    grid_value = jacobian_smoothness_loss_grid(_quadratic_field(coords))
    flat = coords.reshape(-1, 3).clone().requires_grad_(True)
    auto_value = jacobian_smoothness_loss_autograd(_quadratic_field(flat), flat)
    assert grid_value.item() == pytest.approx(auto_value.item(), abs=1e-10)
    # the dispatcher picks the same two
    assert jacobian_smoothness_loss(_quadratic_field(coords)).item() == pytest.approx(grid_value.item())
    assert jacobian_smoothness_loss(_quadratic_field(flat), coords=flat).item() == pytest.approx(auto_value.item())
    # a linear field: |J|_1 is the sum of |coefficients| everywhere
    x, y, t = coords.unbind(-1)
    linear = torch.stack((2 * x - y + 0.5 * t, -3 * t + 0 * x), dim=-1)
    assert jacobian_smoothness_loss_grid(linear).item() == pytest.approx(2 + 1 + 0.5 + 3)


def test_jacobian_autograd_trains_a_coordinate_mlp():
    net = SirenMLP(3, 2, hidden_features=16, layers=2, seed=0, dtype=torch.float64)
    coords = (torch.rand(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_(True)
    loss = jacobian_smoothness_loss_autograd(net(coords), coords)
    loss.backward()
    # every weight gets a gradient (the output bias does not enter the Jacobian)
    assert all(linear.weight.grad is not None and torch.isfinite(linear.weight.grad).all() for linear in net.linears)
    assert net.linears[-1].bias.grad is None
    assert float(net.linears[0].weight.grad.abs().sum()) > 0
    with pytest.raises(InputError):
        jacobian_smoothness_loss_autograd(net(coords.detach()), coords.detach())


# ---------------------------------------------------------------------------------------------
# Stage 2 losses
# ---------------------------------------------------------------------------------------------


def test_prior_loss_uses_the_background_mask_convention():
    hessian = torch.tensor([1.0, 1.0, 0.0, 0.0])  # prior: vessel, vessel, background, background
    background = torch.tensor([1.0, 0.0, 1.0, 0.0])  # predicted background probability M_t
    # terms: H M = 1, 0; alpha (1-H)(1-M) = 0, alpha
    assert prior_loss(background, hessian, alpha=0.5).item() == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    # agreeing with the prior (vessel = not background) costs nothing
    assert prior_loss(1.0 - hessian, hessian).item() == 0.0
    assert prior_loss(hessian, hessian.bool(), alpha=2.0).item() == pytest.approx((1 + 1 + 2 + 2) / 4)
    with pytest.raises(InputError):
        prior_loss(background, hessian, alpha=-1.0)


def _bar(height: int = 32, width: int = 40) -> np.ndarray:
    mask = np.zeros((1, height, width), bool)
    mask[0, 12:19, :] = True  # a horizontal vessel, 7 pixels thick, crossing the frame
    return mask


def test_vessel_normals_of_a_horizontal_bar():
    mask = _bar()
    normals = vessel_normals(mask)
    assert normals.shape == (1, 32, 40, 2)
    assert normals[0, :, :, 0].abs().max().item() == 0.0  # no component along the bar
    assert torch.all(normals[0, ~torch.from_numpy(mask[0])] == 0)
    assert torch.all(normals[0, 15] == 0)  # the centreline
    assert torch.all(normals[0, 12:15, :, 1] == -1) and torch.all(normals[0, 16:19, :, 1] == 1)


def test_parallel_loss_zero_along_and_one_across_a_straight_vessel():
    mask = _bar()
    along = torch.zeros(1, 32, 40, 2)
    along[..., 0] = 1.0
    across = torch.zeros(1, 32, 40, 2)
    across[..., 1] = 1.0
    assert parallel_loss(along, prior_mask=mask).item() == 0.0
    assert parallel_loss(across, prior_mask=mask).item() == pytest.approx(1.0, abs=1e-7)
    normals = vessel_normals(mask)
    assert parallel_loss((along + across) / math.sqrt(2), normals=normals).item() == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    # zero flow pixels are left out, and their gradient is 0, not NaN
    flow = across.clone()
    flow[0, :14] = 0.0
    flow.requires_grad_(True)
    loss = parallel_loss(flow, normals=normals)
    loss.backward()
    assert loss.item() == pytest.approx(1.0, abs=1e-6) and torch.isfinite(flow.grad).all()
    # nothing to compare with: 0
    assert parallel_loss(across, prior_mask=np.zeros((1, 32, 40), bool)).item() == 0.0
    with pytest.raises(InputError):
        parallel_loss(across)


def test_warp_loss_on_a_translating_layer():
    frames, height, width = 3, 8, 10
    shift = torch.tensor([2.0, 0.0])  # the content moves 2 px right per frame
    grid = pixel_grid(height, width, dtype=torch.float64)
    coords = torch.stack([grid - t * shift for t in range(frames)])  # frame t's pixel -> canonical
    coords = torch.stack((coords, coords))  # two layers with the same motion
    masks = torch.ones(2, frames, height, width, dtype=torch.float64)
    flow = shift.expand(frames - 1, height, width, 2).to(torch.float64)
    assert torch.allclose(coordinate_scale(coords), torch.ones(2, frames, dtype=torch.float64))
    assert warp_loss(coords, masks, flow).item() == pytest.approx(0.0, abs=1e-12)
    # a zero flow misses the motion by 2 px: |2| / (s_t + s_t+1) = 1 per layer
    still = torch.zeros_like(flow)
    assert warp_loss(coords, masks, still).item() == pytest.approx(2.0)
    assert warp_loss(coords, masks, still, norm="l1").item() == pytest.approx(2.0)
    # the masks weight the pixels, the scale removes the canonical units
    assert warp_loss(coords, 0.5 * masks, still).item() == pytest.approx(1.0)
    assert warp_loss(3.0 * coords, masks, still).item() == pytest.approx(2.0)
    with pytest.raises(InputError):
        warp_loss(coords, masks, flow[:1])


def test_layer_flow_loss_by_hand():
    flow = torch.zeros(2, 4, 5, 2)
    flow[..., 0] = 1.0  # backend: 1 px right
    predicted = torch.zeros(2, 2, 4, 5, 2)  # (L, T-1, H, W, 2)
    predicted[0, ..., 0] = 1.0  # layer 0 right, layer 1 still
    predicted[1, ..., 1] = 2.0  # layer 1 moves 2 px down: |dx| + |dy| = 1 + 2 off
    masks = torch.full((2, 3, 4, 5), 0.5)
    assert layer_flow_loss(predicted, masks, flow).item() == pytest.approx(0.5 * 3)
    assert layer_flow_loss(predicted, masks, flow, norm="l2").item() == pytest.approx(0.5 * math.sqrt(5))


def test_mask_loss_on_a_translating_square():
    frames, height, width = 2, 8, 8
    foreground = torch.zeros(frames, height, width)
    foreground[0, 2:6, 3:6] = 1.0
    foreground[1, 2:6, 4:7] = 1.0  # moved 1 px right
    masks = torch.stack((foreground, 1.0 - foreground))
    flow = torch.zeros(frames - 1, height, width, 2)
    flow[..., 0] = 1.0
    assert mask_loss(masks, flow).item() == pytest.approx(0.0, abs=1e-6)  # float32 sampling round-off
    # without the flow: columns 3 and 6 of rows 2-5 differ, 8 of 64 pixels, in both layers
    assert mask_loss(masks, torch.zeros_like(flow)).item() == pytest.approx(2 * 8 / 64)


def test_composite_and_rec_loss():
    frames = torch.zeros(2, 4, 4)
    foreground, background = torch.zeros(2, 4, 4), torch.ones(2, 4, 4)
    mask = torch.full((2, 4, 4), 0.25)
    assert torch.allclose(composite(foreground=foreground, background=background, background_mask=mask), mask)
    assert rec_loss(frames, foreground=foreground, background=background, background_mask=mask).item() == pytest.approx(0.25)
    assert rec_loss(frames + 0.25, foreground=foreground, background=background, background_mask=mask).item() == 0.0
    with pytest.raises(InputError):
        composite(foreground=torch.zeros(3), background=background, background_mask=mask)


def test_weights_and_schedule():
    weights = LossWeights()
    assert (weights.prior, weights.parallel, weights.warp, weights.mask, weights.rec) == (0.5, 0.05, 0.1, 0.1, 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        weights.prior = 1.0  # type: ignore[misc]
    with pytest.raises(InputError):
        LossWeights(warp=-0.1)
    schedule = LossSchedule()
    assert active_losses(0, schedule) == {"prior": 0.5}
    assert active_losses(499, schedule) == {"prior": 0.5}
    assert active_losses(500, schedule) == {"prior": 0.5, "parallel": 0.05}
    assert active_losses(1500, schedule) == {"prior": 0.5, "parallel": 0.05, "warp": 0.1, "mask": 0.1}
    assert active_losses(10_000, schedule) == {"prior": 0.5, "parallel": 0.05, "warp": 0.1, "mask": 0.1, "rec": 0.5}
    ramped = LossSchedule(prior=0, parallel=100, warp=None, mask=None, rec=None, ramp=10)
    assert active_losses(104, ramped) == pytest.approx({"prior": 0.5, "parallel": 0.05 * 0.5})
    assert active_losses(5000, ramped) == pytest.approx({"prior": 0.5, "parallel": 0.05})
    with pytest.raises(InputError):
        active_losses(-1, schedule)
    with pytest.raises(InputError):
        LossSchedule(parallel=-5)


# ---------------------------------------------------------------------------------------------
# B-spline background motion
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_bspline_reproduces_a_linear_field(degree):
    frames, height, width = 7, 12, 16
    motion = BSplineMotion((4, 5, 6), frames, height, width, degree=degree, dtype=torch.float64)
    pt, py, px = motion.control_points()  # positions of the control points, outside the frame at the ends
    coefficients = torch.tensor([[0.3, -0.2, 0.5], [-0.1, 0.4, 0.25]], dtype=torch.float64)  # rows: dx, dy; cols: t, y, x
    offset = torch.tensor([1.5, -2.0], dtype=torch.float64)

    def linear(t, y, x):
        tt, yy, xx = torch.meshgrid(t, y, x, indexing="ij")
        return torch.stack((tt, yy, xx), dim=-1) @ coefficients.T + offset

    with torch.no_grad():
        motion.control.copy_(linear(pt, py, px))
    t = torch.arange(frames, dtype=torch.float64)
    expected = linear(t, torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64))
    assert torch.allclose(motion(), expected, atol=1e-5, rtol=0)
    half = torch.tensor([0.5, 2.25, 6.0], dtype=torch.float64)
    ys, xs = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    assert torch.allclose(motion(half), linear(half, ys, xs), atol=1e-5, rtol=0)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_bspline_partition_of_unity(degree):
    positions = torch.linspace(0, 19, 97, dtype=torch.float64)
    basis = bspline_basis(positions, count=6, length=20, degree=degree)
    assert basis.shape == (97, 6)
    assert torch.all(basis >= 0)
    assert torch.allclose(basis.sum(dim=1), torch.ones(97, dtype=torch.float64), atol=1e-12)


def test_bspline_gradient_reaches_every_control_point():
    motion = BSplineMotion((4, 4, 5), 6, 10, 12)
    motion().sum().backward()
    grad = motion.control.grad
    assert grad.shape == (4, 4, 5, 2) and torch.all(grad > 0)
    t = torch.arange(6, dtype=torch.float32)
    expected = torch.einsum("a,b,c->abc", motion.time_basis(t).sum(0), motion.basis_y.sum(0), motion.basis_x.sum(0))
    assert torch.allclose(grad[..., 0], expected, atol=1e-4) and torch.allclose(grad[..., 1], expected, atol=1e-4)


def test_bspline_rejects_bad_arguments():
    with pytest.raises(InputError):
        BSplineMotion((3, 4, 4), 5, 8, 8)  # a cubic spline needs 4 control points per axis
    with pytest.raises(InputError):
        BSplineMotion((4, 4, 4), 5, 8, 8, degree=4)
    with pytest.raises(InputError):
        BSplineMotion((4, 4, 4), 5, 8, 8)(torch.tensor([5.0]))


# ---------------------------------------------------------------------------------------------
# Stage-1 fields
# ---------------------------------------------------------------------------------------------


def test_field_shapes():
    coords3 = torch.rand(10, 3) * 2 - 1
    assert SirenMLP(3, 2, seed=0)(coords3).shape == (10, 2)
    assert MultiResGrid(3, 1, resolutions=(4, (8, 8, 3)), seed=0)(coords3).shape == (10, 1)
    assert MultiResGrid(2, 3, resolutions=(4, 8), seed=0)(coords3[:, :2]).shape == (10, 3)
    coords = video_coordinates(3, 16, 16).reshape(-1, 3)
    assert coords.min().item() == -1.0 and coords.max().item() == 1.0
    for kind in ("grid", "siren"):
        model = make_stage1_fields(kind, frames=3, height=16, width=16, seed=0)
        out = model(coords)
        assert out["prediction"].shape == out["foreground"].shape == out["background"].shape == (768, 1)
        assert out["offsets"].shape == (768, 2) and out["offsets"].abs().max().item() == 0.0  # identity at start
    with pytest.raises(InputError):
        SirenMLP(3, 2)(coords3[:, :2])
    with pytest.raises(InputError):
        make_stage1_fields("mlp", frames=3, height=16, width=16)


@pytest.mark.parametrize("kind", ["grid", "siren"])
def test_stage1_bootstrap_steps_lower_the_loss(kind):
    frames, height, width = 3, 8, 8
    video = torch.rand(frames, height, width, generator=torch.Generator().manual_seed(0))
    coords = video_coordinates(frames, height, width)
    model = make_stage1_fields(kind, frames=frames, height=height, width=width, seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2 if kind == "grid" else 1e-4)
    values = []
    for _ in range(15):
        optimiser.zero_grad()
        flat = coords.reshape(-1, 3)
        if kind == "siren":
            flat = flat.clone().requires_grad_(True)
        out = model(flat)
        if kind == "siren":
            smooth = jacobian_smoothness_loss(out["offsets"], coords=flat)
        else:  # the whole lattice: finite differences
            smooth = jacobian_smoothness_loss(out["offsets"].reshape(frames, height, width, 2))
        loss = bootstrap_loss(out["prediction"], video.reshape(-1, 1), smoothness=smooth, foreground=out["foreground"])
        loss.backward()
        optimiser.step()
        values.append(loss.item())
    assert values[-1] < values[0]


def test_siren_initialisation_statistics():
    net = SirenMLP(3, 1, hidden_features=256, layers=3, seed=0)
    first = net.linears[0].weight
    assert first.abs().max().item() <= 1 / 3
    assert first.std().item() == pytest.approx((1 / 3) / math.sqrt(3), rel=0.1)
    bound = math.sqrt(6 / 256) / 30
    for linear in net.linears[1:]:
        assert linear.weight.abs().max().item() <= bound
    hidden = net.linears[1].weight
    assert hidden.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert abs(hidden.mean().item()) < 0.05 * bound


def _image() -> torch.Tensor:
    """32 x 32 test image: a horizontal gradient plus a bright disk."""
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disk = ((xx - 18) ** 2 + (yy - 14) ** 2 < 64).float()
    return (0.2 + 0.4 * xx / 31 + 0.3 * disk).clamp(0, 1)


@pytest.mark.parametrize(
    "make, lr",
    [
        (lambda: SirenMLP(2, 1, hidden_features=64, layers=3, seed=0), 1e-3),
        (lambda: MultiResGrid(2, 1, resolutions=(8, 16, 32), features=4, seed=0), 3e-2),
    ],
    ids=["siren", "grid"],
)
def test_fields_fit_a_small_image(make, lr):
    image = _image()
    coords = video_coordinates(1, 32, 32)[0, ..., :2].reshape(-1, 2)
    target = image.reshape(-1, 1)
    net = make()
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(150):
        optimiser.zero_grad()
        loss = (net(coords) - target).square().mean()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        mse = (net(coords) - target).square().mean().item()
    assert 10 * math.log10(1.0 / mse) > 25.0


def test_fields_are_deterministic_for_a_seed():
    coords = torch.rand(20, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1
    for make in (lambda s: SirenMLP(3, 2, seed=s), lambda s: MultiResGrid(3, 2, resolutions=(4, 8), seed=s)):
        assert torch.equal(make(7)(coords), make(7)(coords))
        assert not torch.equal(make(7)(coords), make(8)(coords))


# ---------------------------------------------------------------------------------------------
# Eulerian vessel flow
# ---------------------------------------------------------------------------------------------


def _random_field(height: int, width: int) -> torch.Tensor:
    return torch.randn(height, width, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_eulerian_flow_without_background_motion_is_the_field():
    field = _random_field(10, 12)
    still = torch.zeros(4, 10, 12, 2, dtype=torch.float64)
    assert torch.equal(background_flow(still), torch.zeros(3, 10, 12, 2, dtype=torch.float64))
    flow = vessel_flow(field, displacement=still)
    assert flow.shape == (3, 10, 12, 2)
    assert torch.allclose(flow, field.expand(3, -1, -1, -1), atol=1e-12)


def test_eulerian_flow_with_a_translating_background():
    height, width, frames = 10, 12, 3
    field = _random_field(height, width)
    shift = torch.tensor([2.0, 1.0], dtype=torch.float64)  # background moves (2, 1) px per frame
    displacement = torch.stack([-t * shift.expand(height, width, 2) for t in range(frames)])  # d_t = -t s
    beta = background_flow(displacement)
    assert torch.allclose(beta, shift.expand(frames - 1, height, width, 2), atol=1e-12)
    flow = vessel_flow(field, displacement=displacement)
    for t in range(frames - 1):
        dx, dy = 2 * t, 1 * t
        # inside the frame: E shifted with the background by t s, plus the translation s
        expected = field[: height - dy, : width - dx] + shift
        assert torch.allclose(flow[t, dy:, dx:], expected, atol=1e-12)
    assert torch.allclose(transport(field, displacement)[1, 1:, 2:], field[:-1, :-2], atol=1e-12)


def test_background_flow_solves_the_correspondence_and_gradients_flow():
    height, width, frames = 16, 16, 4
    motion = BSplineMotion((4, 4, 4), frames, height, width)
    eulerian = EulerianFlow(height, width)
    with torch.no_grad():
        motion.control.copy_(torch.randn(4, 4, 4, 2, generator=torch.Generator().manual_seed(1)) * 0.8)
        eulerian.field.fill_(0.5)
    displacement = motion()
    beta = background_flow(displacement, iterations=6)
    grid = pixel_grid(height, width)
    target = grid + beta
    from angioseg.warp import sample_pixels

    moved = sample_pixels(displacement[1:].permute(0, 3, 1, 2), target).permute(0, 2, 3, 1)
    inside = (target[..., 0] >= 0) & (target[..., 0] <= width - 1) & (target[..., 1] >= 0) & (target[..., 1] <= height - 1)
    residual = (target + moved - (grid + displacement[:-1])).norm(dim=-1)
    assert residual[inside].max().item() < 1e-3
    flow = eulerian(displacement)
    loss = flow.square().mean()
    loss.backward()
    assert eulerian.field.grad.abs().sum() > 0 and motion.control.grad.abs().sum() > 0


def _translating_texture(frames: int, size: int, step: float) -> torch.Tensor:
    """`(T, size, size)` smooth random texture moving `step` px per frame along +x."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    texture = ndimage.gaussian_filter(rng.random((size, 3 * size)), 2.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    stack = [ndimage.shift(texture, (0.0, step * t), order=1, mode="nearest")[:, size : 2 * size] for t in range(frames)]
    return torch.from_numpy(np.stack(stack).astype(np.float32))


def test_stage1_deformation_is_pinned_to_zero_in_the_anchor_frame():
    model = make_stage1_fields("grid", frames=5, height=16, width=16, seed=0)
    with torch.no_grad():
        model.deformation.head.bias.fill_(0.3)  # a constant offset: the gauge freedom of (C, g_b)
        for grid in model.deformation.grids:
            grid.normal_(0.0, 1.0)
        model.deformation.head.weight.normal_(0.0, 1.0)
    coords = video_coordinates(5, 16, 16)
    offsets = model.offsets(coords.reshape(-1, 3)).reshape(5, 16, 16, 2)
    assert offsets[2].abs().max().item() < 1e-6  # middle frame (t = 0)
    assert offsets[0].abs().max().item() > 1e-3


def test_stage1_recovers_a_translation():
    """A texture moving 1 px/frame: the background deformation (x + d_t(x) in the canonical
    frame) changes by -1 px per frame along x and vanishes in the middle frame."""
    from angioseg.methods.denver.stage1 import run_stage1

    torch.manual_seed(0)
    video = _translating_texture(7, 40, 1.0)
    result = run_stage1(video, iterations=400, batch_size=4096, seed=0, progress=False)
    inner = result.deformation[:, 8:-8, 8:-8]  # away from the edges, where content enters
    per_frame = np.diff(inner[..., 0], axis=0).mean()
    assert per_frame == pytest.approx(-1.0, abs=0.3)
    assert np.abs(inner[3]).mean() < 0.05
    assert np.abs(inner[..., 1]).mean() < 0.3
