"""Flow backends behind one interface: OpenCV DIS, RAFT, and a zero-flow reference.

Every backend follows the conventions of `angioseg.flow.dis` (flows `(H, W, 2)` float32,
(dx, dy) in pixels): `estimate_pairs(first, second)` gives f_n with
first[n](x) ≈ second[n](x + f_n(x)) on first[n]'s grid, and `estimate(frames)` gives the
forward flows f_t (frame t -> t+1, on frame t's grid) and backward flows b_t (frame t+1 -> t,
on frame t+1's grid) of a run, each `(T-1, H, W, 2)`.

`get_flow_backend("dis", preset="medium")`, `get_flow_backend("raft", config="large",
weights="raft-things.pth", iterations=12, device="cpu", batch=4)`, or from a spec string
`backend_from_spec("raft:weights=raft-things.pth,iterations=20")`.
"""

from __future__ import annotations

import abc

from typing import Any, Protocol, runtime_checkable

import numpy as np

from angioseg.errors import InputError
from angioseg.options import check_device, check_options, parse_spec
from angioseg.flow.dis import PRESETS, dis_flow, estimate_flows


@runtime_checkable
class FlowBackend(Protocol):
    """An optical-flow estimator (conventions in the module docstring)."""

    name: str

    def estimate_pairs(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """`(N, H, W)` twice, floats in [0, 1] -> `(N, H, W, 2)` float32 flows first -> second."""
        ...

    def estimate(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(T, H, W)` floats in [0, 1] -> (forward, backward), each `(T-1, H, W, 2)` float32."""
        ...

    def options(self) -> dict[str, Any]:
        """The settings, for reports."""
        ...


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise InputError(f"flow estimation needs (T, H, W) frames; got shape {frames.shape}")
    return frames.astype(np.float32, copy=False)


def _check_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first, second = _check_frames(first), _check_frames(second)
    if first.shape != second.shape:
        raise InputError(f"flow pairs need frame stacks of one shape; got {first.shape} and {second.shape}")
    return first, second


class PairwiseBackend(abc.ABC):
    """`estimate` from `estimate_pairs`: forward = pairs (t, t+1), backward = pairs (t+1, t)."""

    name = "pairwise"

    @abc.abstractmethod
    def estimate_pairs(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Flows `(N, H, W, 2)` from `first[i]` to `second[i]` (each `(N, H, W)`)."""

    def estimate(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = _check_frames(frames)
        if len(frames) < 2:
            empty = np.zeros((0, *frames.shape[1:], 2), np.float32)
            return empty, empty.copy()
        return self.estimate_pairs(frames[:-1], frames[1:]), self.estimate_pairs(frames[1:], frames[:-1])

    def options(self) -> dict[str, Any]:
        return {}


class DisBackend(PairwiseBackend):
    """OpenCV DIS (`angioseg.flow.dis`), preset "ultrafast", "fast" or "medium"."""

    name = "dis"

    def __init__(self, *, preset: str = "medium") -> None:
        if preset not in PRESETS:
            raise InputError(f"unknown DIS preset {preset!r}; choose one of {', '.join(PRESETS)}")
        self.preset = preset

    def estimate_pairs(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        first, second = _check_pairs(first, second)
        flows = [dis_flow(a, b, preset=self.preset) for a, b in zip(first, second)]
        return np.stack(flows).astype(np.float32) if flows else np.zeros((0, *first.shape[1:], 2), np.float32)

    def estimate(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return estimate_flows(_check_frames(frames), preset=self.preset)

    def options(self) -> dict[str, Any]:
        return {"preset": self.preset}


class ZeroBackend(PairwiseBackend):
    """Zero flow everywhere: the reference whose end-point error is the motion itself."""

    name = "zero"

    def estimate_pairs(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        first, _ = _check_pairs(first, second)
        return np.zeros((*first.shape, 2), np.float32)


class RaftBackend(PairwiseBackend):
    """RAFT (`angioseg.flow.raft`).

    Options: config "large" | "small" | "auto" (from the weights; "large" without weights),
    weights (a `.pth` of the authors or torchvision, or an angioseg `.safetensors`; None =
    untrained, only useful for tests), iterations (default 12), device (default "cpu"),
    batch (frame pairs per forward pass, default 4).
    """

    name = "raft"

    def __init__(
        self, *, config: str = "auto", weights: str | None = None, iterations: int = 12, device: str = "cpu", batch: int = 4
    ) -> None:
        from angioseg.flow.raft import build_raft, load_raft

        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
            raise InputError(f"RAFT iterations must be a positive integer; got {iterations!r}")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise InputError(f"RAFT batch must be a positive integer; got {batch!r}")
        device = check_device(device, option="device")
        if weights is None:
            self.model = build_raft("large" if config == "auto" else config, device=device).eval()
        else:
            self.model = load_raft(str(weights), config=config, device=device)
        self.weights = None if weights is None else str(weights)
        self.iterations = iterations
        self.device = device
        self.batch = batch

    def estimate_pairs(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        from angioseg.flow.raft import raft_flows

        first, second = _check_pairs(first, second)
        out = np.zeros((*first.shape, 2), np.float32)
        for start in range(0, len(first), self.batch):
            stop = start + self.batch
            out[start:stop] = raft_flows(self.model, first[start:stop], second[start:stop], iterations=self.iterations)
        return out

    def options(self) -> dict[str, Any]:
        return {"config": self.model.config.name, "weights": self.weights, "iterations": self.iterations, "device": self.device}


BACKENDS: dict[str, type[PairwiseBackend]] = {"dis": DisBackend, "raft": RaftBackend, "zero": ZeroBackend}


def get_flow_backend(name: str, **options: Any) -> FlowBackend:
    """The backend `name` ("dis", "raft" or "zero") with `options` (see each class)."""
    if name not in BACKENDS:
        raise InputError(f"unknown flow backend {name!r}; choose one of {', '.join(BACKENDS)}")
    check_options(BACKENDS[name], options, kind="flow backend", name=name)
    return BACKENDS[name](**options)


def parse_backend_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name:key=value,key=value`` -> (name, options), e.g.
    ``raft:weights=w.pth,iterations=20``; see `angioseg.options.parse_spec`."""
    return parse_spec(text, kind="flow backend")


def backend_from_spec(text: str, **common: Any) -> FlowBackend:
    """`get_flow_backend` for a spec string. `common` options (e.g. device) go to the backends
    that take them; the spec's own options win."""
    import inspect

    name, options = parse_backend_spec(text)
    if name in BACKENDS:
        accepted = inspect.signature(BACKENDS[name].__init__).parameters
        common = {key: value for key, value in common.items() if key in accepted}
    return get_flow_backend(name, **{**common, **options})
