"""ONNX export of the supervised networks and an ONNX Runtime backend with the torch calling
convention, so `predict_probabilities` runs either one unchanged.

    model = OnnxModel.from_torch(torch_model, spec)   # export in memory, one CPU session
    logits = model(clips)                             # (B, 2N+1, H, W) tensor -> (B, 1, H, W)

The graph is the network's `forward_padded` (H, W multiples of 32; the U-Net's own forward on
multiples of its size multiple) with dynamic batch, height and width (opset 17), with the
padding it expects stored as metadata; `OnnxModel` reflect-pads each batch accordingly and crops
the logits back exactly as the torch `forward` does, so one file serves every run size of at least
`MIN_ONNX_SIZE` pixels (below that the torch model clamps its RMP kernels, which a traced graph
cannot). ONNX Runtime is optional: `pip install 'angioseg[onnx]'` (onnx + onnxruntime).
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from angioseg.errors import InputError
from angioseg.io.atomic import atomic_file
from angioseg.methods.supervised.weights import ModelSpec
from angioseg.nn.cenet import SIZE_MULTIPLE
from angioseg.nn.layers import pad_to_multiple

OPSET = 17
INPUT_NAME = "clips"
OUTPUT_NAME = "logits"
#: Smallest padded frame side the exported graph accepts: the RMP's 6×6 pool needs 6 px at stride 32.
MIN_ONNX_SIZE = 6 * SIZE_MULTIPLE
#: Example side used for tracing (32·12: every RMP map is larger than 1×1).
EXPORT_SIZE = 12 * SIZE_MULTIPLE


class _PaddedForward(nn.Module):
    """Wraps a network so its `forward` is `forward_padded` where it has one (what gets exported)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the U-Net has no forward_padded: its own padding is a no-op on multiples of 32
        padded_forward = getattr(self.network, "forward_padded", self.network.forward)
        return padded_forward(x)


def require_onnxruntime():
    """The onnxruntime module, or a one-line InputError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise InputError("the ONNX backend needs onnx and onnxruntime: pip install 'angioseg[onnx]'") from None
    return onnxruntime


def export_onnx_bytes(model: nn.Module, spec: ModelSpec) -> bytes:
    """Serialise `model.forward_padded` (eval mode) to ONNX with dynamic `(batch, height, width)`.

    Graph input ``clips``: `(B, 2N+1, H, W)`, H and W multiples of 32 and ≥ `MIN_ONNX_SIZE`;
    output ``logits``: `(B, 1, H, W)`.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise InputError("exporting to ONNX needs the onnx package: pip install 'angioseg[onnx]'") from None
    example = torch.zeros(1, 2 * spec.radius + 1, EXPORT_SIZE, EXPORT_SIZE)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    network = copy.deepcopy(model).eval()
    for tensor in [*network.parameters(), *network.buffers()]:
        tensor.data = tensor.data.contiguous()  # the exporter mishandles channels-last weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _PaddedForward(network), (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic}, opset_version=OPSET, dynamo=False,
        )
    return _with_padding_metadata(buffer.getvalue(), network)


def _with_padding_metadata(model_bytes: bytes, network: nn.Module) -> bytes:
    """Record in the ONNX file the padding the network expects: its size multiple (32 for the
    CE-Nets, the U-Net's own 2^(depth-1)) and the smallest padded side (`MIN_ONNX_SIZE` where
    an RMP block needs it, else one multiple)."""
    import onnx

    multiple = int(getattr(network, "size_multiple", SIZE_MULTIPLE))
    has_rmp = any(type(module).__name__ == "RMPBlock" for module in network.modules())
    graph = onnx.load_from_string(model_bytes)
    for key, value in (("size_multiple", multiple), ("min_size", MIN_ONNX_SIZE if has_rmp else multiple)):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return graph.SerializeToString()


def export_onnx(model: nn.Module, spec: ModelSpec, path: str | Path) -> Path:
    """Write the ONNX export of `model` to `path` (atomically)."""
    data = export_onnx_bytes(model, spec)
    with atomic_file(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


class OnnxModel:
    """An ONNX Runtime CPU session called like the torch model it was exported from.

    Args:
        model_bytes: the serialised ONNX graph.
        threads: intra-op threads (default: torch's thread count, so both backends compare fairly).
    """

    def __init__(self, model_bytes: bytes, *, threads: int | None = None) -> None:
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.size_multiple = int(metadata.get("size_multiple", SIZE_MULTIPLE))
        self.min_size = int(metadata.get("min_size", MIN_ONNX_SIZE))

    @classmethod
    def from_torch(cls, model: nn.Module, spec: ModelSpec, *, threads: int | None = None) -> "OnnxModel":
        return cls(export_onnx_bytes(model, spec), threads=threads)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        """`(B, 2N+1, H, W)` float32 clips -> `(B, 1, H, W)` float32 logits (CPU tensors)."""
        height, width = clips.shape[-2:]
        padded = pad_to_multiple(clips.detach().cpu().float(), self.size_multiple)
        if min(padded.shape[-2:]) < self.min_size:
            raise InputError(f"the ONNX backend needs frames of at least {self.min_size - self.size_multiple + 1} pixels "
                             f"per side; got {height}x{width} (use backend=torch)")
        array = np.ascontiguousarray(padded.numpy(), dtype=np.float32)
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return torch.from_numpy(logits[..., :height, :width])
