"""`angioseg serve` end to end in headless Chromium (Playwright's Python package, the system's
/usr/bin/chromium; no browser download): open a phantom run from the root browser, play it, run a
method, brush a few pixels on a frame, propagate, download the masks and compare them with the
server's, upload a run. The page must make no request to another host and raise no script error.

Screenshots go to the test's temporary folder; with ANGIOSEG_UPDATE_DOCS=1 the run is larger
and two of them are copied to docs/images/serve_segment.png and docs/images/serve_propagate.png.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"
UPDATE_DOCS = os.environ.get("ANGIOSEG_UPDATE_DOCS") == "1"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install -e .)")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (scripts/setup.sh installs it with apt-get where it can)", allow_module_level=True)

from angioseg.serve import create_app  # noqa: E402
from serve_helpers import live_server, write_run  # noqa: E402

SIZE, FRAMES = (256, 12) if UPDATE_DOCS else (96, 8)


@pytest.fixture
def browser_page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 860}, accept_downloads=True)
        finally:
            browser.close()


def image_point(page, x: int, y: int) -> tuple[float, float]:
    """The page coordinates of pixel (x, y) of the frame while the view is fitted."""
    box = page.locator("#canvas").bounding_box()
    scale = min(box["width"] / SIZE, box["height"] / SIZE)
    left = box["x"] + (box["width"] - SIZE * scale) / 2
    top = box["y"] + (box["height"] - SIZE * scale) / 2
    return left + (x + 0.5) * scale, top + (y + 0.5) * scale


def brush(page, points: list[tuple[int, int]]) -> None:
    page.mouse.move(*image_point(page, *points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*image_point(page, *point), steps=4)
    page.mouse.up()


def zip_labels(path: Path) -> np.ndarray:
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        return np.stack([np.array(Image.open(io.BytesIO(archive.read(name)))) for name in names])


def test_open_segment_brush_propagate_download(tmp_path, browser_page):
    expect = sync_api.expect
    write_run(tmp_path / "root", "run.npz", size=SIZE, frames=FRAMES)
    app = create_app(tmp_path / "root", max_upload_bytes=10**8)
    workspace = app.state.workspace
    page = browser_page
    problems: list[str] = []
    with live_server(app) as url:
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("request", lambda request: None if request.url.startswith((url, "blob:", "data:"))
                else problems.append(f"request to another host: {request.url}"))
        page.goto(url)

        page.click("#browse-list [data-path='run.npz']")
        expect(page.locator("#frame-label")).to_have_text(f"1 / {FRAMES}")
        page.keyboard.press("Space")
        expect(page.locator("#frame-label")).not_to_have_text(f"1 / {FRAMES}")
        page.keyboard.press("Space")

        page.select_option("#method-select", "cenet")
        page.click("#run-method")
        expect(page.locator("#result-list li")).to_have_count(1, timeout=30_000)
        run = workspace.runs()[0]
        segmented = next(iter(run.results))

        frame = FRAMES // 2  # the contrast is well in by mid-run
        page.locator("#frame-slider").fill(str(frame))
        expect(page.locator("#frame-label")).to_have_text(f"{frame + 1} / {FRAMES}")
        page.click("#tool-brush")
        stroke = [(SIZE * 4 // 10, SIZE * 6 // 10), (SIZE // 2, SIZE * 62 // 100), (SIZE * 55 // 100, SIZE * 6 // 10)]
        brush(page, stroke)
        expect(page.locator("#annotated-frames")).to_have_text(str(frame))
        annotation = workspace.annotation(run.id, frame)
        for x, y in stroke:
            assert annotation[y, x] == 1
        started_from = workspace.result(run.id, segmented)[1].segmentation.masks.labels[frame]
        assert (annotation >= started_from).all()  # the stroke was added to the result's frame
        page.screenshot(path=str(tmp_path / "serve_segment.png"))

        page.click("#propagate")
        expect(page.locator("#result-list li")).to_have_count(2, timeout=30_000)
        page.click("#tool-pan")
        propagated_id = list(run.results)[-1]
        propagated = run.results[propagated_id].segmentation
        assert propagated.confidence is not None and np.array_equal(propagated.masks.labels[frame], annotation)
        page.wait_for_timeout(300)
        page.screenshot(path=str(tmp_path / "serve_propagate.png"))

        with page.expect_download() as download:
            page.click("[data-download='masks.zip']")
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        assert propagated_id in path.name
        assert np.array_equal(zip_labels(path), propagated.masks.labels)

        page.set_input_files("#upload-input", str(tmp_path / "root" / "run.npz"))
        expect(page.locator("#run-list li")).to_have_count(2, timeout=30_000)
        expect(page.locator("#run-title")).to_contain_text(f"run.npz · {FRAMES} frames")
        assert [r.uploaded for r in workspace.runs()] == [False, True]
    assert not problems, problems
    if UPDATE_DOCS:
        for name in ("serve_segment.png", "serve_propagate.png"):
            save_for_docs(tmp_path / name, DOCS / name)


def save_for_docs(source: Path, target: Path) -> None:
    """A screenshot as a 256-colour PNG (a third of the size), written atomically."""
    from angioseg.io.atomic import atomic_file

    with atomic_file(target) as tmp:
        Image.open(source).convert("RGB").quantize(256).save(tmp, format="PNG", optimize=True)
