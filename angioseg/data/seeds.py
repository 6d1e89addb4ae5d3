"""Deterministic per-item seeds derived from one user seed."""

from __future__ import annotations

import numpy as np


def derive_seed(seed: int, index: int) -> int:
    """A 31-bit seed for item `index` of a run started with `seed` (independent streams).

    Uses NumPy's SeedSequence on the pair (seed, index), so item 3 of seed 0 is the same
    whether 4 or 400 items are generated.
    """
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0] >> 1)
