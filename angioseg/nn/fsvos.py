"""The FSVOS memory network: STCN-style key/value encoders, local matching, decoder with skips.

Written from the FSVOS paper (Sec. 3.1-3.2, 4.1.3) and the STCN design it builds on:

* **Key (query) encoder**: a ResNet without its last stage (stride 16) on the grey frame;
  a 3×3 convolution projects its stride-16 feature to the key (``key_dim`` channels). Its
  stride-8 and stride-4 features are the decoder's skips. Every frame passes it once; a
  memory frame's key is its key as a query (keys are not object-specific).
* **Value encoder**: a ResNet-18 without its last stage on three channels per object — the
  frame, the object's mask and the union of the other objects' masks — fused with the key
  encoder's stride-16 feature of the same frame by two residual blocks into ``value_dim``
  channels.
* **Memory reading** (`angioseg.nn.matching`): L2 similarity, softmax affinity over the
  memory, global or local (k × k window around a reference point), readout per object.
* **Decoder**: the readout concatenated with the query's stride-16 feature, compressed by a
  residual block, upsampled twice with the stride-8 and stride-4 skips, one logit per object
  at stride 4, bilinear to full size.
* **Fine refinement** (ours, ``refine_channels`` > 0; not in the paper or STCN): a stride-4
  logit cannot place a 1-2 px guidewire, marker ring or distal branch, so the decoder goes on
  to stride 2 with the key encoder's stem feature and the frame itself as skip, and adds a
  full-size residual to the upsampled stride-4 logit:
  ``l = up(l₄) + shuffle(conv(Block(skip(f₂, unshuffle(frame)) + up(W x₄))))``. That last
  ``conv`` starts at zero, so a network grown from weights without the stage starts
  exactly where they left off. Object-independent terms (the stem skip) are computed
  once per frame, not once per object.
* **Soft aggregation** of the objects (STM/STCN): with p_o = sigmoid(logit_o) and the
  background p_0 = Π_o (1 - p_o), the class logits are log(p / (1 - p)) (clamped) and the
  class probabilities their softmax over {background, objects}.
* **Projection head** (Sec. 3.3): 1×1 conv, ReLU, 1×1 conv on the key encoder's stride-16
  feature; only the training's contrastive loss uses it.

Widths: "paper" = ResNet-50 key encoder (1024-channel stride-16 feature), ResNet-18 value
encoder, key 64, value 512 (STCN's); "lite" = ResNet-18 at width 0.25 for keys, ResNet-18 at
width 0.125 for values, key 32, value 64, made for 2 CPU cores (`benchmarks/fsvos.py`).

Frames enter as ``(B, 1, H, W)`` in [0, 1] and are standardised per frame inside; H and W
are padded to multiples of 16 inside and cropped back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from angioseg.errors import InputError
from angioseg.nn.layers import init_weights
from angioseg.nn.matching import MatchingConfig, read_memory
from angioseg.nn.resnet import ResNetEncoder

STRIDE = 16


@dataclass(frozen=True)
class FSVOSConfig:
    """Architecture of an `FSVOSNet` (stored in its weights file)."""

    key_encoder: str = "resnet18"
    key_width: float = 0.25
    value_width: float = 0.125
    key_dim: int = 32
    value_dim: int = 64
    decoder_channels: tuple[int, int] = (32, 16)
    projection_dim: int = 32
    #: Channels of the stride-2 / full-size refinement (0: none, the paper's stride-4 output).
    refine_channels: int = 0

    @classmethod
    def preset(cls, name: str) -> "FSVOSConfig":
        """"lite" (CPU, with the fine refinement) or "paper" (ResNet-50 / ResNet-18, key 64,
        value 512, stride-4 output as STCN's)."""
        if name == "lite":
            return cls(refine_channels=8)
        if name == "paper":
            return cls(key_encoder="resnet50", key_width=1.0, value_width=1.0, key_dim=64, value_dim=512,
                       decoder_channels=(256, 256), projection_dim=128)
        raise InputError(f"FSVOS width must be 'lite' or 'paper'; got {name!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decoder_channels"] = list(self.decoder_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FSVOSConfig":
        data = dict(data)
        data["decoder_channels"] = tuple(data.get("decoder_channels", (32, 16)))
        return cls(**data)


class ResBlock(nn.Module):
    """``x' = s(x) + conv(relu(conv(relu(x))))`` with 3×3 convolutions (STCN's decoder block);
    ``s`` is a 3×3 convolution when the channel count changes. ``(B, C_in, h, w) -> (B, C_out, h, w)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(x))
        y = self.conv2(F.relu(y))
        return self.shortcut(x) + y


class UpsampleBlock(nn.Module):
    """Skip (3×3 conv) + bilinear ×2 of the coarse feature, then a `ResBlock`."""

    def __init__(self, skip_channels: int, up_channels: int, out_channels: int) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, up_channels, 3, padding=1)
        self.block = ResBlock(up_channels, out_channels)

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(self.skip_conv(skip) + up)


class FineRefinement(nn.Module):
    """Stride-4 decoder feature -> a full-size residual logit (module docstring, "Fine refinement").

    Every convolution runs at stride 2; the full-size detail comes from the frame folded into
    the channels (pixel unshuffle: each 2×2 block's four pixels as four channels) on the way in
    and from four sub-pixel logits per stride-2 cell (pixel shuffle) on the way out.

    ``shared(f2 (B, C2, H/2, W/2), image (B, 1, H, W))`` -> the per-frame skip ``(B, r, H/2, W/2)``;
    ``forward(skip (N, r, H/2, W/2), x4 (N, C4, H/4, W/4))`` -> residual logits ``(N, 1, H, W)``
    (N = frames × objects).
    """

    def __init__(self, stem_channels: int, decoder_channels: int, channels: int) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(stem_channels + 4, channels, 3, padding=1)
        self.reduce = nn.Conv2d(decoder_channels, channels, 1)
        self.block = ResBlock(channels, channels)
        self.out = nn.Conv2d(channels, 4, 3, padding=1)

    def shared(self, stem: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.skip_conv(torch.cat([stem, F.pixel_unshuffle(image, 2)], dim=1))

    def forward(self, skip: torch.Tensor, x4: torch.Tensor) -> torch.Tensor:
        x2 = F.interpolate(self.reduce(F.relu(x4)), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return F.pixel_shuffle(self.out(F.relu(self.block(skip + x2))), 2)


def standardise(frames: torch.Tensor) -> torch.Tensor:
    """Per-frame zero mean, unit variance: ``(B, 1, H, W) -> (B, 1, H, W)`` (std floored at 1e-3)."""
    mean = frames.mean(dim=(2, 3), keepdim=True)
    std = frames.std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
    return (frames - mean) / std


def _pad16(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % STRIDE, 0, (-h) % STRIDE), mode="replicate" if x.shape[1] == 1 else "constant")


def soft_aggregate(object_logits: torch.Tensor) -> torch.Tensor:
    """Object logits ``(B, O, H, W)`` -> class logits ``(B, O + 1, H, W)`` (channel 0 background).

    STM/STCN's soft aggregation: p_o = sigmoid(l_o), the background p_0 = Π (1 - p_o), and
    each class's logit is log(p / (1 - p)); softmax of the result gives the class
    probabilities (for one object that is sigmoid(2 l): the aggregation sharpens, as STCN's
    does). Computed in log space so that no gradient is clamped away: an object's logit is
    l_o itself, and with log p_0 = -Σ softplus(l_o) the background's is
    log p_0 - log(1 - p_0) (log p_0 capped at -1e-6).
    """
    log_background = -F.softplus(object_logits).sum(dim=1, keepdim=True).clamp_min(1e-6)
    background_logit = log_background - torch.log(-torch.expm1(log_background))
    return torch.cat([background_logit, object_logits], dim=1)


class FSVOSNet(nn.Module):
    """The memory network (module docstring). Use the stages one by one:

    * ``encode_key(frames (B, 1, H, W))`` -> `QueryFeatures` (key ``(B, Dk, h, w)``, the
      stride-16/8/4 features);
    * ``encode_value(frames, features, masks (B, O, H, W))`` -> values ``(B, O, Dv, h, w)``;
    * ``segment(features, memory_keys (B, K, Dk, h, w), memory_values (B, K, O, Dv, h, w),
      matching)`` -> (class logits ``(B, O + 1, H, W)``, affinity).
    """

    def __init__(self, config: FSVOSConfig | None = None) -> None:
        super().__init__()
        self.config = config or FSVOSConfig()
        c = self.config
        self.key_encoder = ResNetEncoder(depth=c.key_encoder, in_channels=1, width=c.key_width, stages=3)
        self.value_encoder = ResNetEncoder(depth="resnet18", in_channels=3, width=c.value_width, stages=3)
        f2, f4, f8, f16 = self.key_encoder.channels[0:4]  # strides 2, 4, 8, 16
        v16 = self.value_encoder.channels[3]
        self.key_projection = nn.Conv2d(f16, c.key_dim, 3, padding=1)
        self.value_fusion = nn.Sequential(ResBlock(v16 + f16, c.value_dim), ResBlock(c.value_dim, c.value_dim))
        up8, up4 = c.decoder_channels
        self.compress = ResBlock(c.value_dim + f16, up8)
        self.up_16_8 = UpsampleBlock(f8, up8, up8)
        self.up_8_4 = UpsampleBlock(f4, up8, up4)
        self.predict = nn.Conv2d(up4, 1, 3, padding=1)
        self.refine = FineRefinement(f2, up4, c.refine_channels) if c.refine_channels > 0 else None
        self.projection = nn.Sequential(nn.Conv2d(f16, f16, 1), nn.ReLU(inplace=True), nn.Conv2d(f16, c.projection_dim, 1))
        init_weights(self)
        nn.init.normal_(self.predict.weight, std=1e-3)  # start from logits near 0: p = 0.5 everywhere
        nn.init.zeros_(self.predict.bias)
        if self.refine is not None:
            nn.init.zeros_(self.refine.out.weight)  # the refinement starts as the identity
            nn.init.zeros_(self.refine.out.bias)

    def encode_key(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """``frames (B, 1, H, W)`` in [0, 1] -> {"key" (B, Dk, h, w), "f16", "f8", "f4", "image",
        "size"} and, with the fine refinement, "skip2" (its stride-2 skip, per frame)."""
        if frames.ndim != 4 or frames.shape[1] != 1:
            raise InputError(f"FSVOSNet expects (B, 1, H, W) frames; got {tuple(frames.shape)}")
        size = torch.tensor(frames.shape[-2:])
        image = _pad16(standardise(frames))
        f2, f4, f8, f16 = self.key_encoder(image)
        features = {"key": self.key_projection(f16), "f16": f16, "f8": f8, "f4": f4, "image": image, "size": size}
        if self.refine is not None:
            features["skip2"] = self.refine.shared(f2, image)
        return features

    def encode_value(self, features: dict[str, torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
        """Values of a memory frame: ``masks (B, O, H, W)`` in [0, 1] -> ``(B, O, Dv, h, w)``."""
        b, o = masks.shape[:2]
        image = features["image"]
        masks = _pad16(masks.to(image.dtype)) if masks.shape[1] else masks
        if masks.shape[-2:] != image.shape[-2:]:
            raise InputError(f"masks {tuple(masks.shape)} do not fit the frames {tuple(image.shape)}")
        others = masks.sum(dim=1, keepdim=True) - masks  # (B, O, H, W): every other object
        stacked = torch.stack([image.expand(-1, o, -1, -1), masks, others.clamp(0, 1)], dim=2)  # (B, O, 3, H, W)
        v16 = self.value_encoder(stacked.flatten(0, 1))[3]  # (B·O, v16, h, w)
        f16 = features["f16"].repeat_interleave(o, dim=0)
        values = self.value_fusion(torch.cat([v16, f16], dim=1))
        return values.view(b, o, *values.shape[1:])

    def object_logits(self, readout: torch.Tensor, f16: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor,
                      skip2: torch.Tensor | None = None) -> torch.Tensor:
        """One row per (frame, object): ``readout (N, Dv, h, w)`` and the query's skips repeated
        per object -> object logits ``(N, 1, 16h, 16w)`` at the padded size (before the crop and
        the soft aggregation; the ONNX decoder graph is this function)."""
        x = self.compress(torch.cat([readout, f16], dim=1))
        x = self.up_8_4(f4, self.up_16_8(f8, x))
        logits = F.interpolate(self.predict(F.relu(x)), scale_factor=4.0, mode="bilinear", align_corners=False)
        if self.refine is not None:
            logits = logits + self.refine(skip2, x)
        return logits

    def decode(self, features: dict[str, torch.Tensor], readout: torch.Tensor) -> torch.Tensor:
        """``readout (B, O, Dv, h, w)`` -> class logits ``(B, O + 1, H, W)`` (soft aggregation)."""
        b, o = readout.shape[:2]
        skips = [features[name].repeat_interleave(o, dim=0) for name in ("f16", "f8", "f4", "skip2") if name in features]
        logits = self.object_logits(readout.flatten(0, 1), *skips)
        height, width = (int(v) for v in features["size"])
        logits = logits[..., :height, :width].reshape(b, o, height, width)
        return soft_aggregate(logits)

    def segment(self, features: dict[str, torch.Tensor], memory_keys: torch.Tensor, memory_values: torch.Tensor,
                matching: MatchingConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the memory with the query's key and decode; returns (class logits, affinity)."""
        readout, affinity = read_memory(memory_keys, memory_values, features["key"], matching)
        return self.decode(features, readout), affinity

    def project(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Contrastive embedding ``(B, P, h, w)``, L2-normalised along P."""
        return F.normalize(self.projection(features["f16"]), dim=1)


def build_fsvos(width: str = "lite", **overrides: Any) -> FSVOSNet:
    """An `FSVOSNet` of preset `width` ("lite" or "paper"), fields of `FSVOSConfig` overridden."""
    config = FSVOSConfig.preset(width)
    if overrides:
        config = FSVOSConfig.from_dict({**config.to_dict(), **overrides})
    return FSVOSNet(config)
