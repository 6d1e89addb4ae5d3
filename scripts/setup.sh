#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv. Idempotent: a second run
# installs nothing unless pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python_bin" -m venv .venv
fi
# The CPU wheel of torch 2.13.0 is what this project is developed and tested with; any
# looser specification may pull the multi-gigabyte CUDA build, so it is installed first.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
stamp=.venv/.angioseg-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    touch "$stamp"
fi
# dciodvfy (Debian's dicom3tools) validates the DICOM SEG objects in tests/test_dicom_seg.py,
# which skip without it. Best effort: installed only where absent and apt-get is usable (root);
# the package lists are refreshed only when a first install fails. Setup never fails here.
if ! command -v dciodvfy >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dicom3tools >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dicom3tools >/dev/null 2>&1; } \
        || echo "setup: dicom3tools (dciodvfy) not installed; the DICOM SEG validation tests will skip" >&2
fi
# Chromium drives the browser test of `angioseg serve` (tests/test_serve_browser.py, through
# Playwright's Python package; no browser download), which skips without it. Best effort:
# installed only where /usr/bin/chromium is absent and apt-get is usable (root); the package
# lists are refreshed only when a first install fails. Setup never fails here.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; } \
        || echo "setup: chromium not installed; the browser test of angioseg serve will skip" >&2
fi
