"""DeNVeR's losses (Eq. 1-7 of the paper) as functions of torch tensors.

Reductions: the paper writes every loss as a sum over pixels (and frames). Here every loss is a
*mean* over the pixels (frames, pairs of frames) it is taken over, so that the paper's weights
(lambda_smooth = lambda_limit = 0.02; lambda_prior 0.5, lambda_parallel 0.05, lambda_warp 0.1,
lambda_mask 0.1, lambda_rec 0.5) balance the terms the same way at any resolution and clip
length. Sums over *layers* (Eq. 4, 5) and over the entries of a Jacobian (Eq. 1) stay sums.

Conventions: flows, displacements and coordinate maps are channels-last `(..., H, W, 2)`,
(x, y) in pixels unless said otherwise. ``forward_flow`` is the flow backend's forward flow
f_t `(T-1, H, W, 2)` on frame t's grid (`angioseg.flow.dis.estimate_flows`' first output):
pixel x of frame t is found at x + f_t(x) in frame t+1, the paper's F_{t->t+1}(x).

Masks: the paper's M_t in Eq. 2 is the BACKGROUND mask (probability that a pixel belongs to
the background layer) predicted by the mask network; the vessel (foreground) mask is 1 - M_t.
`prior_loss` therefore takes ``background_mask``; Eq. 4 and 5 take both layers' masks, stacked
as ``masks`` `(L, T, H, W)` in the order (foreground, background).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from angioseg.errors import InputError
from angioseg.warp import inside_frame, pixel_grid, sample_pixels

__all__ = [
    "LAMBDA_SMOOTH",
    "LAMBDA_LIMIT",
    "LOSS_NAMES",
    "LossWeights",
    "LossSchedule",
    "active_losses",
    "reconstruction_loss",
    "jacobian_smoothness_loss",
    "jacobian_smoothness_loss_grid",
    "jacobian_smoothness_loss_autograd",
    "limit_loss",
    "bootstrap_loss",
    "prior_loss",
    "vessel_normals",
    "parallel_loss",
    "coordinate_scale",
    "warp_loss",
    "layer_flow_loss",
    "mask_loss",
    "composite",
    "rec_loss",
]

#: Eq. 1 weights (Sec. 4.3: "lambda_limit = 0.02 and lambda_smooth = 0.02").
LAMBDA_SMOOTH = 0.02
LAMBDA_LIMIT = 0.02
#: The stage-2 losses of Eq. 7, in the order the paper switches them on (Sec. 4.3).
LOSS_NAMES = ("prior", "parallel", "warp", "mask", "rec")


def _check_same(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise InputError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")


def _check_field(name: str, value: torch.Tensor, ndim: int) -> None:
    if value.ndim != ndim or value.shape[-1] != 2:
        raise InputError(f"{name} must be a {ndim}-d tensor ending in 2 (x, y); got shape {tuple(value.shape)}")


# ---------------------------------------------------------------------------------------------
# Stage 1: layer separation bootstrapping (Sec. 3.2, Eq. 1)
# ---------------------------------------------------------------------------------------------


def reconstruction_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_recons = mean_{x,y,t} (Î(x,y,t) - I(x,y,t))^2  (Eq. 1's squared error, mean not sum).

    Args:
        prediction, target: tensors of the same shape (e.g. `(N, 1)` samples or `(T, H, W)`).
    """
    _check_same("reconstruction_loss", prediction, target)
    return (prediction - target).square().mean()


def _derivative(values: torch.Tensor, dim: int, step: float) -> torch.Tensor:
    """d values / d(axis `dim`) by finite differences: central inside, second-order one-sided
    at the ends (exact for quadratics); first-order with 2 samples, 0 with 1."""
    size = values.shape[dim]
    if size == 1:
        return torch.zeros_like(values)
    return torch.gradient(values, spacing=step, dim=dim, edge_order=2 if size > 2 else 1)[0]


def jacobian_smoothness_loss_grid(offsets: torch.Tensor, *, spacing: tuple[float, float, float] | None = None) -> torch.Tensor:
    """L_smooth of Eq. 1 for a deformation sampled on a regular (t, y, x) lattice.

    L_smooth = mean_{t,y,x} sum_{i in (dx, dy), j in (x, y, t)} |d g_i / d j|

    (the entrywise L1 norm of the 2 x 3 Jacobian J_g(x, y, t), averaged over the lattice), with
    the derivatives by finite differences: central inside, second-order one-sided at the ends.

    Args:
        offsets: `(T, H, W, 2)` background deformation g_theta_b at every lattice point.
        spacing: lattice steps (sx, sy, st) in the units of the coordinates the Jacobian is
            taken against. None: the [-1, 1] coordinates of `fields.video_coordinates`, i.e.
            (2/(W-1), 2/(H-1), 2/(T-1)) (1 for an axis of length 1, whose derivative is 0).

    Returns:
        scalar tensor.
    """
    _check_field("offsets", offsets, 4)
    frames, height, width = offsets.shape[:3]
    if spacing is None:
        spacing = tuple(2.0 / (n - 1) if n > 1 else 1.0 for n in (width, height, frames))
    if len(spacing) != 3 or not all(math.isfinite(float(s)) and float(s) > 0 for s in spacing):
        raise InputError(f"spacing must be three positive numbers (sx, sy, st); got {spacing!r}")
    sx, sy, st = (float(s) for s in spacing)
    total = sum(_derivative(offsets, dim, step).abs() for dim, step in ((2, sx), (1, sy), (0, st)))
    return total.sum(dim=-1).mean()


def jacobian_smoothness_loss_autograd(offsets: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """L_smooth of Eq. 1 for a coordinate network, the Jacobian by automatic differentiation.

    L_smooth = mean_n sum_{i, j} |d g_i(c_n) / d c_j|, c = (x, y, t)

    Args:
        offsets: `(N, 2)` g_theta_b(coords), computed from `coords` inside the autograd graph.
        coords: `(N, 3)` (x, y, t) with ``requires_grad=True``.

    Returns:
        scalar tensor (differentiable: the Jacobian is built with ``create_graph=True``).
    """
    if offsets.ndim != 2 or offsets.shape[1] != 2 or coords.ndim != 2 or coords.shape != (offsets.shape[0], 3):
        shapes = f"{tuple(offsets.shape)}, {tuple(coords.shape)}"
        raise InputError(f"jacobian_smoothness_loss_autograd needs (N, 2) offsets and (N, 3) coords; got {shapes}")
    if not coords.requires_grad:
        raise InputError("jacobian_smoothness_loss_autograd: coords must require grad and offsets be computed from them")
    rows = [
        torch.autograd.grad(offsets[:, i].sum(), coords, create_graph=True, retain_graph=True)[0]
        for i in range(2)
    ]  # each (N, 3): d g_i / d (x, y, t); a sample's outputs depend only on its own inputs
    return torch.stack(rows, dim=1).abs().sum(dim=(1, 2)).mean()


def jacobian_smoothness_loss(
    offsets: torch.Tensor, *, coords: torch.Tensor | None = None, spacing: tuple[float, float, float] | None = None
) -> torch.Tensor:
    """L_smooth: `jacobian_smoothness_loss_autograd(offsets, coords)` when `coords` is given
    (coordinate MLP, `(N, 2)` offsets), else `jacobian_smoothness_loss_grid(offsets, spacing=)`
    (explicit `(T, H, W, 2)` lattice)."""
    if coords is not None:
        return jacobian_smoothness_loss_autograd(offsets, coords)
    return jacobian_smoothness_loss_grid(offsets, spacing=spacing)


def limit_loss(foreground: torch.Tensor) -> torch.Tensor:
    """L_limit = mean_{x,y,t} |g_theta_f(x, y, t)|  (Eq. 1: the foreground layer stays sparse).

    Args:
        foreground: foreground layer values, any shape (e.g. `(N, 1)`).
    """
    return foreground.abs().mean()


def bootstrap_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    smoothness: torch.Tensor,
    foreground: torch.Tensor,
    lambda_smooth: float = LAMBDA_SMOOTH,
    lambda_limit: float = LAMBDA_LIMIT,
) -> torch.Tensor:
    """L_bootstrap = L_recons(Î, I) + lambda_smooth L_smooth + lambda_limit L_limit(g_theta_f)  (Eq. 1).

    Args:
        prediction, target: Î and I, same shape.
        smoothness: the scalar L_smooth (from `jacobian_smoothness_loss`; it depends on the
            representation of g_theta_b, so it is computed by the caller).
        foreground: g_theta_f values at the same samples.
        lambda_smooth, lambda_limit: weights, 0.02 each in the paper.
    """
    if smoothness.ndim != 0:
        raise InputError(f"bootstrap_loss: smoothness must be a scalar tensor; got shape {tuple(smoothness.shape)}")
    return reconstruction_loss(prediction, target) + lambda_smooth * smoothness + lambda_limit * limit_loss(foreground)


# ---------------------------------------------------------------------------------------------
# Stage 2: test-time training (Sec. 3.4, Eq. 2-7)
# ---------------------------------------------------------------------------------------------


def prior_loss(background_mask: torch.Tensor, hessian_mask: torch.Tensor, *, alpha: float = 1.0) -> torch.Tensor:
    """Hessian prior loss, Eq. 2 with the paper's convention (M_t = predicted BACKGROUND mask).

    L_prior = mean_x [ H_t(x) M_t(x) + alpha (1 - H_t(x)) (1 - M_t(x)) ]

    H_t = 1 on the vessels of the Hessian prior (`angioseg.vessel.prior.vesselness_masks`).
    The first term penalises background probability on prior vessels; the second, weighted by
    alpha ("the foreground weight"), penalises foreground probability 1 - M_t off the prior.

    Args:
        background_mask: `(T, H, W)` (any shape) M_t in [0, 1].
        hessian_mask: same shape, H_t in {0, 1} (bool or float).
        alpha: weight of the foreground term (not given in the paper; 1 = balanced).
    """
    _check_same("prior_loss", background_mask, hessian_mask)
    if not (math.isfinite(alpha) and alpha >= 0):
        raise InputError(f"alpha must be a non-negative number; got {alpha!r}")
    h = hessian_mask.to(background_mask.dtype)
    return (h * background_mask + alpha * (1.0 - h) * (1.0 - background_mask)).mean()


def _normals_of_frame(mask: np.ndarray) -> np.ndarray:
    """`(H, W, 2)` gradient (d/dx, d/dy) of the distance to the skeleton of `mask`, 0 outside it.

    The mask is edge-padded before skeletonising so that a vessel cut by the frame border keeps
    its centreline up to the border (thinning would otherwise shorten and bend it there)."""
    if not mask.any():
        return np.zeros(mask.shape + (2,), np.float32)
    half_width = float(ndi.distance_transform_edt(mask).max())
    pad = 2 * int(math.ceil(half_width)) + 2
    padded = np.pad(mask, pad, mode="edge")
    distance = ndi.distance_transform_edt(~skeletonize(padded))
    d_dy, d_dx = np.gradient(distance)
    crop = (slice(pad, pad + mask.shape[0]), slice(pad, pad + mask.shape[1]))
    normals = np.stack((d_dx[crop], d_dy[crop]), axis=-1)
    normals[~mask] = 0.0
    return normals.astype(np.float32)


def vessel_normals(
    prior_mask: np.ndarray | torch.Tensor, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """V of Eq. 3: image gradient of the distance transform to the prior mask's skeleton.

    V(x) = (d D / d u, d D / d v)(x), D = Euclidean distance to the nearest skeleton pixel of
    the (per-frame) prior mask, gradients by central differences; V = 0 outside the mask. V
    points across the vessel (away from its centreline) and is 0 on the centreline itself.
    Not differentiable (computed once from the fixed prior, with scikit-image and SciPy).

    Args:
        prior_mask: `(T, H, W)` or `(H, W)` bool prior masks (numpy or torch).

    Returns:
        `(T, H, W, 2)` (or `(H, W, 2)`) float tensor, (x, y) components.
    """
    masks = prior_mask.detach().cpu().numpy() if isinstance(prior_mask, torch.Tensor) else np.asarray(prior_mask)
    if masks.ndim not in (2, 3):
        raise InputError(f"vessel_normals needs (T, H, W) or (H, W) masks; got shape {masks.shape}")
    masks = masks.astype(bool)
    normals = np.stack([_normals_of_frame(m) for m in masks.reshape((-1,) + masks.shape[-2:])])
    return torch.from_numpy(normals.reshape(masks.shape + (2,))).to(device=device, dtype=dtype)


def _safe_norm(vectors: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last axis; exactly 0 with a 0 (not NaN) gradient at 0."""
    squared = vectors.square().sum(dim=-1)
    positive = squared > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, squared, torch.ones_like(squared))), torch.zeros_like(squared))


def parallel_loss(
    flow: torch.Tensor,
    *,
    normals: torch.Tensor | None = None,
    prior_mask: np.ndarray | torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Parallel vessel motion loss, Eq. 3.

    L_parallel = mean_{x in P} |V(x) . F(x)| / (||V(x)|| ||F(x)||),
    P = {x : ||V(x)|| > eps and ||F(x)|| > eps}

    V = `vessel_normals(prior_mask)` (0 outside the prior vessels), F the predicted vessel flow;
    0 when the flow runs along the vessels, 1 when it crosses them. With no pixel in P the loss
    is 0 (still attached to the graph of `flow`).

    Args:
        flow: `(..., H, W, 2)` predicted vessel (foreground) flow, (dx, dy).
        normals: `(..., H, W, 2)` precomputed V (pass this in a training loop), or
        prior_mask: `(..., H, W)` bool prior masks, turned into V here.
        eps: smallest norm counted as non-zero.
    """
    if (normals is None) == (prior_mask is None):
        raise InputError("parallel_loss needs exactly one of normals= or prior_mask=")
    if normals is None:
        normals = vessel_normals(prior_mask, device=flow.device, dtype=flow.dtype)
    if flow.shape[-1] != 2:
        raise InputError(f"parallel_loss: flow must end in 2 (dx, dy); got shape {tuple(flow.shape)}")
    _check_same("parallel_loss", flow, normals)
    normals = normals.to(device=flow.device, dtype=flow.dtype)
    flow_norm = _safe_norm(flow)
    normal_norm = normals.norm(dim=-1)
    valid = (flow_norm > eps) & (normal_norm > eps)
    if not bool(valid.any()):
        return flow.sum() * 0.0
    cosine = (normals * flow).sum(dim=-1).abs() / (normal_norm * flow_norm).clamp_min(eps * eps)
    return cosine[valid].mean()


def coordinate_scale(coordinates: torch.Tensor) -> torch.Tensor:
    """Scale s of a coordinate map (the paper's "scale of F̂_t", Eq. 4).

    s = sqrt(|det(mean_x J(x))|), J = d coordinates / d (x, y) (2 x 2, finite differences in
    pixel steps); 1 for the identity map in pixels, c for a map scaled by c.

    Args:
        coordinates: `(..., H, W, 2)` maps from a frame's pixels to canonical coordinates.

    Returns:
        `(...)` scales.
    """
    if coordinates.ndim < 3 or coordinates.shape[-1] != 2:
        raise InputError(f"coordinate_scale needs (..., H, W, 2) maps; got shape {tuple(coordinates.shape)}")
    d_dx = _derivative(coordinates, coordinates.ndim - 2, 1.0).mean(dim=(-3, -2))  # (..., 2)
    d_dy = _derivative(coordinates, coordinates.ndim - 3, 1.0).mean(dim=(-3, -2))
    det = d_dx[..., 0] * d_dy[..., 1] - d_dy[..., 0] * d_dx[..., 1]
    return det.abs().clamp_min(1e-12).sqrt()


def _follow(values: torch.Tensor, forward_flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames t+1 of `values` `(T, C, H, W)` sampled at x + f_t(x) -> `(T-1, C, H, W)`, with the
    bool `(T-1, H, W)` mask of the targets inside the frame."""
    height, width = values.shape[-2:]
    targets = pixel_grid(height, width, device=forward_flow.device, dtype=forward_flow.dtype) + forward_flow
    return sample_pixels(values[1:], targets), inside_frame(targets, height, width)


def _check_flow(forward_flow: torch.Tensor, frames: int, height: int, width: int) -> None:
    if forward_flow.shape != (frames - 1, height, width, 2):
        raise InputError(f"forward_flow must have shape {(frames - 1, height, width, 2)}; got {tuple(forward_flow.shape)}")


def warp_loss(
    coordinates: torch.Tensor,
    masks: torch.Tensor,
    forward_flow: torch.Tensor,
    *,
    scales: torch.Tensor | None = None,
    norm: str = "l2",
    eps: float = 1e-8,
) -> torch.Tensor:
    """Flow warp loss, Eq. 4: each layer's map to its canonical image follows the given flow.

    L_warp = sum_l mean_{t, x in V_t} M^l_t(x) ||F̂^l_t(x) - F̂^l_{t+1}(x + f_t(x))|| / (s^l_t + s^l_{t+1})

    F̂^l_t(x) is where pixel x of frame t lies in layer l's canonical image (a coordinate map,
    e.g. x + B-spline displacement); a point and its match x + f_t(x) in frame t+1 must land on
    the same canonical point. F̂^l_{t+1} is sampled bilinearly; V_t = pixels whose match lies
    inside the frame. s^l_t = `coordinate_scale(F̂^l_t)` makes the loss independent of the units
    of the canonical space.

    With F̂_t = x + d_t (a displacement in pixels) the residual is d_t(x) - d_{t+1}(x + f_t(x))
    - f_t(x): to first order the layer's own motion between the frames minus the flow
    backend's, i.e. the "guidance from flow predicted by RAFT" of the paper. For a layer given
    by its flow instead (the Eulerian vessel flow) see `layer_flow_loss`.

    Args:
        coordinates: `(L, T, H, W, 2)` canonical coordinates per layer and frame (for
            displacements d in pixels pass ``pixel_grid(H, W) + d``).
        masks: `(L, T, H, W)` layer masks M^l_t in [0, 1] (foreground, background).
        forward_flow: `(T-1, H, W, 2)` flow backend's forward flow f_t in pixels.
        scales: `(L, T)` s^l_t; None computes them with `coordinate_scale`.
        norm: "l2" (Euclidean, the paper's ||.||) or "l1".
        eps: guards the division.
    """
    _check_field("coordinates", coordinates, 5)
    layers, frames, height, width = coordinates.shape[:4]
    if masks.shape != (layers, frames, height, width):
        raise InputError(f"masks must have shape {(layers, frames, height, width)}; got {tuple(masks.shape)}")
    _check_flow(forward_flow, frames, height, width)
    if norm not in ("l1", "l2"):
        raise InputError(f"norm must be 'l1' or 'l2'; got {norm!r}")
    if frames < 2:
        return coordinates.sum() * 0.0
    scales = coordinate_scale(coordinates) if scales is None else scales
    if scales.shape != (layers, frames):
        raise InputError(f"scales must have shape {(layers, frames)}; got {tuple(scales.shape)}")
    total = coordinates.new_zeros(())
    for layer in range(layers):
        field = coordinates[layer].permute(0, 3, 1, 2)  # (T, 2, H, W)
        matched, valid = _follow(field, forward_flow)
        residual = (field[:-1] - matched).permute(0, 2, 3, 1)  # (T-1, H, W, 2)
        size = _safe_norm(residual) if norm == "l2" else residual.abs().sum(dim=-1)
        denominator = (scales[layer, :-1] + scales[layer, 1:]).clamp_min(eps)[:, None, None]
        term = masks[layer, :-1] * size / denominator
        total = total + (term[valid].mean() if bool(valid.any()) else term.sum() * 0.0)
    return total


def layer_flow_loss(flows: torch.Tensor, masks: torch.Tensor, forward_flow: torch.Tensor, *, norm: str = "l1") -> torch.Tensor:
    """Direct flow agreement, for layers represented by flows (not Eq. 4 itself; see `warp_loss`).

    L = sum_l mean_{t, x} M^l_t(x) ||F̂^l_t(x) - f_t(x)||

    Args:
        flows: `(L, T-1, H, W, 2)` predicted forward flow t -> t+1 per layer (e.g. the vessel
            flow of `eulerian.vessel_flow`, the background flow of `eulerian.background_flow`).
        masks: `(L, T, H, W)` layer masks (frame t's mask weights the pair t, t+1).
        forward_flow: `(T-1, H, W, 2)` flow backend's forward flow.
        norm: "l1" (|dx| + |dy|) or "l2".
    """
    _check_field("flows", flows, 5)
    layers, pairs, height, width = flows.shape[:4]
    if masks.shape != (layers, pairs + 1, height, width):
        raise InputError(f"masks must have shape {(layers, pairs + 1, height, width)}; got {tuple(masks.shape)}")
    _check_flow(forward_flow, pairs + 1, height, width)
    if norm not in ("l1", "l2"):
        raise InputError(f"norm must be 'l1' or 'l2'; got {norm!r}")
    residual = flows - forward_flow
    size = residual.abs().sum(dim=-1) if norm == "l1" else _safe_norm(residual)
    return (masks[:, :-1] * size).mean(dim=(1, 2, 3)).sum()


def mask_loss(masks: torch.Tensor, forward_flow: torch.Tensor) -> torch.Tensor:
    """Mask consistency loss, Eq. 5.

    L_mask = sum_{l in (f, b)} mean_{t, x in V_t} |M^l_t(x) - M^l_{t+1}(x + f_t(x))|

    M^l_{t+1} sampled bilinearly; V_t = pixels whose match lies inside the frame. With
    M^b = 1 - M^f both terms are equal (the loss is twice the foreground term), as in Eq. 5.

    Args:
        masks: `(L, T, H, W)` layer masks in [0, 1] (foreground, background).
        forward_flow: `(T-1, H, W, 2)` forward flow f_t in pixels.
    """
    if masks.ndim != 4:
        raise InputError(f"mask_loss needs (L, T, H, W) masks; got shape {tuple(masks.shape)}")
    layers, frames, height, width = masks.shape
    _check_flow(forward_flow, frames, height, width)
    if frames < 2:
        return masks.sum() * 0.0
    matched, valid = _follow(masks.permute(1, 0, 2, 3), forward_flow)  # (T-1, L, H, W)
    difference = (masks.permute(1, 0, 2, 3)[:-1] - matched).abs().sum(dim=1)  # (T-1, H, W)
    return difference[valid].mean() if bool(valid.any()) else difference.sum() * 0.0


def composite(*, foreground: torch.Tensor, background: torch.Tensor, background_mask: torch.Tensor) -> torch.Tensor:
    """Î_t = (1 - M_t) F_t + M_t B_t: the frame rebuilt from the warped canonical foreground
    F_t and background B_t with the predicted background mask M_t (all broadcastable)."""
    try:
        return (1.0 - background_mask) * foreground + background_mask * background
    except RuntimeError:
        shapes = ", ".join(str(tuple(x.shape)) for x in (foreground, background, background_mask))
        raise InputError(f"composite: shapes {shapes} do not broadcast") from None


def rec_loss(
    frames: torch.Tensor, *, foreground: torch.Tensor, background: torch.Tensor, background_mask: torch.Tensor
) -> torch.Tensor:
    """Reconstruction loss, Eq. 6: L_rec = mean_{t,x} |Î_t(x) - I_t(x)| (L1), Î = `composite`.

    Args:
        frames: `(T, H, W)` (any shape) input frames I_t.
        foreground, background, background_mask: broadcastable to `frames` (see `composite`).
    """
    rebuilt = composite(foreground=foreground, background=background, background_mask=background_mask)
    if rebuilt.shape != frames.shape:
        raise InputError(f"rec_loss: composited shape {tuple(rebuilt.shape)} differs from frames {tuple(frames.shape)}")
    return (rebuilt - frames).abs().mean()


# ---------------------------------------------------------------------------------------------
# Weights and schedule (Sec. 4.3, Eq. 7)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossWeights:
    """Eq. 7 weights (Sec. 4.3) and the foreground weight alpha of Eq. 2.

    L_final = prior L_prior + parallel L_parallel + warp L_warp + mask L_mask + rec L_rec.
    ``alpha`` is not given in the paper (Fig. 10 only shows that it is not sensitive); 1.0 is
    this package's choice.
    """

    prior: float = 0.5
    parallel: float = 0.05
    warp: float = 0.1
    mask: float = 0.1
    rec: float = 0.5
    alpha: float = 1.0

    def __post_init__(self) -> None:
        for name in LOSS_NAMES + ("alpha",):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(f"LossWeights.{name} must be a non-negative number; got {value!r}")


@dataclass(frozen=True)
class LossSchedule:
    """When each stage-2 loss is switched on (Sec. 4.3).

    The paper: "Initially, we use a warm start U-Net network with L_prior to generate a coarse
    mask [...]. Then, we gradually incorporate L_parallel, L_warp, L_mask, and L_rec". It gives
    no iteration counts; the defaults switch the losses on one after another, in that order,
    every 500 iterations (this package's choice). A start of None keeps a loss off. With
    ``ramp`` > 0 a loss's weight grows linearly over its first ``ramp`` iterations.
    """

    prior: int | None = 0
    parallel: int | None = 500
    warp: int | None = 1000
    mask: int | None = 1500
    rec: int | None = 2000
    ramp: int = 0
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        for name in LOSS_NAMES + ("ramp",):
            value = getattr(self, name)
            if value is None and name != "ramp":
                continue
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0):
                kinds = "a non-negative integer" if name == "ramp" else "a non-negative integer or None"
                raise InputError(f"LossSchedule.{name} must be {kinds}; got {value!r}")


def active_losses(iteration: int, schedule: LossSchedule | None = None) -> dict[str, float]:
    """The losses on at `iteration` (0-based) and their weights: {name: weight x ramp}.

    A loss with start s is on for iteration >= s; its factor is min(1, (iteration - s + 1) /
    ramp) (1 when ramp = 0). Losses that are off are left out, in `LOSS_NAMES` order.
    """
    schedule = LossSchedule() if schedule is None else schedule
    if not (isinstance(iteration, (int, np.integer)) and iteration >= 0):
        raise InputError(f"iteration must be a non-negative integer; got {iteration!r}")
    active = {}
    for name in LOSS_NAMES:
        start = getattr(schedule, name)
        if start is None or iteration < start:
            continue
        factor = 1.0 if schedule.ramp == 0 else min(1.0, (iteration - start + 1) / schedule.ramp)
        active[name] = getattr(schedule.weights, name) * factor
    return active
