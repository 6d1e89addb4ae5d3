"""Shared by the `angioseg serve` tests: a small phantom run on disk and a live server thread."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from angioseg.types import LabelMap, Video


def phantom_run(size: int = 96, frames: int = 8, seed: int = 0) -> tuple[Video, LabelMap]:
    """A small phantom run (frames and exact masks)."""
    from angioseg.data.phantom import PhantomParams, generate_phantom

    run = generate_phantom(PhantomParams(size=size, frames=frames), seed=seed)
    return run.video, run.masks


def write_run(folder: Path, name: str = "run.npz", **kwargs: int) -> tuple[Path, Video, LabelMap]:
    """Write a phantom run as `folder/name` (npz); returns (path, video, masks)."""
    from angioseg.io import write_video_npz

    video, masks = phantom_run(**kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    return write_video_npz(video, folder / name), video, masks


@contextmanager
def live_server(app: object) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields its URL."""
    import uvicorn

    from angioseg.serve.server import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s")


def labels_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))
