"""Memory reading of space-time memory networks: global and local matching (pure torch).

A query frame's key ``q`` (D channels on an h × w grid, N = h·w elements) reads a memory of
K frames, each with a key map ``k`` (D, h, w) and a value map ``v`` (C, h, w) per object.

Similarity (STCN's negative squared L2 distance; the ``-|q_i|²`` term is the same for every
memory element of one query and cancels in the softmax, so it is left out)::

    S(j, i) = (2 k_j · q_i - |k_j|²) / sqrt(D)

Global matching (STCN): every query element i attends to all K·N memory elements,
``A(:, i) = softmax_j S(j, i)`` and the readout is ``F(:, i) = Σ_j A(j, i) v_j``.

Local matching (the FSVOS paper, Sec. 3.2): query element i attends, in each memory frame m,
only to the k × k window around a reference point ``p_m(i)``:

* ``reference="match"`` (Eq. 8-9): ``p_m(i) = pos(argmax_j S_m(j, i))``, the position of the
  best-matching key of frame m;
* ``reference="same"``: ``p_m(i) = i``, the query's own position (Focal/Slide attention).

The softmax runs over the union of the K windows (K·k² elements, fewer at the borders:
window positions outside the frame do not exist). ``top_k``: before the softmax only the
``top_k`` highest similarities of each query are kept (the paper filters its scores with a
top-k; STCN and XMem use the same filter on global affinities).

Three implementations give one output:

* `read_local_unfold`: the paper's direction-based sampling, literally (Eq. 6-7). ``F.unfold``
  turns each memory map into one column of k² shifted copies per position (one row per
  direction Δp of the grid R = {-k//2..k//2}², zero padded), and the column at the
  reference point is gathered for every query; invalid (padded) directions get -inf.
* `read_local_masked`: the global similarity matrix (one GEMM) with every element outside the
  query's window set to -inf (a separable bias: one add over rows, one over columns). Any
  reference point; the cost of global matching plus the bias.
* `read_local_tiled` (``reference="same"`` only): the query grid in tiles; a tile's queries
  are scored against the memory region their windows share (the tile grown by k//2), so the
  GEMMs, softmax and readout shrink from K·h·w to K·(tile + 2·(k//2))² elements per query.

``implementation="auto"`` takes the tiled path for same-position windows whose tile regions
are small against the grid (`tiles_pay_off`) and the masked path otherwise; building the k²-times larger unfolded matrices costs more than
either on a CPU (`benchmarks/fsvos.py` measures all of them).

Shapes: ``memory_keys (B, K, D, h, w)``, ``memory_values (B, K, O, C, h, w)`` (O objects share
one affinity, as in STCN), ``query (B, D, h, w)``; the readout is ``(B, O, C, h, w)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from angioseg.errors import InputError

Reference = Literal["match", "same"]
Implementation = Literal["auto", "tiled", "masked", "unfold", "global"]


@dataclass(frozen=True)
class MatchingConfig:
    """How a query reads the memory.

    Attributes:
        window: k, the side of the local window in feature pixels (odd, ≥ 1); None = global
            matching (every memory element).
        reference: "match" (the best-matching key's position, Eq. 8-9) or "same" (the
            query's position).
        top_k: keep only this many highest similarities per query before the softmax (None:
            all in the window).
        implementation: "tiled" (block-sparse, same-position windows), "masked" (global
            scores with a window bias, any reference), "unfold" (the paper's literal
            sampling), "global" (no window), or "auto" (tiled for reference "same", else
            masked, see `tiles_pay_off` and the module docstring).
    """

    window: int | None = 15
    reference: Reference = "match"
    top_k: int | None = None
    implementation: Implementation = "auto"

    def __post_init__(self) -> None:
        if self.window is not None and (isinstance(self.window, bool) or not isinstance(self.window, int)
                                        or self.window < 1 or self.window % 2 == 0):
            raise InputError(f"the matching window must be an odd number of feature pixels >= 1, or None; got {self.window!r}")
        if self.reference not in ("match", "same"):
            raise InputError(f"reference must be 'match' or 'same'; got {self.reference!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1):
            raise InputError(f"top_k must be a positive integer or None; got {self.top_k!r}")
        if self.implementation not in ("auto", "tiled", "masked", "unfold", "global"):
            raise InputError(f"implementation must be auto, tiled, masked, unfold or global; got {self.implementation!r}")
        if self.implementation == "tiled" and self.reference != "same":
            raise InputError("the tiled implementation reads windows around the query's own position: use reference='same'")


def similarity(memory_keys: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """S = (2 kᵀq - |k|²) / sqrt(D), queries as rows: ``memory_keys (B, D, M)``, ``query (B, D, N)``
    -> ``(B, N, M)`` (row i: query i against every memory element, contiguous for the softmax)."""
    dim = memory_keys.shape[1]
    key_norm = memory_keys.pow(2).sum(1).unsqueeze(1)  # (B, 1, M)
    scores = torch.baddbmm(key_norm, query.transpose(1, 2), memory_keys, beta=-1.0, alpha=2.0)
    return scores.div_(math.sqrt(dim))


def _filter_top_k(scores: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Scores ``(B, N, M)`` outside each row's ``top_k`` largest set to -inf."""
    if top_k is None or top_k >= scores.shape[-1]:
        return scores
    values, indices = torch.topk(scores, top_k, dim=-1)
    return torch.full_like(scores, float("-inf")).scatter_(-1, indices, values)


def reference_points(frame_scores: torch.Tensor, *, reference: Reference, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference point (row, column) of every query in every memory frame.

    ``frame_scores``: ``(B, N, K, N_m)`` similarities per memory frame (N_m = N = h·w);
    returns two ``(B, N, K)`` long tensors. "match": the argmax key's position (Eq. 8-9);
    "same": the query's own position.
    """
    batch, queries, frames, _ = frame_scores.shape
    if reference == "same":
        index = torch.arange(queries, device=frame_scores.device)[None, :, None].expand(batch, queries, frames)
    else:
        index = frame_scores.argmax(dim=-1)
    return torch.div(index, width, rounding_mode="floor"), index % width


def window_bias(rows: torch.Tensor, cols: torch.Tensor, *, height: int, width: int, window: int,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable window as additive biases: 0 inside, -inf outside.

    Memory element j = (y_j, x_j) lies in query i's window when |y_j - row_i| ≤ k//2 and
    |x_j - col_i| ≤ k//2; returns ``(B, N, K, h, 1)`` and ``(B, N, K, 1, w)`` biases whose
    broadcast sum is the ``(B, N, K, h, w)`` window mask (`rows`, `cols`: ``(B, N, K)``).
    """
    half = window // 2
    ys = torch.arange(height, device=rows.device)
    xs = torch.arange(width, device=rows.device)
    zero = torch.zeros((), dtype=dtype, device=rows.device)
    minus = torch.full((), float("-inf"), dtype=dtype, device=rows.device)
    row_bias = torch.where((ys - rows.unsqueeze(-1)).abs() <= half, zero, minus).unsqueeze(-1)
    col_bias = torch.where((xs - cols.unsqueeze(-1)).abs() <= half, zero, minus).unsqueeze(-2)
    return row_bias, col_bias


def _check_shapes(memory_keys: torch.Tensor, memory_values: torch.Tensor, query: torch.Tensor) -> None:
    if memory_keys.ndim != 5 or memory_values.ndim != 6 or query.ndim != 4:
        raise InputError(
            "memory keys (B, K, D, h, w), values (B, K, O, C, h, w) and query (B, D, h, w) expected; got "
            f"{tuple(memory_keys.shape)}, {tuple(memory_values.shape)}, {tuple(query.shape)}"
        )
    b, k, d, h, w = memory_keys.shape
    if query.shape != (b, d, h, w) or memory_values.shape[:2] != (b, k) or memory_values.shape[-2:] != (h, w):
        raise InputError(
            f"memory keys {tuple(memory_keys.shape)}, values {tuple(memory_values.shape)} and query "
            f"{tuple(query.shape)} do not fit together"
        )
    if k < 1:
        raise InputError("the memory is empty: label a frame first")


def _flat_keys(memory_keys: torch.Tensor) -> torch.Tensor:
    """``(B, K, D, h, w)`` -> ``(B, D, K·h·w)`` (memory element index = frame·h·w + position)."""
    b, k, d, h, w = memory_keys.shape
    return memory_keys.permute(0, 2, 1, 3, 4).reshape(b, d, k * h * w)


def _readout(affinity: torch.Tensor, memory_values: torch.Tensor) -> torch.Tensor:
    """``affinity (B, N, K·h·w)`` and ``memory_values (B, K, O, C, h, w)`` -> ``(B, O, C, h, w)``."""
    b, k, o, c, h, w = memory_values.shape
    values = memory_values.permute(0, 2, 3, 1, 4, 5).reshape(b, o * c, k * h * w)
    return torch.bmm(values, affinity.transpose(1, 2)).view(b, o, c, h, w)


def read_global(memory_keys: torch.Tensor, memory_values: torch.Tensor, query: torch.Tensor, *,
                top_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Global matching (STCN): returns (readout ``(B, O, C, h, w)``, affinity ``(B, N, K·h·w)``)."""
    _check_shapes(memory_keys, memory_values, query)
    b, k, d, h, w = memory_keys.shape
    scores = _filter_top_k(similarity(_flat_keys(memory_keys), query.reshape(b, d, h * w)), top_k)
    affinity = torch.softmax(scores, dim=-1)
    return _readout(affinity, memory_values), affinity


def read_local_masked(memory_keys: torch.Tensor, memory_values: torch.Tensor, query: torch.Tensor, *,
                      window: int, reference: Reference = "match", top_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Local matching through the global similarity and a window bias (module docstring).

    Returns (readout ``(B, O, C, h, w)``, affinity ``(B, N, K·h·w)``, zero outside the windows).
    """
    _check_shapes(memory_keys, memory_values, query)
    b, k, d, h, w = memory_keys.shape
    n = h * w
    scores = similarity(_flat_keys(memory_keys), query.reshape(b, d, n))  # (B, N, K·N)
    rows, cols = reference_points(scores.view(b, n, k, n), reference=reference, width=w)
    row_bias, col_bias = window_bias(rows, cols, height=h, width=w, window=window, dtype=scores.dtype)
    scores.view(b, n, k, h, w).add_(row_bias).add_(col_bias)
    affinity = torch.softmax(_filter_top_k(scores, top_k), dim=-1)
    return _readout(affinity, memory_values), affinity


def _unfold_columns(maps: torch.Tensor, window: int) -> torch.Tensor:
    """Direction-based sampling (Eq. 6-7): ``(B', C, h, w)`` -> ``(B', C, k², h·w)``; entry
    [:, :, j, p] = maps[:, :, p + Δp(j)] (zero outside the frame), Δp(j) row-major over R."""
    b, c, h, w = maps.shape
    columns = F.unfold(maps, kernel_size=window, padding=window // 2)  # (B', C·k², h·w)
    return columns.view(b, c, window * window, h * w)


def read_local_unfold(memory_keys: torch.Tensor, memory_values: torch.Tensor, query: torch.Tensor, *,
                      window: int, reference: Reference = "match", top_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Local matching by the paper's unfold sampling (module docstring); slow, the reference.

    Returns (readout ``(B, O, C, h, w)``, affinity over the sampled elements ``(B, N, K·k²)``).
    """
    _check_shapes(memory_keys, memory_values, query)
    b, k, d, h, w = memory_keys.shape
    o, c = memory_values.shape[2:4]
    n, taps = h * w, window * window
    flat_query = query.reshape(b, d, n)
    keys_flat = memory_keys.reshape(b * k, d, h, w)
    frame_scores = similarity(keys_flat.view(b * k, d, n), flat_query.repeat_interleave(k, dim=0))  # (B·K, N, N_m)
    frame_scores = frame_scores.view(b, k, n, n).transpose(1, 2)  # (B, N, K, N_m)
    rows, cols = reference_points(frame_scores, reference=reference, width=w)  # (B, N, K)
    centre = (rows * w + cols).transpose(1, 2).reshape(b * k, 1, 1, n)  # the column each query reads
    key_columns = _unfold_columns(keys_flat, window)  # (B·K, D, k², N)
    valid = _unfold_columns(torch.ones(b * k, 1, h, w, dtype=query.dtype, device=query.device), window) > 0.5
    sampled_keys = key_columns.gather(3, centre.expand(-1, d, taps, -1))  # (B·K, D, k², N)
    sampled_valid = valid.gather(3, centre.expand(-1, 1, taps, -1))[:, 0]  # (B·K, k², N)
    query_k = flat_query.repeat_interleave(k, dim=0).unsqueeze(2)  # (B·K, D, 1, N)
    scores = (2.0 * (sampled_keys * query_k).sum(1) - sampled_keys.pow(2).sum(1)) / math.sqrt(d)
    scores = scores.masked_fill(~sampled_valid, float("-inf"))  # (B·K, k², N)
    scores = scores.view(b, k * taps, n).transpose(1, 2)  # (B, N, K·k²)
    affinity = torch.softmax(_filter_top_k(scores, top_k), dim=-1)
    value_columns = _unfold_columns(memory_values.reshape(b * k, o * c, h, w), window)
    sampled_values = value_columns.gather(3, centre.expand(-1, o * c, taps, -1))  # (B·K, O·C, k², N)
    sampled_values = sampled_values.view(b, k, o * c, taps, n).permute(0, 2, 1, 3, 4).reshape(b, o * c, k * taps, n)
    readout = (sampled_values * affinity.transpose(1, 2).unsqueeze(1)).sum(2)
    return readout.view(b, o, c, h, w), affinity


def _tile_grid(height: int, width: int, tile: int) -> tuple[int, int]:
    """Rows and columns of `tile`-sized tiles covering an h × w grid (the last ones padded)."""
    return -(-height // tile), -(-width // tile)


def _regions(maps: torch.Tensor, *, tile: int, half: int, padded: tuple[int, int]) -> torch.Tensor:
    """``(B', C, h, w)`` -> ``(B', C, R², L)``: for each of the L tiles (row-major), the R × R
    region (R = tile + 2·half) of the map around it, zero outside the map."""
    b, c, h, w = maps.shape
    grown = F.pad(maps, (half, half + padded[1] - w, half, half + padded[0] - h))
    side = tile + 2 * half
    return F.unfold(grown, kernel_size=side, stride=tile).view(b, c, side * side, -1)


def _window_in_region(tile: int, half: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(tile², R²)`` bias, 0 where region element (ry, rx) lies in the window of tile query
    (qy, qx) — 0 ≤ ry − qy ≤ 2·half and 0 ≤ rx − qx ≤ 2·half — and -inf elsewhere. The same
    for every tile, since a region starts `half` pixels before its tile."""
    side = tile + 2 * half
    q = torch.arange(tile, device=device)
    r = torch.arange(side, device=device)
    offset = r[None, :] - q[:, None]  # (tile, R)
    inside_1d = (offset >= 0) & (offset <= 2 * half)
    inside = inside_1d[:, None, :, None] & inside_1d[None, :, None, :]  # (qy, qx, ry, rx)
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(inside, zero, torch.full((), float("-inf"), dtype=dtype, device=device)).view(tile * tile, side * side)


def read_local_tiled(memory_keys: torch.Tensor, memory_values: torch.Tensor, query: torch.Tensor, *,
                     window: int, tile: int = 8, top_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Local matching around the query's own position (``reference="same"``), block-sparse.

    The query grid is cut into ``tile × tile`` tiles. Every query of a tile has its window
    inside the same memory region, the tile grown by k//2 on each side (R = tile + 2·(k//2)),
    so one small GEMM per tile scores the tile's queries against the K·R² region elements;
    elements outside a query's own window get -inf (one bias, the same for every tile) and
    elements outside the frame -inf too. The softmax and readout then run over K·R² elements
    instead of K·h·w: for k = 7 and tile 8 on a 32 × 32 grid, 196 instead of 1024 per frame.
    The output equals `read_local_masked` with ``reference="same"`` (same window, same -inf
    elements, so the same softmax).

    Returns (readout ``(B, O, C, h, w)``, affinity ``(B, N, K·R²)``: for each query, frame by
    frame, the elements of its tile's region in row-major order; zero outside its window).
    """
    _check_shapes(memory_keys, memory_values, query)
    if tile < 1:
        raise InputError(f"the matching tile must be >= 1 feature pixel; got {tile}")
    b, k, d, h, w = memory_keys.shape
    o, c = memory_values.shape[2:4]
    half = window // 2
    side = tile + 2 * half
    rows, cols = _tile_grid(h, w, tile)
    padded, tiles, area = (rows * tile, cols * tile), rows * cols, side * side
    key_regions = _regions(memory_keys.reshape(b * k, d, h, w), tile=tile, half=half, padded=padded)
    key_regions = key_regions.view(b, k, d, area, tiles).permute(0, 4, 2, 1, 3).reshape(b * tiles, d, k * area)
    inside = _regions(torch.ones(1, 1, h, w, dtype=query.dtype, device=query.device), tile=tile, half=half, padded=padded)
    frame_bias = torch.zeros_like(inside).masked_fill_(inside < 0.5, float("-inf"))[0, 0]  # (R², L)
    grid_query = F.pad(query, (0, padded[1] - w, 0, padded[0] - h))
    tile_queries = F.unfold(grid_query, kernel_size=tile, stride=tile).view(b, d, tile * tile, tiles)
    tile_queries = tile_queries.permute(0, 3, 2, 1).reshape(b * tiles, tile * tile, d)
    key_norm = key_regions.pow(2).sum(1, keepdim=True)  # (B·L, 1, K·R²)
    scores = torch.baddbmm(key_norm, tile_queries, key_regions, beta=-1.0, alpha=2.0).div_(math.sqrt(d))
    scores = scores.view(b, tiles, tile * tile, k, area)
    scores.add_(_window_in_region(tile, half, dtype=scores.dtype, device=scores.device)[None, None, :, None, :])
    scores.add_(frame_bias.t()[None, :, None, None, :])
    affinity = torch.softmax(_filter_top_k(scores.view(b * tiles, tile * tile, k * area), top_k), dim=-1)
    value_regions = _regions(memory_values.reshape(b * k, o * c, h, w), tile=tile, half=half, padded=padded)
    value_regions = value_regions.view(b, k, o * c, area, tiles).permute(0, 4, 2, 1, 3).reshape(b * tiles, o * c, k * area)
    readout = torch.bmm(value_regions, affinity.transpose(1, 2))  # (B·L, O·C, tile²)
    readout = readout.view(b, tiles, o * c * tile * tile).transpose(1, 2)
    readout = F.fold(readout, output_size=padded, kernel_size=tile, stride=tile)[..., :h, :w]
    affinity = affinity.view(b, rows, cols, tile, tile, k * area).permute(0, 1, 3, 2, 4, 5)
    affinity = affinity.reshape(b, padded[0], padded[1], k * area)[:, :h, :w].reshape(b, h * w, k * area)
    return readout.reshape(b, o, c, h, w), affinity


#: Tile side of `read_local_tiled` when `read_memory` picks it.
TILE = 8


def tiles_pay_off(grid: tuple[int, int] | torch.Size, window: int, tile: int = TILE) -> bool:
    """Whether `auto` reads same-position windows by tiles: when a tile's region, (tile +
    2·(k//2))², is at most a quarter of the h × w grid. Measured at 512² (32 × 32 grid):
    k = 7 (196 of 1024 elements) is faster tiled, k = 15 (484) faster masked."""
    side = tile + 2 * (window // 2)
    return 4 * side * side <= int(grid[0]) * int(grid[1])


def read_memory(memory_keys: torch.Tensor, memory_values: torch.Tensor, query: torch.Tensor,
                config: MatchingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the memory as `config` says; returns (readout ``(B, O, C, h, w)``, affinity).

    The affinity is ``(B, N, M)``: one row per query element, summing to 1 over the memory
    elements (M = K·h·w for the global and masked paths, K·k² for the unfold path).
    """
    if config.window is None or config.implementation == "global":
        return read_global(memory_keys, memory_values, query, top_k=config.top_k)
    if config.implementation == "unfold":
        return read_local_unfold(memory_keys, memory_values, query, window=config.window,
                                 reference=config.reference, top_k=config.top_k)
    if config.implementation == "tiled" or (config.implementation == "auto" and config.reference == "same"
                                             and tiles_pay_off(memory_keys.shape[-2:], config.window)):
        return read_local_tiled(memory_keys, memory_values, query, window=config.window, top_k=config.top_k)
    return read_local_masked(memory_keys, memory_values, query, window=config.window,
                             reference=config.reference, top_k=config.top_k)
