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
