"""Serving the app with uvicorn: `run_server`, the upload-size parser and the loopback test."""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
from pathlib import Path

from angioseg.errors import InputError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
#: Seconds open connections (a job's progress stream) may hold up a shutdown.
GRACEFUL_SHUTDOWN_S = 3


def parse_size(text: str) -> int:
    """Bytes from a size such as ``2GB`` (10^9), ``512MiB`` (2^20), ``100k`` or ``4096``."""
    match = _SIZE.match(str(text))
    if not match:
        raise InputError(f"{text!r} is not a size such as 2GB, 512MB or 1GiB")
    unit = match.group(2).lower().removesuffix("b")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise InputError(f"the size {text!r} must be at least 1 byte")
    return size


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback interface."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> tuple[str, ...] | None:
    """The Host header names to answer: loopback names plus `host` (and this machine's name
    for a non-loopback address); None (any) for a wildcard address."""
    from angioseg.serve.security import LOOPBACK_NAMES

    if host in WILDCARD_HOSTS:
        return None
    extra = () if is_loopback(host) else (socket.gethostname(),)
    return (*LOOPBACK_NAMES, host.strip("[]").lower(), *extra)


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port); InputError (one line) when that is not possible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        raise InputError(f"--host {host!r} is not an address of this machine: {error}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def run_server(root: Path, *, host: str = "127.0.0.1", port: int = 8765, max_upload_bytes: int = 2 * 10**9,
               device: str = "cpu", threads: int | None = None) -> None:
    """Serve the workspace over `root` until interrupted (module docstring of `angioseg.serve`).

    A non-loopback `host` prints a one-line warning; the URL to open is printed once the
    socket is bound.
    """
    import uvicorn

    from angioseg.options import check_device
    from angioseg.serve.app import create_app, log_to_stderr

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--root {root} is not a folder")
    if not 0 <= port <= 65535:
        raise InputError(f"--port must lie in 0..65535; got {port}")
    device = check_device(device)
    sock = bind(host, port)
    if not is_loopback(host):
        print(f"angioseg: warning: --host {host or '*'} is not a loopback address: anyone who can reach this machine "
              "can read every run under --root and run methods on it", file=sys.stderr)
    log_to_stderr()
    app = create_app(root, max_upload_bytes=max_upload_bytes, device=device, threads=threads, allowed_hosts=allowed_hosts(host))
    shown = sock.getsockname()
    url_host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    url_host = f"[{url_host}]" if ":" in url_host else url_host
    print(f"angioseg serve: open http://{url_host}:{shown[1]}/ in a browser (Ctrl+C stops)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", server_header=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
