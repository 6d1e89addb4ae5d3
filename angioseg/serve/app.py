"""The FastAPI application of `angioseg serve`: `create_app(root, max_upload_bytes=...)`.

The routes live in `angioseg.serve.routes_runs` (browse, open, upload, frames),
`routes_jobs` (methods, segment, propagate, jobs, results, plots, downloads) and
`routes_annotate` (brush, labels, click to pick); the guard in front of them in
`angioseg.serve.security`. Every error is ``{"detail": "<one line>"}`` with a 4xx status
(500 only for a bug, whose message neither the client nor the log sees: the guard answers it).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import AsyncIterator, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from angioseg.errors import InputError
from angioseg.serve.downloads import DicomSegUnavailable
from angioseg.serve.paths import PathRefused
from angioseg.serve.security import LOG, LOOPBACK_NAMES, Guard
from angioseg.serve.uploads import UploadTooLarge
from angioseg.serve.workspace import NotFound, Workspace, WorkspaceFull

STATIC = Path(__file__).parent / "static"
UPLOAD_PATH = "/api/upload"
#: The largest body any request but an upload may have (a brush mask of a 4096² frame fits).
BODY_LIMIT = 64 * 1024 * 1024


def create_app(root: Path, *, max_upload_bytes: int, max_runs: int = 4, max_results: int = 6, device: str = "cpu",
               threads: int | None = None, allowed_hosts: Sequence[str] | None = LOOPBACK_NAMES,
               body_limit: int = BODY_LIMIT) -> FastAPI:
    """The app serving the workspace over the folder `root`.

    `max_upload_bytes`: the upload cap. `max_runs` / `max_results`: runs kept open, results
    kept per run. `device` / `threads`: where and on how many threads the jobs run.
    `allowed_hosts`: the host names the Host header may carry (None: any). The workspace
    (`app.state.workspace`) and its temporary folder are closed when the app shuts down.
    """
    from angioseg.serve import routes_annotate, routes_jobs, routes_runs

    workspace = Workspace(root, max_upload_bytes=max_upload_bytes, max_runs=max_runs, max_results=max_results,
                          device=device, threads=threads)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            workspace.close()

    app = FastAPI(title="angioseg serve", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.workspace = workspace
    for module in (routes_runs, routes_jobs, routes_annotate):
        app.include_router(module.router)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/", _index, methods=["GET"], include_in_schema=False)
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, body_limit=body_limit, unlimited_paths=(UPLOAD_PATH,))
    return app


async def _index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": " ".join(str(message).split())}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    """Map the exceptions the routes raise to one-line 4xx answers."""

    @app.exception_handler(InputError)
    async def bad_input(_: Request, error: InputError) -> JSONResponse:
        return _error(400, str(error))

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return _error(404, str(error))

    @app.exception_handler(FileNotFoundError)
    async def no_file(_: Request, error: FileNotFoundError) -> JSONResponse:
        return _error(404, "no such file or folder under the root")

    @app.exception_handler(PathRefused)
    async def refused(request: Request, error: PathRefused) -> JSONResponse:
        LOG.warning("refused %s request: %s", request.method, error.reason)
        return _error(error.status, f"refused: {error.reason}")

    @app.exception_handler(UploadTooLarge)
    async def too_large(request: Request, _: UploadTooLarge) -> JSONResponse:
        cap = request.app.state.workspace.max_upload_bytes
        LOG.warning("refused an upload over the cap of %d bytes", cap)
        return _error(413, f"refused: the upload is over the cap of {cap} bytes (--max-upload)")

    @app.exception_handler(WorkspaceFull)
    async def full(_: Request, error: WorkspaceFull) -> JSONResponse:
        return _error(409, str(error))

    @app.exception_handler(DicomSegUnavailable)
    async def no_dicom_seg(_: Request, error: DicomSegUnavailable) -> JSONResponse:
        return _error(501, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"bad request: {where or 'body'}: {first.get('msg', 'invalid')}")


def log_to_stderr(level: int = logging.INFO) -> None:
    """Send the server's log lines (`angioseg.serve`) to stderr, once."""
    if not LOG.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s angioseg serve: %(message)s", "%H:%M:%S"))
        LOG.addHandler(handler)
    LOG.setLevel(level)
    LOG.propagate = False
