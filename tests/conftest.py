from __future__ import annotations

import os
from pathlib import Path

import pytest

from angioseg.data.arcade import ARCADE_ENV_VAR, arcade_search_paths, default_arcade_root

#: The shared data beside the repository, read in place where it exists (never copied).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if (SHARED_DATA / "arcade-syntax").is_dir():
    os.environ.setdefault(ARCADE_ENV_VAR, str(SHARED_DATA / "arcade-syntax"))


@pytest.fixture
def arcade() -> Path:
    """The ARCADE folder, read in place; the test skips where it is absent."""
    root = default_arcade_root()
    if root is None:
        where = ", ".join(str(p) for p in arcade_search_paths()) or f"{ARCADE_ENV_VAR} unset"
        pytest.skip(f"ARCADE data not found ({where}); set {ARCADE_ENV_VAR} to the arcade-syntax folder")
    return root
