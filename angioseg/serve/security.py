"""The server's guard: one ASGI middleware in front of every request.

- Host: the Host header must name an allowed host (loopback names, plus the address served
  on), which defeats DNS rebinding; refused with 400.
- Same origin: POST, PUT, PATCH and DELETE need an Origin (or, lacking one, a Referer) whose
  host and port equal the Host header; refused with 403 otherwise (a script that is not a
  browser sends ``Origin: http://HOST:PORT``). A browser's request to ``/api/`` marked
  ``Sec-Fetch-Site: cross-site`` or ``same-site`` (an image or script tag on another site)
  is refused with 403 too, whatever its method.
- Paths: a URL path with a ``..`` segment, a backslash or a NUL byte (after decoding) is
  refused with 400.
- Bodies: a request body over `body_limit` bytes (uploads have their own cap) is refused
  with 413, by its Content-Length before it is read, or as soon as it grows past it.
- Responses carry a strict Content-Security-Policy (this origin only) and ``no-store``.
- Logging: one line per request (method, route pattern, status, milliseconds) and per
  refusal (its reason); never a query string, a body or a client-given path or file name.
  A bug is answered 500 and logged by its type and code locations, not its message.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from angioseg.serve.paths import malformed_reason

LOG = logging.getLogger("angioseg.serve")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"cache-control", b"no-store"), (b"x-frame-options", b"DENY")]


class BodyTooLarge(HTTPException):
    """A request body grew past the limit while it was read (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"refused: the request body is over {limit} bytes")


def host_name(value: str) -> str:
    """The host part of a Host header value (``[::1]:8765`` -> ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def same_origin(headers: dict[str, str]) -> bool:
    """Whether the request's Origin (else Referer) has the Host header's host and port."""
    host = headers.get("host", "").strip().lower()
    source = headers.get("origin") or headers.get("referer")
    if not host or not source or source == "null":
        return False
    try:
        return urlsplit(source).netloc.lower() == host
    except ValueError:
        return False


class Guard:
    """The middleware (module docstring)."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, allowed_hosts: Iterable[str] | None,
                 body_limit: int, unlimited_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed_hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        self.body_limit = int(body_limit)
        self.unlimited_paths = frozenset(unlimited_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, reason = refusal
            LOG.warning("refused %s request: %s", scope["method"], reason)
            await _send_error(send, status, f"refused: {reason}")
            return
        status = [0]

        async def guarded_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        try:
            await self.app(scope, self._limited(scope, receive), guarded_send)
        except BodyTooLarge:
            LOG.warning("refused %s request: a body over %d bytes", scope["method"], self.body_limit)
            if not status[0]:
                await _send_error(send, 413, f"refused: the request body is over {self.body_limit} bytes")
            status[0] = 413
        except Exception as error:  # a bug: logged by type and code location, never by its message (it may hold data)
            LOG.error("internal error (%s) in %s %s:\n%s", type(error).__name__, scope["method"], _route(scope),
                      "".join(traceback.format_tb(error.__traceback__)).rstrip())
            if not status[0]:
                await _send_error(send, 500, f"internal error ({type(error).__name__}); see the server log")
            status[0] = 500
        LOG.info("%s %s %d %.0f ms", scope["method"], _route(scope), status[0], 1000 * (time.perf_counter() - start))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, reason) when the request is refused before it reaches the app."""
        if self.allowed_hosts is not None and host_name(headers.get("host", "")) not in self.allowed_hosts:
            return 400, "a Host header this server does not answer to"
        reason = malformed_reason(scope.get("path", "").lstrip("/"))
        if reason is not None and reason != "an absolute path":
            return 400, reason
        if scope["method"] in STATE_CHANGING and not same_origin(headers):
            return 403, "a state-changing request from another origin (Origin / Referer must match Host)"
        if scope["path"].startswith("/api/") and headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return 403, "a request to the API from another site (Sec-Fetch-Site)"
        if scope["path"] not in self.unlimited_paths:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.body_limit:
                return 413, f"the request body is over {self.body_limit} bytes"
        return None

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """`receive`, raising BodyTooLarge once the body passes the limit (uploads excepted)."""
        if scope["path"] in self.unlimited_paths:
            return receive
        seen = [0]

        async def limited() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.body_limit:
                    raise BodyTooLarge(self.body_limit)
            return message

        return limited


def _route(scope: Scope) -> str:
    """The matched route's pattern (no client data), or "-"."""
    route = scope.get("route")
    return str(getattr(route, "path", "-")) if route is not None else "-"


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS]})
    await send({"type": "http.response.body", "body": body})
