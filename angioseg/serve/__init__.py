"""`angioseg serve`: a local browser workspace over a folder of runs.

`create_app(root, max_upload_bytes=...)` builds the FastAPI app (`angioseg.serve.app`);
`run_server` serves it with uvicorn (`angioseg.serve.server`). The page is plain HTML, CSS
and JavaScript modules in ``static/``, with no request to any other host. docs/serve.md
describes the panels, the API and the security model.

Imported lazily, so the job worker (`angioseg.serve.worker`) starts without FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "parse_size", "run_server"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from angioseg.serve.app import create_app

        return create_app
    if name in ("parse_size", "run_server"):
        from angioseg.serve import server

        return getattr(server, name)
    raise AttributeError(f"module 'angioseg.serve' has no attribute {name!r}")
