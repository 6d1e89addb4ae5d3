"""Training losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from angioseg.errors import InputError


def dice_loss(logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss (the loss of both the sequence CE-Net and the 3D-2D CE-Net papers).

    For each class ``c``, with ``p`` the predicted probabilities and ``g`` the target, summed
    over the batch and all pixels::

        L_c = 1 - (2 Σ p·g + eps) / (Σ p + Σ g + eps)

    and the loss is the mean of ``L_c`` over the classes. ``p = sigmoid(logits)`` when there is
    one channel (vessel vs background), ``softmax(logits, dim=1)`` otherwise. ``eps`` keeps the
    loss defined (0) when both prediction and target are empty.

    Args:
        logits: ``(B, C, H, W)`` raw network outputs.
        target: ``(B, C, H, W)`` values in [0, 1] (one-hot for C > 1), or for C > 1 also
            ``(B, H, W)`` integer class indices; for C = 1 also ``(B, H, W)``.
        eps: smoothing term, ≥ 0.
    Returns:
        A scalar tensor in [0, 1].
    """
    if logits.ndim != 4:
        raise InputError(f"dice_loss expects (B, C, H, W) logits, got shape {tuple(logits.shape)}")
    if eps < 0:
        raise InputError(f"eps must be >= 0, not {eps!r}")
    classes = int(logits.shape[1])
    if target.ndim == 3:
        if classes == 1:
            target = target.unsqueeze(1)
        else:
            target = F.one_hot(target.long(), classes).permute(0, 3, 1, 2)
    if target.shape != logits.shape:
        raise InputError(f"dice_loss: target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
    probs = torch.sigmoid(logits) if classes == 1 else torch.softmax(logits, dim=1)
    target = target.to(probs.dtype)
    dims = (0, 2, 3)
    intersection = (probs * target).sum(dims)
    total = probs.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * intersection + eps) / (total + eps)).mean()


def bootstrapped_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, fraction: float = 1.0) -> torch.Tensor:
    """Bootstrapped cross-entropy (Wu et al. 2016; STCN's segmentation loss).

    The per-pixel cross-entropy ``-log softmax(logits)[target]`` is computed everywhere and
    only the ``fraction`` largest values (the hardest pixels, at least one) are averaged;
    fraction 1 is the plain mean cross-entropy.

    Args:
        logits: ``(B, C, H, W)`` class logits.
        target: ``(B, H, W)`` integer class indices in [0, C).
        fraction: share of pixels kept, in (0, 1].
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise InputError(f"bootstrapped_cross_entropy: logits {tuple(logits.shape)} and target {tuple(target.shape)} do not fit")
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must lie in (0, 1]; got {fraction}")
    pixel_loss = F.cross_entropy(logits, target.long(), reduction="none").flatten()
    if fraction >= 1.0:
        return pixel_loss.mean()
    count = max(1, int(round(fraction * pixel_loss.numel())))
    return torch.topk(pixel_loss, count, sorted=False).values.mean()


def _sample(indices: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """``count`` of the 1-D ``indices`` without replacement (all of them, in order, when count = len)."""
    if count >= indices.numel():
        return indices
    order = torch.randperm(indices.numel(), generator=generator, device="cpu")[:count].to(indices.device)
    return indices[order]


def spatiotemporal_contrastive_loss(
    anchor: torch.Tensor,
    anchor_labels: torch.Tensor,
    keys: torch.Tensor,
    key_labels: torch.Tensor,
    *,
    temperature: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The FSVOS paper's object-aware spatio-temporal contrastive loss (Sec. 3.3, Eq. 11-13).

    ``anchor (P, h, w)``: projected, L2-normalised features of the query frame; ``keys
    (K, P, h, w)``: those of the K memory frames; ``*_labels``: object ids at feature
    resolution (background 0 counts as an object). For the objects present in both the anchor
    and the keys, n = min over them of min(count in the anchor, count in the keys): the
    object with the fewest features sets the sample size (Eq. 11). Per object k: n anchors z_i
    sampled from the anchor's k-features, the positive set P_k = n
    samples of the keys' k-features, the negative set N_k = n samples of each other object's
    key features. Then (Eq. 12-13)::

        L = 1/|Γ| Σ_i 1/|P_k| Σ_{j+ ∈ P_k} -log( e^{z_i·z_j+/τ} / (e^{z_i·z_j+/τ} + Σ_{j- ∈ N_k} e^{z_i·z_j-/τ}) )

    Returns 0 (with a gradient path) when fewer than two objects are shared.
    """
    if anchor.ndim != 3 or keys.ndim != 4 or anchor.shape[0] != keys.shape[1]:
        raise InputError(f"contrastive loss: anchor (P, h, w) and keys (K, P, h, w) expected; got {tuple(anchor.shape)}, {tuple(keys.shape)}")
    if anchor_labels.shape != anchor.shape[1:] or key_labels.shape != (keys.shape[0], *keys.shape[2:]):
        raise InputError("contrastive loss: labels must have the features' spatial shape")
    if temperature <= 0:
        raise InputError(f"temperature must be positive; got {temperature}")
    dim = anchor.shape[0]
    anchor_flat = anchor.reshape(dim, -1).t()  # (h·w, P)
    key_flat = keys.permute(0, 2, 3, 1).reshape(-1, dim)  # (K·h·w, P)
    a_labels, k_labels = anchor_labels.reshape(-1), key_labels.reshape(-1)
    objects = [int(o) for o in torch.unique(a_labels) if bool((k_labels == o).any())]
    if len(objects) < 2:
        return anchor.sum() * 0.0
    a_index = {o: torch.nonzero(a_labels == o).flatten() for o in objects}
    k_index = {o: torch.nonzero(k_labels == o).flatten() for o in objects}
    n = min(min(a_index[o].numel(), k_index[o].numel()) for o in objects)
    anchors = {o: anchor_flat[_sample(a_index[o], n, generator)] for o in objects}
    samples = {o: key_flat[_sample(k_index[o], n, generator)] for o in objects}
    losses = []
    for obj in objects:
        z = anchors[obj]  # (n, P)
        positive = z @ samples[obj].t() / temperature  # (n, n): anchor i, positive j+
        negatives = torch.cat([samples[o] for o in objects if o != obj])
        negative = torch.logsumexp(z @ negatives.t() / temperature, dim=1, keepdim=True)  # (n, 1)
        # -log(e^p / (e^p + Σ e^n)) = log(e^p + e^{logsumexp n}) - p
        losses.append((torch.logaddexp(positive, negative.expand_as(positive)) - positive).mean(dim=1))
    return torch.cat(losses).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, a: float = 0.5) -> torch.Tensor:
    """``a · BCE + (1 − a) · Dice`` of one-channel logits (DSA-LTDNet's Eq. 2-3, a = 0.5).

    With ``p = σ(z)`` and the target g in [0, 1] (soft targets allowed)::

        BCE  = mean over pixels of −[g log p + (1 − g) log(1 − p)]
        Dice = 1 − (2 Σ p·g + 1) / (Σ p + Σ g + 1)       (`dice_loss`, summed over the batch)

    Args:
        logits: ``(B, 1, H, W)``.
        target: ``(B, 1, H, W)`` (or ``(B, H, W)``) values in [0, 1].
        a: weight of the cross-entropy, in [0, 1].
    """
    if not 0.0 <= a <= 1.0:
        raise InputError(f"the BCE weight a must lie in [0, 1]; got {a}")
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise InputError(f"bce_dice_loss expects (B, 1, H, W) logits, got shape {tuple(logits.shape)}")
    if target.ndim == 3:
        target = target.unsqueeze(1)
    if target.shape != logits.shape:
        raise InputError(f"bce_dice_loss: target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
    target = target.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    return a * bce + (1.0 - a) * dice_loss(logits, target)
