from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def arcade_root() -> Path | None:
    """ARCADE in place: $ANGIOSEG_ARCADE, else ../shared/data/arcade-syntax beside the repo."""
    candidate = Path(os.environ.get("ANGIOSEG_ARCADE", REPO_ROOT.parent / "shared" / "data" / "arcade-syntax"))
    return candidate if (candidate / "val" / "images").is_dir() else None


@pytest.fixture
def arcade() -> Path:
    root = arcade_root()
    if root is None:
        pytest.skip("ARCADE data not found at ../shared/data/arcade-syntax (set ANGIOSEG_ARCADE to its folder)")
    return root
