"""DSA-LTDNet (liver-tumour segmentation on the key frame of a DSA run) and its baselines,
written from the papers' descriptions.

Sub-networks (the paper's Fig. 2, Sec. 2.2-2.4), each a U-Net (`angioseg.nn.unet.UNet`):

- **TDL** (temporal difference learning): the 10 consecutive frames ending at the key frame,
  ``(B, 10, H, W)`` -> a one-channel temporal-difference image ``(B, 1, H, W)`` (linear output,
  trained against the frame difference FD with L1);
- **LRS** (liver region segmentation): the key frame ``(B, 1, H, W)`` -> liver logit ``(B, 1, H, W)``;
- **FFS** (final fusion segmentation): the key frame concatenated with a motion image (TD, FD,
  background subtraction or optical flow) and/or the predicted liver mask σ(LRS logit) ->
  tumour logit ``(B, 1, H, W)``.

`LTDNet` composes them as `LTDNetConfig` says: ``motion`` ∈ none | fd | bs | of | tdl picks the
FFS's second input (``tdl`` adds the TDL sub-network), ``liver`` adds the LRS sub-network,
``backbone`` ∈ unet | attention-unet | unet++ picks the FFS network (the key-frame baselines
are ``motion="none", liver=False``). The liver mask given to the FFS is the soft probability
σ(z_LRS), so the tumour loss trains the LRS too (the paper co-trains the three networks).

Baselines on the key frame alone:

- `AttentionUNet` (Oktay et al. 2018): a U-Net whose skip features x pass an additive
  attention gate driven by the coarser decoder feature g before concatenation::

      q = ψᵀ ReLU(W_xᵀ x̃ + W_gᵀ g + b_g) + b_ψ,   α = σ(q),   x̂ = up(α) ⊙ x

  with W_x a 1×1 convolution of stride 2 (x brought to g's grid), W_g and ψ 1×1
  convolutions, F_int = channels(x) / 2 and α resampled bilinearly to x's grid.
- `UNetPlusPlus` (Zhou et al. 2018): nested, dense skip pathways::

      X^{i,0} = H(pool(X^{i−1,0})),   X^{i,j} = H([X^{i,0}, …, X^{i,j−1}, up(X^{i+1,j−1})])  (j ≥ 1)

  H = two 3×3 convolutions + norm + ReLU, up = 2×2 transposed convolution, logits from
  X^{0,L−1} by a 1×1 convolution (no deep supervision: the paper's "fast" single-head mode).

Widths: ``"lite"`` = 8 channels at the first level (8..128 over depth 5; about 0.49 M
parameters per U-Net; trains at about 0.5 s per batch of 8 at 256² on one CPU core),
``"paper"`` = 64 (the original U-Net's). Layer rule: torch, numpy and `angioseg.errors` only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from angioseg.errors import InputError
from angioseg.nn.layers import check_input, check_norm, init_weights, pad_to_multiple
from angioseg.nn.losses import bce_dice_loss
from angioseg.nn.unet import DoubleConv, UNet

#: First-level channels of the named widths.
WIDTHS = {"lite": 8, "paper": 64}
BACKBONES = ("unet", "attention-unet", "unet++")
#: Motion inputs of the FFS and their channel counts.
MOTIONS = {"none": 0, "fd": 1, "bs": 1, "of": 2, "tdl": 1}
#: The paper's loss weights: a (BCE vs Dice), λ0 (TDL), λ1 (LRS).
PAPER_A = 0.5
PAPER_LAMBDA_TDL = 0.1
PAPER_LAMBDA_LRS = 1.0


def base_channels(width: str | int) -> int:
    """First-level channels: ``"lite"`` 8, ``"paper"`` 64, or a positive integer as given."""
    if isinstance(width, str):
        if width not in WIDTHS:
            raise InputError(f"width must be one of {', '.join(WIDTHS)} or a positive integer, not {width!r}")
        return WIDTHS[width]
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise InputError(f"width must be one of {', '.join(WIDTHS)} or a positive integer, not {width!r}")
    return width


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, not {value!r}")
    return value


class AttentionGate(nn.Module):
    """Additive attention gate (module docstring). ``x (B, Fx, H, W)``, ``g (B, Fg, H/2, W/2)``
    -> ``(B, Fx, H, W)``; H, W even."""

    def __init__(self, x_channels: int, g_channels: int, inter_channels: int) -> None:
        super().__init__()
        self.theta_x = nn.Conv2d(x_channels, inter_channels, 1, stride=2, bias=False)
        self.phi_g = nn.Conv2d(g_channels, inter_channels, 1, bias=True)
        self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)

    def coefficients(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """α on x's grid, ``(B, 1, H, W)`` in (0, 1)."""
        q = self.psi(F.relu(self.theta_x(x) + self.phi_g(g)))
        return F.interpolate(torch.sigmoid(q), size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * self.coefficients(x, g)


class AttentionUNet(UNet):
    """U-Net with attention-gated skips (Oktay et al. 2018; module docstring): `UNet` whose
    decoder multiplies each skip by the gate's coefficients before concatenating it.

    Same options and any-size handling as `UNet`: ``(B, in_channels, H, W) -> (B, num_classes, H, W)``.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 1, base: int = 8, depth: int = 5,
                 norm: str = "batch") -> None:
        super().__init__(in_channels=in_channels, num_classes=num_classes, base=base, depth=depth, norm=norm)
        channels = [base * 2**i for i in range(depth)]
        self.gates = nn.ModuleList(AttentionGate(c, 2 * c, max(1, c // 2)) for c in reversed(channels[:-1]))
        init_weights(self.gates)

    def merge_skip(self, level: int, y: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return super().merge_skip(level, y, self.gates[level](skip, y))


class UNetPlusPlus(nn.Module):
    """U-Net++ with nested dense skips (Zhou et al. 2018; module docstring).

    Same options and any-size handling as `UNet`: ``(B, in_channels, H, W) -> (B, num_classes, H, W)``.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 1, base: int = 8, depth: int = 5,
                 norm: str = "batch") -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("base", base), ("depth", depth)):
            _positive(name, value)
        check_norm(norm)
        self.in_channels = in_channels
        self.depth = depth
        self.size_multiple = 2 ** (depth - 1)
        channels = [base * 2**i for i in range(depth)]
        # nodes[f"{i}_{j}"] = H of X^{i,j}; ups[f"{i}_{j}"] upsamples X^{i+1,j-1} for X^{i,j}
        self.nodes = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        for i in range(depth):
            self.nodes[f"{i}_0"] = DoubleConv(in_channels if i == 0 else channels[i - 1], channels[i], norm=norm)
        for j in range(1, depth):
            for i in range(depth - j):
                self.ups[f"{i}_{j}"] = nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2)
                self.nodes[f"{i}_{j}"] = DoubleConv(channels[i] * (j + 1), channels[i], norm=norm)
        self.head = nn.Conv2d(channels[0], num_classes, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, "UNetPlusPlus")
        h, w = x.shape[-2], x.shape[-1]
        y = pad_to_multiple(x, self.size_multiple)
        grid: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(self.depth):
            y = self.nodes[f"{i}_0"](y if i == 0 else F.max_pool2d(y, 2))
            grid[(i, 0)] = y
        for j in range(1, self.depth):
            for i in range(self.depth - j):
                parts = [grid[(i, m)] for m in range(j)] + [self.ups[f"{i}_{j}"](grid[(i + 1, j - 1)])]
                grid[(i, j)] = self.nodes[f"{i}_{j}"](torch.cat(parts, dim=1))
        return self.head(grid[(0, self.depth - 1)])[..., :h, :w]


def build_backbone(name: str, *, in_channels: int, base: int, depth: int, norm: str = "batch") -> nn.Module:
    """A one-logit segmentation network by name: ``unet`` | ``attention-unet`` | ``unet++``."""
    classes = {"unet": UNet, "attention-unet": AttentionUNet, "unet++": UNetPlusPlus}
    if name not in classes:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return classes[name](in_channels=in_channels, num_classes=1, base=base, depth=depth, norm=norm)


@dataclass(frozen=True)
class LTDNetConfig:
    """What an `LTDNet` is (stored in its weights file).

    Attributes:
        backbone: the FFS network, ``unet`` | ``attention-unet`` | ``unet++`` (TDL and LRS are U-Nets).
        motion: the FFS's second input: ``none`` | ``fd`` (frame difference) | ``bs`` (background
            subtraction) | ``of`` (2 optical-flow channels) | ``tdl`` (the learned TD).
        liver: whether the LRS sub-network runs and its liver mask is an FFS input.
        base: first-level channels (`base_channels`: "lite" 8, "paper" 64).
        depth: resolution levels of every sub-network.
        norm: ``batch`` or ``instance``.
        tdl_frames: frames the TDL reads (10 in the paper).
    """

    backbone: str = "unet"
    motion: str = "none"
    liver: bool = False
    base: int = 8
    depth: int = 5
    norm: str = "batch"
    tdl_frames: int = 10

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise InputError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if self.motion not in MOTIONS:
            raise InputError(f"unknown motion input {self.motion!r}; choose one of {', '.join(MOTIONS)}")
        if not isinstance(self.liver, bool):
            raise InputError(f"liver must be true or false, not {self.liver!r}")
        for name in ("base", "depth", "tdl_frames"):
            _positive(name, getattr(self, name))
        check_norm(self.norm)

    @property
    def motion_channels(self) -> int:
        return MOTIONS[self.motion]

    @property
    def ffs_channels(self) -> int:
        """FFS input channels: key frame + motion + liver mask."""
        return 1 + self.motion_channels + int(self.liver)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LTDNetConfig":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


#: The share of tumour pixels the FFS head starts from (`prior_head`).
TUMOUR_PRIOR = 0.01


def prior_head(head: nn.Conv2d, prior: float) -> None:
    """Start a 1-channel logit head at p = `prior` everywhere: weights × 0.1 and bias
    log(prior / (1 − prior)) (RetinaNet's prior initialisation).

    With the default initialisation the FFS logits start with a random offset of ±2-3 (measured
    over seeds); where it is positive, every pixel starts at p ≈ 0.8, the cross-entropy of the
    99.9 % background pixels drives the network to p ≈ 0 everywhere, and with tumours at 0.08 %
    of the pixels it stays there (the "no tumour" minimum, where the Dice gradient ∝ p(1 − p)
    vanishes). A common start makes every variant of Tables 1-2 begin alike."""
    with torch.no_grad():
        head.weight.mul_(0.1)
        if head.bias is not None:
            head.bias.fill_(math.log(prior / (1.0 - prior)))


class LTDNet(nn.Module):
    """DSA-LTDNet and its ablations (module docstring).

    ``forward(key, *, window=None, motion=None)``:
        key: ``(B, 1, H, W)`` the key frame.
        window: ``(B, tdl_frames, H, W)`` frames k−9 .. k in time order (``motion="tdl"`` only).
        motion: ``(B, C, H, W)`` the classic motion image, C = 1 (fd, bs) or 2 (of).
    Returns a dict of ``(B, 1, H, W)`` tensors: ``"tumour"`` logits; ``"liver"`` logits (with
    ``liver``); ``"td"`` the learned temporal difference (with ``motion="tdl"``).
    """

    def __init__(self, config: LTDNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or LTDNetConfig()
        c = self.config
        self.ffs = build_backbone(c.backbone, in_channels=c.ffs_channels, base=c.base, depth=c.depth, norm=c.norm)
        prior_head(self.ffs.head, TUMOUR_PRIOR)
        self.tdl = UNet(in_channels=c.tdl_frames, num_classes=1, base=c.base, depth=c.depth, norm=c.norm) if c.motion == "tdl" else None
        self.lrs = UNet(in_channels=1, num_classes=1, base=c.base, depth=c.depth, norm=c.norm) if c.liver else None

    def forward(self, key: torch.Tensor, *, window: torch.Tensor | None = None,
                motion: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_input(key, 1, "LTDNet (key frame)")
        c = self.config
        out: dict[str, torch.Tensor] = {}
        parts = [key]
        if c.motion == "tdl":
            if window is None:
                raise InputError(f"this LTDNet reads the {c.tdl_frames} frames ending at the key frame; pass window=")
            check_input(window, c.tdl_frames, "LTDNet (TDL window)")
            assert self.tdl is not None
            out["td"] = self.tdl(window)
            parts.append(out["td"])
        elif c.motion != "none":
            if motion is None:
                raise InputError(f"this LTDNet reads the key frame and a {c.motion} image; pass motion=")
            check_input(motion, c.motion_channels, f"LTDNet ({c.motion} input)")
            parts.append(motion)
        if self.lrs is not None:
            out["liver"] = self.lrs(key)
            parts.append(torch.sigmoid(out["liver"]))
        for part in parts[1:]:
            if part.shape[0] != key.shape[0] or part.shape[-2:] != key.shape[-2:]:
                raise InputError(f"LTDNet inputs disagree in batch or size: {tuple(key.shape)} and {tuple(part.shape)}")
        out["tumour"] = self.ffs(torch.cat(parts, dim=1))
        return out


def tdl_loss(td: torch.Tensor, fd: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``L_TDL = mean |I_TDL − I_FD|`` (L1 over batch and pixels); shapes equal."""
    if td.shape != fd.shape:
        raise InputError(f"tdl_loss: TD {tuple(td.shape)} and FD {tuple(fd.shape)} differ in shape")
    return F.l1_loss(td, fd.to(td.dtype))


def ltdnet_loss(outputs: dict[str, torch.Tensor], *, tumour: torch.Tensor, liver: torch.Tensor | None = None,
                fd: torch.Tensor | None = None, a: float = PAPER_A, lambda_tdl: float = PAPER_LAMBDA_TDL,
                lambda_lrs: float = PAPER_LAMBDA_LRS) -> dict[str, torch.Tensor]:
    """Eq. 1-4::

        L_seg   = a·BCE(σ(z_tumour), g_tumour) + (1 − a)·Dice      (Eq. 3)
        L_LRS   = a·BCE(σ(z_liver), g_liver) + (1 − a)·Dice        (Eq. 2)
        L_TDL   = mean |TD − FD|                                   (Eq. 1)
        L_total = λ0·L_TDL + λ1·L_LRS + L_seg                      (Eq. 4; a, λ0, λ1 = 0.5, 0.1, 1)

    A term whose output is absent from `outputs` (no LRS, no TDL) or whose weight is 0 is left
    out (λ0 = 0: the TDL learns from L_seg alone, "without supervision"). Targets are
    ``(B, 1, H, W)`` in [0, 1]; `liver` and `fd` are needed when their term is used.
    Returns ``{"total", "seg", and "lrs" / "tdl" when used}``.
    """
    losses = {"seg": bce_dice_loss(outputs["tumour"], tumour, a=a)}
    total = losses["seg"]
    if "liver" in outputs and lambda_lrs:
        if liver is None:
            raise InputError("ltdnet_loss: the liver target is needed for the LRS term")
        losses["lrs"] = bce_dice_loss(outputs["liver"], liver, a=a)
        total = total + lambda_lrs * losses["lrs"]
    if "td" in outputs and lambda_tdl:
        if fd is None:
            raise InputError("ltdnet_loss: the frame difference is needed for the TDL term")
        losses["tdl"] = tdl_loss(outputs["td"], fd)
        total = total + lambda_tdl * losses["tdl"]
    losses["total"] = total
    return losses
