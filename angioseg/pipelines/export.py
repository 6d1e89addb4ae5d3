"""`angioseg export`: a shipped model or a weights file as ONNX, with what a runtime needs to
use it written into the graph's metadata (``metadata_props``).

Supervised models (unet, cenet, cenet-syntax, cenet-wide, cenet3d2d-n1/-n2, or any weights
file `angioseg train` wrote) become one graph, the network's padded forward
(`angioseg.methods.supervised.onnx_backend`): input ``clips`` `(B, 2N+1, H, W)`, output
``logits`` `(B, 1, H, W)`, dynamic batch, height and width.

FSVOS (``fsvos`` or an FSVOS weights file) becomes three graphs written beside each other,
``OUT.key.onnx``, ``OUT.value.onnx`` and ``OUT.decoder.onnx`` for ``-o OUT.onnx``; the memory
(which frames to keep) and the matching (`angioseg.nn.matching.read_memory`) stay in Python:

* key: ``image`` `(B, 1, Hp, Wp)` -> ``key`` `(B, Dk, Hp/16, Wp/16)`, ``f16``, ``f8``, ``f4``
  and, for a network with the fine refinement (`angioseg.nn.fsvos.FineRefinement`; the
  shipped one has it), ``skip2`` `(B, r, Hp/2, Wp/2)`;
* value: ``image``, ``mask`` and ``others`` `(N, 1, Hp, Wp)` (one row per object: its mask and
  the union of the other objects' masks, both in [0, 1]) and ``f16`` of the same frame
  repeated per object -> ``value`` `(N, Dv, Hp/16, Wp/16)`;
* decoder: ``readout`` `(N, Dv, h, w)` with ``f16``, ``f8``, ``f4`` (and ``skip2``) repeated per object ->
  ``object_logits`` `(N, 1, Hp, Wp)`; crop to `(H, W)` and soft-aggregate the objects
  (`angioseg.nn.fsvos.soft_aggregate`) for the class logits.

``image`` is the frame in [0, 1] standardised per frame, (x - mean) / max(std, 1e-3), then
replicate-padded at the bottom and right to multiples of 16 (masks are zero-padded).
Every file is written atomically; the three FSVOS files appear together or not at all.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from angioseg import __version__
from angioseg.errors import InputError

OPSET = 17
#: The parts of an FSVOS export, in the order they are written.
FSVOS_PARTS = ("key", "value", "decoder")
#: What the supervised graphs expect of their input frames.
SUPERVISED_INPUT = ("float32 frames in [0, 1] as read by angioseg (1 = bright, vessels dark), no further "
                    "scaling; a clip of 2N+1 frames centred on the target, edge frames repeated")
FSVOS_INPUT = ("float32 frame in [0, 1], standardised per frame: (x - mean) / max(std, 1e-3); "
               "replicate-padded at the bottom and right to multiples of 16")


@dataclass(frozen=True)
class ResolvedModel:
    """A model named on the command line: its weights file, architecture and a display name."""

    name: str
    weights: Path
    architecture: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(model: str) -> ResolvedModel:
    """A shipped model name (`MODEL_SPECS` or ``fsvos``) or a path to a weights file."""
    from angioseg.methods.fsvos.weights import ARCHITECTURE, shipped_fsvos_weights
    from angioseg.methods.supervised.weights import MODEL_SPECS, shipped_weights

    if model == ARCHITECTURE:
        return ResolvedModel(model, shipped_fsvos_weights(), ARCHITECTURE)
    if model in MODEL_SPECS:
        return ResolvedModel(model, shipped_weights(model), MODEL_SPECS[model].architecture)
    path = Path(model)
    if path.suffix == ".safetensors" or path.is_file():
        if not path.is_file():
            raise InputError(f"weights file {path} does not exist")
        return ResolvedModel(path.stem, path, _stored_architecture(path))
    names = ", ".join([*MODEL_SPECS, ARCHITECTURE])
    raise InputError(f"unknown model {model!r}; give a shipped model ({names}) or a .safetensors weights file")


def _stored_architecture(path: Path) -> str:
    """The architecture recorded in a safetensors file's metadata (one line when unreadable)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            architecture = (handle.metadata() or {}).get("architecture")
    except (SafetensorError, OSError) as error:
        raise InputError(f"{path} is not a readable safetensors weights file ({type(error).__name__})") from None
    if not architecture:
        raise InputError(f"{path} has no architecture in its metadata; it was not written by angioseg")
    return str(architecture)


def export_model(model: str, out: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
    """Export `model` (see `resolve_model`) to ONNX at `out`; returns the files written.
    Existing files are replaced only with `overwrite`."""
    out = _check_target(Path(out))
    resolved = resolve_model(model)
    fsvos = resolved.architecture == "fsvos"
    _check_free(list(fsvos_paths(out).values()) if fsvos else [out], overwrite)
    if fsvos:
        return export_fsvos(resolved, out)
    return [export_supervised(resolved, out)]


def _check_target(out: Path) -> Path:
    """The output file: named ``*.onnx``, in a folder that can be written, name short enough."""
    from angioseg.io.atomic import check_output_location

    if out.suffix.lower() != ".onnx":
        raise InputError(f"output {out} must end in .onnx")
    if out.is_dir():
        raise InputError(f"output {out} is a folder; name a file ending in .onnx")
    check_output_location(out)
    return out


def _check_free(targets: list[Path], overwrite: bool) -> None:
    """InputError for an existing target (a folder always; a file unless `overwrite`)."""
    for target in targets:
        if target.is_dir() or (target.exists() and not overwrite):
            raise InputError(f"output {target} already exists; choose another name (or pass --overwrite for a file)")


def fsvos_paths(out: Path) -> dict[str, Path]:
    """``OUT.key.onnx``, ``OUT.value.onnx``, ``OUT.decoder.onnx`` for ``OUT.onnx``."""
    return {part: out.with_name(f"{out.stem}.{part}.onnx") for part in FSVOS_PARTS}


# ----------------------------------------------------------------------------- metadata


def _with_metadata(model_bytes: bytes, entries: dict[str, Any]) -> bytes:
    """The ONNX graph with `entries` added to (or replacing) its ``metadata_props``."""
    import onnx

    graph = onnx.load_from_string(model_bytes)
    existing = {entry.key: entry for entry in graph.metadata_props}
    for key, value in entries.items():
        text = value if isinstance(value, str) else json.dumps(value)
        entry = existing.get(key) or graph.metadata_props.add()
        entry.key, entry.value = key, text
    return graph.SerializeToString()


def _provenance(resolved: ResolvedModel) -> dict[str, Any]:
    return {"model": resolved.name, "weights_file": resolved.weights.name,
            "weights_sha256": file_sha256(resolved.weights), "exporter": f"angioseg {__version__}"}


def supervised_metadata(resolved: ResolvedModel, spec: Any, info: dict[str, Any], network: nn.Module) -> dict[str, Any]:
    """What a runtime needs to use a supervised graph: architecture, options, clip radius,
    input scaling, padding, output rule, label style and the weights' provenance."""
    from angioseg.methods.supervised.onnx_backend import MIN_ONNX_SIZE
    from angioseg.methods.supervised.weights import label_style

    multiple = int(getattr(network, "size_multiple", 32))
    has_rmp = any(type(module).__name__ == "RMPBlock" for module in network.modules())
    return {
        "architecture": spec.architecture, "options": spec.options, "clip_radius": str(spec.radius),
        "input_normalisation": SUPERVISED_INPUT,
        "padding": f"reflect-pad the bottom and right to multiples of {multiple} (padded side at least "
                   f"{MIN_ONNX_SIZE if has_rmp else multiple}); crop the logits back",
        "size_multiple": str(multiple), "min_size": str(MIN_ONNX_SIZE if has_rmp else multiple),
        "output": "logits (B, 1, H, W); vessel where sigmoid(logits) >= 0.5",
        "threshold": "0.5", "label_table": {"0": "background", "1": "vessel"},
        "label_style": label_style(info), **_provenance(resolved),
    }


# ----------------------------------------------------------------------------- supervised


def export_supervised(resolved: ResolvedModel, out: Path) -> Path:
    """One ONNX graph of a supervised network, with its metadata; atomic."""
    from angioseg.methods.supervised.onnx_backend import export_onnx_bytes
    from angioseg.methods.supervised.weights import load_model

    network, spec, info = load_model(resolved.weights)
    data = _with_metadata(export_onnx_bytes(network, spec), supervised_metadata(resolved, spec, info, network))
    with _atomic_files([out]) as (tmp,):
        tmp.write_bytes(data)
    return out


# ----------------------------------------------------------------------------- FSVOS


class FSVOSKeyGraph(nn.Module):
    """``image (B, 1, Hp, Wp)`` -> key, f16, f8, f4 (the key encoder and its projection), and
    the fine refinement's per-frame skip2 where the network has one."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.encoder, self.projection, self.refine = net.key_encoder, net.key_projection, net.refine

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f2, f4, f8, f16 = self.encoder(image)
        if self.refine is None:
            return self.projection(f16), f16, f8, f4
        return self.projection(f16), f16, f8, f4, self.refine.shared(f2, image)


class FSVOSValueGraph(nn.Module):
    """One object per row: image, its mask, the others' union and f16 -> ``(N, Dv, h, w)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.encoder, self.fusion = net.value_encoder, net.value_fusion

    def forward(self, image: torch.Tensor, mask: torch.Tensor, others: torch.Tensor, f16: torch.Tensor) -> torch.Tensor:
        v16 = self.encoder(torch.cat([image, mask, others], dim=1))[3]
        return self.fusion(torch.cat([v16, f16], dim=1))


class FSVOSDecoderGraph(nn.Module):
    """``readout (N, Dv, h, w)`` with the skips -> object logits ``(N, 1, Hp, Wp)`` (before the
    crop to the frame and the soft aggregation over objects): `FSVOSNet.object_logits`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, readout: torch.Tensor, f16: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor,
                skip2: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.object_logits(readout, f16, f8, f4, skip2)


def fsvos_graph_inputs(net: nn.Module, side: int = 64) -> dict[str, tuple[torch.Tensor, ...]]:
    """Example inputs of the three graphs for a `side`² frame (tracing and tests)."""
    image = torch.zeros(1, 1, side, side)
    with torch.no_grad():
        key, f16, *skips = FSVOSKeyGraph(net)(image)
        value = FSVOSValueGraph(net)(image, image, image, f16)
    return {"key": (image,), "value": (image, image, image, f16), "decoder": (value, f16, *skips)}


def fsvos_graph_names(net: nn.Module) -> dict[str, tuple[list[str], list[str]]]:
    """Input and output names of the three graphs (``skip2`` only with the fine refinement)."""
    skips = ["f8", "f4"] + (["skip2"] if net.refine is not None else [])
    return {
        "key": (["image"], ["key", "f16", *skips]),
        "value": (["image", "mask", "others", "f16"], ["value"]),
        "decoder": (["readout", "f16", *skips], ["object_logits"]),
    }


_FSVOS_GRAPHS = {"key": FSVOSKeyGraph, "value": FSVOSValueGraph, "decoder": FSVOSDecoderGraph}


def _trace(module: nn.Module, inputs: tuple[torch.Tensor, ...], names: tuple[list[str], list[str]]) -> bytes:
    """ONNX bytes of `module` with every input and output dynamic in batch, height and width."""
    input_names, output_names = names
    dynamic = {name: {0: "batch", 2: f"height_{name}", 3: f"width_{name}"} for name in input_names + output_names}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), inputs, buffer, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


def fsvos_metadata(resolved: ResolvedModel, net: nn.Module, part: str) -> dict[str, Any]:
    config = net.config.to_dict()
    return {
        "architecture": "fsvos", "part": part, "options": config, "clip_radius": "0",
        "input_normalisation": FSVOS_INPUT, "padding": "bottom and right to multiples of 16 (image: replicate; "
        "masks: zeros); crop the decoder's object logits back to the frame", "size_multiple": "16",
        "graphs": {name: f"OUT.{name}.onnx" for name in FSVOS_PARTS},
        "output": "key/value/decoder tensors; memory and matching (angioseg.nn.matching) run outside the graphs; "
                  "class logits = soft_aggregate(object logits per frame), channel 0 background",
        "label_style": "objects of the prompt (one-shot)", **_provenance(resolved),
    }


def export_fsvos(resolved: ResolvedModel, out: Path) -> list[Path]:
    """The three FSVOS graphs beside `out` (`fsvos_paths`), all or none."""
    import onnx  # noqa: F401  (the exporter needs it)

    from angioseg.methods.fsvos.weights import load_fsvos

    net, _ = load_fsvos(resolved.weights)
    net = copy.deepcopy(net).eval()
    inputs = fsvos_graph_inputs(net)
    paths = fsvos_paths(out)
    names = fsvos_graph_names(net)
    data = {part: _with_metadata(_trace(_FSVOS_GRAPHS[part](net), inputs[part], names[part]),
                                 fsvos_metadata(resolved, net, part)) for part in FSVOS_PARTS}
    with _atomic_files(list(paths.values())) as temporaries:
        for part, tmp in zip(FSVOS_PARTS, temporaries):
            tmp.write_bytes(data[part])
    return list(paths.values())


# ----------------------------------------------------------------------------- writing


@contextlib.contextmanager
def _atomic_files(targets: list[Path]) -> Iterator[list[Path]]:
    """Temporaries beside each target, renamed onto them only once the block succeeded (on an
    error every temporary is removed and no target is touched)."""
    from angioseg.io.atomic import atomic_file

    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_file(target)) for target in targets]
