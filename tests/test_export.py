"""`angioseg export`: ONNX graphs that give what torch gives, with their metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from angioseg.cli.main import main  # noqa: E402
from angioseg.methods.fsvos.weights import load_fsvos, shipped_fsvos_weights  # noqa: E402
from angioseg.methods.supervised.inference import predict_probabilities  # noqa: E402
from angioseg.methods.supervised.onnx_backend import OnnxModel  # noqa: E402
from angioseg.methods.supervised.weights import load_model, shipped_weights  # noqa: E402
from angioseg.nn.fsvos import _pad16, standardise  # noqa: E402
from angioseg.pipelines.export import file_sha256  # noqa: E402

METADATA_KEYS = {"architecture", "options", "clip_radius", "input_normalisation", "padding", "size_multiple",
                 "label_style", "weights_sha256"}


def _metadata(path: Path) -> dict[str, str]:
    return {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}


def _frames(count: int, height: int, width: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    vessel = np.exp(-((rows - height / 2 - 8 * np.sin(cols / 15.0)) ** 2) / 20.0)
    noise = np.random.default_rng(0).normal(0, 0.02, (count, height, width))
    return np.clip(0.8 - 0.5 * vessel[None] + noise, 0, 1).astype(np.float32)


@pytest.mark.parametrize("name", ["cenet", "cenet3d2d-n1"])
def test_onnx_masks_match_torch(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"{name}.onnx"
    assert main(["export", name, "-o", str(out)]) == 0
    meta = _metadata(out)
    assert METADATA_KEYS <= set(meta)
    model, spec, _ = load_model(shipped_weights(name))
    assert meta["weights_sha256"] == file_sha256(shipped_weights(name))
    assert meta["architecture"] == spec.architecture and int(meta["clip_radius"]) == spec.radius
    assert json.loads(meta["options"]) == spec.options
    frames = _frames(3, 200, 210)
    expected = predict_probabilities(model, spec, frames, channels_last=False)
    got = predict_probabilities(OnnxModel(out.read_bytes(), threads=1), spec, frames, channels_last=False)
    assert np.abs(expected - got).max() < 1e-4
    assert np.array_equal(expected >= 0.5, got >= 0.5)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_fsvos_graphs_match_torch(tmp_path: Path) -> None:
    assert main(["export", "fsvos", "-o", str(tmp_path / "fsvos.onnx")]) == 0
    key, value, decoder = (_session(tmp_path / f"fsvos.{part}.onnx") for part in ("key", "value", "decoder"))
    for part in ("key", "value", "decoder"):
        meta = _metadata(tmp_path / f"fsvos.{part}.onnx")
        assert METADATA_KEYS <= set(meta) and meta["part"] == part
    net, _ = load_fsvos(shipped_fsvos_weights())
    frames = torch.from_numpy(_frames(1, 72, 90))[:, None]
    masks = (torch.rand(1, 2, 72, 90, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    with torch.no_grad():
        features = net.encode_key(frames)
        values = net.encode_value(features, masks)[0]  # (O, Dv, h, w)
        class_logits = net.decode(features, values[None])
    image = _pad16(standardise(frames)).numpy()
    got_key, f16, f8, f4, skip2 = key.run(None, {"image": image})
    assert net.refine is not None  # the shipped network has the fine refinement: its skip is a graph output
    for name, array in (("key", got_key), ("f16", f16), ("f8", f8), ("f4", f4), ("skip2", skip2)):
        assert np.abs(features[name].numpy() - array).max() < 1e-4, name
    padded = _pad16(masks).numpy()
    others = np.clip(padded.sum(axis=1, keepdims=True) - padded, 0, 1)
    rows = {"image": np.repeat(image, 2, axis=0), "mask": padded.transpose(1, 0, 2, 3),
            "others": others.transpose(1, 0, 2, 3), "f16": np.repeat(f16, 2, axis=0)}
    (got_values,) = value.run(None, rows)
    assert np.abs(values.numpy() - got_values).max() < 1e-4
    skips = {name: np.repeat(array, 2, axis=0) for name, array in (("f16", f16), ("f8", f8), ("f4", f4), ("skip2", skip2))}
    (object_logits,) = decoder.run(None, {"readout": values.numpy(), **skips})
    from angioseg.nn.fsvos import soft_aggregate

    got_logits = soft_aggregate(torch.from_numpy(object_logits[:, 0, :72, :90])[None])
    assert np.abs(class_logits.numpy() - got_logits.numpy()).max() < 1e-4


def test_bad_model_name_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "no-such-model", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown model" in err
    assert not list(tmp_path.iterdir())


def test_unknown_models_and_bad_targets_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken.onnx").write_bytes(b"mine")
    (tmp_path / "not-weights.safetensors").write_bytes(b"garbage")
    for argv in (["cenet-huge", "-o", str(tmp_path / "w.onnx")], ["cenet", "-o", str(tmp_path / "m.txt")],
                 ["cenet", "-o", str(tmp_path / "taken.onnx")], ["cenet", "-o", str(tmp_path / "taken.onnx" / "x.onnx")],
                 [str(tmp_path / "not-weights.safetensors"), "-o", str(tmp_path / "g.onnx")]):
        assert main(["export", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("angioseg: error:"), err
    assert (tmp_path / "taken.onnx").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-weights.safetensors", "taken.onnx"]
