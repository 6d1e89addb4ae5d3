from __future__ import annotations

from pathlib import Path

import pytest

from angioseg.data.arcade import arcade_search_paths, default_arcade_root


@pytest.fixture
def arcade() -> Path:
    """The ARCADE folder, read in place; the test skips where it is absent."""
    root = default_arcade_root()
    if root is None:
        where = ", ".join(str(p) for p in arcade_search_paths())
        pytest.skip(f"ARCADE data not found at {where}; set ANGIOSEG_ARCADE to the arcade-syntax folder")
    return root
