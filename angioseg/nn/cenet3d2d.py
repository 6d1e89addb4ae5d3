"""3D-2D CE-Net (Wang et al., "Coronary artery segmentation in angiographic videos utilizing
spatial-temporal information", BMC Medical Imaging 20:110, 2020), written from the paper.

The network takes a clip of ``2N + 1`` consecutive frames centred on the target frame and
returns the target frame's mask logits:

1. **3D input layer.** The clip ``(B, 2N+1, H, W)`` is viewed as a one-channel volume
   ``(B, 1, 2N+1, H, W)`` and convolved by ONE ``Conv3d(1, 16, kernel (2N+1)×3×3, padding
   (0, 1, 1), stride 1)``: the temporal axis has no padding, so it collapses to depth 1 and
   the output is 16 full-resolution 2-D feature maps ``(B, 16, H, W)`` (paper, Eq. 1, Fig. 2).
2. **Stem** (what replaces CE-Net's conv7×7-s2 + norm + ReLU). The paper: "another 2D
   convolutional layer followed by a 2D max pooling layer is inserted right after the input 3D
   layer, to adjust the channel number as well as reducing the resolution of the feature maps
   to 1/2, to fit the dimensions of the first encoder module". Our reading: the 2-D layer
   produces exactly what the 2-D CE-Net's first convolution produces — ``c0`` (64 at width 1)
   channels at half resolution — so it takes that layer's place and everything after it
   (ResNet max-pool s2, layers 1-4 at strides 4-32, DAC, RMP, decoder, head) is unchanged, as
   the paper calls the rest "analogous to 2D CE-Net" and keeps output = input resolution. The
   stem is ``Conv2d(16, c0, 3×3, stride 1, padding 1, no bias) + InstanceNorm + ReLU +
   MaxPool2d(2)`` (run as norm, max-pool, ReLU: identical, since ReLU is monotone, and 4×
   cheaper). There is no norm or activation between the 3D layer and this convolution (the
   paper names none). The paper states neither the 2-D kernel size (we take 3×3, "fused by a 2D
   convolutional layer" suggests a spatial kernel rather than 1×1) nor the pooling window
   (we take 2×2, stride 2, which halves exactly).
3. **Normalisation.** Instance normalisation replaces batch normalisation in the encoder and
   the decoder (paper, "Experimental results"); ``norm="batch"`` is still allowed.

The paper's argument that a 2-D network is a special case (Conv3d weights zero except the
centre temporal slice) is provided as `centre_slice_2d_model`: a per-frame 2-D model whose
first layer is ``Conv2d(1, 16, 3×3)`` holding the centre slice, sharing every other module.

Clips for a whole run come from `make_clips`, which repeats the first and last frame N times
(the paper pads its sequences the same way).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from angioseg.errors import InputError
from angioseg.nn.cenet import SIZE_MULTIPLE, CENet
from angioseg.nn.layers import check_input, check_norm, init_weights, make_norm, pad_to_multiple, scaled_channels

#: Channels of the 3D input layer's output (paper, Fig. 2).
TEMPORAL_CHANNELS = 16


def make_clips(frames: torch.Tensor, radius: int) -> torch.Tensor:
    """Stack every frame with its ``radius`` neighbours on each side.

    Args:
        frames: ``(T, H, W)`` frames of one run (T ≥ 1).
        radius: N ≥ 0.
    Returns:
        ``(T, 2N+1, H, W)``: clip ``t`` is ``frames[clamp(t-N .. t+N, 0, T-1)]``, so the first
        and last frames are repeated N times at the ends (e.g. T = 4, N = 2: clip 0 uses
        frames 0, 0, 0, 1, 2 and clip 3 uses 1, 2, 3, 3, 3). A view is not possible; the
        result is a new tensor of the frames' dtype and device.
    """
    if not isinstance(frames, torch.Tensor):
        raise InputError(f"make_clips expects a torch.Tensor, not {type(frames).__name__}")
    if frames.ndim != 3 or frames.shape[0] < 1:
        raise InputError(f"make_clips expects (T, H, W) frames with T >= 1, got shape {tuple(frames.shape)}")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise InputError(f"radius must be a non-negative integer, not {radius!r}")
    t = int(frames.shape[0])
    offsets = torch.arange(-radius, radius + 1, device=frames.device)
    index = (torch.arange(t, device=frames.device)[:, None] + offsets[None, :]).clamp(0, t - 1)
    return frames[index]


class CENet3D2D(nn.Module):
    """3D-2D CE-Net: a (2N+1)×3×3 Conv3d input layer fused into a 2-D CE-Net (module docstring).

    Args (keyword-only):
        temporal_radius: N (the paper uses 1 or 2; 2 was best); the clip has 2N+1 frames.
        num_classes: output logit channels.
        encoder: ``"resnet34"`` (paper) or ``"resnet18"``.
        width: channel multiplier, 1.0 (``"paper"``), ``"lite"`` or a positive number.
        norm: ``"instance"`` (paper) or ``"batch"``.
        temporal_channels: output channels of the 3D input layer (16 in the paper).

    ``forward(x)``: ``(B, 2N+1, H, W)`` clips (frame N is the target) -> ``(B, num_classes, H,
    W)`` logits of the centre frame, for any H, W ≥ 1 (reflect-padded to a multiple of 32
    inside, cropped back).
    """

    def __init__(
        self,
        *,
        temporal_radius: int = 2,
        num_classes: int = 1,
        encoder: str = "resnet34",
        width: float | str = 1.0,
        norm: str = "instance",
        temporal_channels: int = TEMPORAL_CHANNELS,
    ) -> None:
        super().__init__()
        if isinstance(temporal_radius, bool) or not isinstance(temporal_radius, int) or temporal_radius < 0:
            raise InputError(f"temporal_radius must be a non-negative integer (1 or 2 in the paper), not {temporal_radius!r}")
        if isinstance(temporal_channels, bool) or not isinstance(temporal_channels, int) or temporal_channels < 1:
            raise InputError(f"temporal_channels must be a positive integer, not {temporal_channels!r}")
        check_norm(norm)
        self.temporal_radius = temporal_radius
        self.clip_length = 2 * temporal_radius + 1
        self.num_classes = num_classes
        self.temporal_conv = nn.Conv3d(1, temporal_channels, (self.clip_length, 3, 3), padding=(0, 1, 1))
        c0 = scaled_channels(64, width)
        stem = nn.Sequential(
            nn.Conv2d(temporal_channels, c0, 3, padding=1, bias=False),
            make_norm(norm, c0),
            nn.MaxPool2d(2),  # max-pool before ReLU: the same result (both are monotone), 4× less ReLU work
            nn.ReLU(inplace=True),
        )
        init_weights(stem)
        init_weights(self.temporal_conv)
        self.body = CENet(
            in_channels=temporal_channels,
            num_classes=num_classes,
            encoder=encoder,
            width=width,
            norm=norm,
            stem=stem,
        )

    def fuse(self, clips: torch.Tensor) -> torch.Tensor:
        """The 3D input layer: ``(B, 2N+1, H, W)`` -> ``(B, 16, H, W)``.

        Mathematically ``temporal_conv(clips.unsqueeze(1)).squeeze(2)`` — the Conv3d over the
        ``(B, 1, 2N+1, H, W)`` volume. Because the kernel spans the whole clip without temporal
        padding, that equals a 2-D convolution of the clip's 2N+1 frames as channels with the
        same weights viewed as ``(16, 2N+1, 3, 3)``, which is what runs here: it is twice as
        fast on CPU (and more with channels-last), exports to ONNX as a plain Conv, and keeps
        the parameters (and state-dict) of the paper's Conv3d. `fuse_conv3d` computes the
        literal Conv3d (the tests check both agree).
        """
        weight = self.temporal_conv.weight.flatten(1, 2)
        return F.conv2d(clips, weight, self.temporal_conv.bias, padding=1)

    def fuse_conv3d(self, clips: torch.Tensor) -> torch.Tensor:
        """`fuse` computed literally with ``nn.Conv3d`` on ``(B, 1, 2N+1, H, W)``: ``(B, 16, H, W)``."""
        return self.temporal_conv(clips.unsqueeze(1)).squeeze(2)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2N+1, H, W)`` with H, W multiples of 32 -> ``(B, num_classes, H, W)`` logits."""
        return self.body.forward_padded(self.fuse(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.clip_length, "CENet3D2D")
        h, w = x.shape[-2], x.shape[-1]
        y = self.forward_padded(pad_to_multiple(x, SIZE_MULTIPLE))
        return y[..., :h, :w]

    def as_2d(self) -> CentreSlice2D:
        """The per-frame 2-D model made of the centre temporal slice; see `centre_slice_2d_model`."""
        return centre_slice_2d_model(self)


class CentreSlice2D(nn.Module):
    """Per-frame 2-D counterpart of a `CENet3D2D`: ``Conv2d(1, 16, 3×3)`` + the same body.

    The first convolution holds a copy of the Conv3d's centre temporal slice and its bias; the
    body (stem, encoder, DAC, RMP, decoder, head) is the 3D-2D model's own module (shared, not
    copied). When the Conv3d's other temporal slices are zero, ``CentreSlice2D(frame)`` equals
    ``CENet3D2D(clip)`` for any clip whose centre frame is ``frame`` (the paper's argument that
    a 2-D network lies in the 3D-2D parameter space).

    ``forward(x)``: ``(B, 1, H, W)`` -> ``(B, num_classes, H, W)`` logits, any H, W ≥ 1.
    """

    def __init__(self, model: CENet3D2D) -> None:
        super().__init__()
        conv3d = model.temporal_conv
        self.first_conv = nn.Conv2d(1, conv3d.out_channels, 3, padding=1, bias=conv3d.bias is not None)
        with torch.no_grad():
            self.first_conv.weight.copy_(conv3d.weight[:, :, model.temporal_radius])
            if conv3d.bias is not None:
                self.first_conv.bias.copy_(conv3d.bias)
        self.body = model.body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, 1, "CentreSlice2D")
        h, w = x.shape[-2], x.shape[-1]
        y = self.body.forward_padded(self.first_conv(pad_to_multiple(x, SIZE_MULTIPLE)))
        return y[..., :h, :w]


def centre_slice_2d_model(model: CENet3D2D) -> CentreSlice2D:
    """A per-frame 2-D model equal to ``model`` when its Conv3d is zero off the centre slice.

    Returns a `CentreSlice2D` whose ``Conv2d(1, 16, 3×3)`` holds ``model.temporal_conv``'s
    centre temporal slice (``weight[:, :, N]``) and bias, and which shares every other module
    with ``model`` (training one trains the other, except the first convolution).
    """
    if not isinstance(model, CENet3D2D):
        raise InputError(f"centre_slice_2d_model expects a CENet3D2D, not {type(model).__name__}")
    return CentreSlice2D(model)


class FoldedInputLayer(nn.Module):
    """The 3D input layer and the stem convolution of a `CENet3D2D` folded into one 5×5 conv.

    Both layers are linear with nothing in between, so for pixels whose 3×3 stem window lies
    inside the frame::

        stem(temporal(x)) = K ⋆ x + β,   K[o, i, s] = Σ_c Σ_{q + r = s} W2[o, c, q] W1[c, i, r],
                                        β[o] = Σ_c Σ_q W2[o, c, q] b1[c]

    (⋆ cross-correlation, q, r ∈ {-1, 0, 1}², s ∈ {-2..2}²; W1 (16, 2N+1, 3, 3) and b1 are the
    temporal layer viewed as a 2-D conv, W2 (c0, 16, 3, 3) the stem conv). On the outermost
    one-pixel ring the stem conv sees its zero padding instead of the temporal layer's output,
    so those rows and columns are recomputed with the two original convolutions on 3-pixel
    strips: the result equals the unfolded layers everywhere (to float rounding) for about
    half the arithmetic at full resolution (5·c0·25 vs 5·16·9 + 16·c0·9 multiply-adds per pixel).

    Shapes: ``(B, 2N+1, H, W)`` -> ``(B, c0, H, W)``.
    """

    def __init__(self, temporal_weight: torch.Tensor, temporal_bias: torch.Tensor | None, stem_weight: torch.Tensor) -> None:
        super().__init__()
        w1 = temporal_weight.detach().double()  # (16, C, 3, 3)
        w2 = stem_weight.detach().double()  # (c0, 16, 3, 3)
        kernel = torch.zeros(w2.shape[0], w1.shape[1], 5, 5, dtype=torch.float64)
        for qy in range(3):
            for qx in range(3):
                # output offset s = q + r: kernel index (qy + ry, qx + rx) in the 5×5 window
                kernel[:, :, qy : qy + 3, qx : qx + 3] += torch.einsum("oc,cikl->oikl", w2[:, :, qy, qx], w1)
        b1 = temporal_bias.detach().double() if temporal_bias is not None else torch.zeros(w1.shape[0], dtype=torch.float64)
        self.register_buffer("kernel", kernel.float())
        self.register_buffer("bias", torch.einsum("ocyx,c->o", w2, b1).float())
        self.register_buffer("temporal_weight", temporal_weight.detach().clone())
        self.register_buffer("temporal_bias", b1.float())
        self.register_buffer("stem_weight", stem_weight.detach().clone())

    def unfolded(self, x: torch.Tensor) -> torch.Tensor:
        """The two original convolutions (used on the border strips)."""
        return F.conv2d(F.conv2d(x, self.temporal_weight, self.temporal_bias, padding=1), self.stem_weight, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] < 3 or x.shape[-1] < 3:
            return self.unfolded(x)
        y = F.conv2d(x, self.kernel, self.bias, padding=2)
        y[..., :1, :] = self.unfolded(x[..., :3, :])[..., :1, :]
        y[..., -1:, :] = self.unfolded(x[..., -3:, :])[..., -1:, :]
        y[..., :, :1] = self.unfolded(x[..., :, :3])[..., :, :1]
        y[..., :, -1:] = self.unfolded(x[..., :, -3:])[..., :, -1:]
        return y


class FoldedCENet3D2D(nn.Module):
    """Inference form of a trained `CENet3D2D`: its input layers folded (`FoldedInputLayer`).

    Same inputs, outputs and results (to float rounding) as the model it was made from, about
    a fifth faster on CPU at 512² (`benchmarks/inference.py`). The body is a copy, so the
    original model is left untouched; not meant for training.
    """

    def __init__(self, model: CENet3D2D) -> None:
        super().__init__()
        import copy

        stem_conv = model.body.encoder.stem[0]
        if not isinstance(stem_conv, nn.Conv2d) or stem_conv.bias is not None:
            raise InputError("FoldedCENet3D2D expects the CENet3D2D stem (a bias-free Conv2d first)")
        self.clip_length = model.clip_length
        self.temporal_radius = model.temporal_radius
        self.input_layer = FoldedInputLayer(model.temporal_conv.weight.flatten(1, 2), model.temporal_conv.bias, stem_conv.weight)
        self.body = copy.deepcopy(model.body)
        self.body.encoder.stem[0] = nn.Identity()

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2N+1, H, W)`` with H, W multiples of 32 -> ``(B, num_classes, H, W)`` logits."""
        return self.body.forward_padded(self.input_layer(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.clip_length, "FoldedCENet3D2D")
        h, w = x.shape[-2], x.shape[-1]
        return self.forward_padded(pad_to_multiple(x, SIZE_MULTIPLE))[..., :h, :w]


def fold_for_inference(model: nn.Module) -> nn.Module:
    """`FoldedCENet3D2D(model)` for a `CENet3D2D` in eval mode, any other model unchanged."""
    if isinstance(model, CENet3D2D):
        return FoldedCENet3D2D(model).eval()
    return model
