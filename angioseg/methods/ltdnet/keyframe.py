"""Key-frame selection and the classic motion images of DSA-LTDNet (the paper's Sec. 2.1-2.2).

Frames are a run's `(T, H, W)` float array in the `angioseg.types.Video` convention (values in
[0, 1]); every image below is in those same units.

**Key frame** (Sec. 2.1). Over the last ``W = 15`` frames of the run (indices ``T-W .. T-1``)::

    D_i = Σ_x |F_{i+1}(x) − F_i(x)|           for the W − 1 adjacent pairs i = T−W .. T−2
    S_i = (D_{i−1} + D_i) / 2                 for the frames with a difference on both sides
    k   = argmin_i S_i

*Boundary rule*: only frames with a difference on both sides inside the window are
candidates, i.e. ``i = T−W+1 .. T−2`` (13 candidates for W = 15); the window's first frame
(no difference before it inside the window) and the run's last frame (none after it) are not.
*Ties* go to the earliest candidate (``numpy.argmin``). A run needs at least `MIN_FRAMES` = 15
frames (the window); fewer is an `InputError` saying so.

**Frame difference** (Sec. 2.2, the TDL's supervision and the FD input)::

    FD = F_k − F_{max(k − s, 0)}              s = `step`, 9 in the paper (its sweep: 5, 7, 9, 11, 13)

Sign: the key frame minus the earlier frame, so whatever grew darker between them (contrast
arriving, in the `Video` convention where contrast is dark) is negative. When ``k − s < 0`` the
earlier frame is clamped to the run's first frame (frame 0).

**Background subtraction** (Table 2's "BS"): ``BS = F_k − median(F_0 .. F_{n−1})``, the key frame
minus the pixel-wise median of the run's first ``n = 3`` frames (`BACKGROUND_FRAMES`), i.e. of
the frames before the contrast has reached the liver in a run started at injection.

**TDL window** (Sec. 2.2): the `TDL_FRAMES` = 10 consecutive frames ending at the key frame,
``F_{k−9} .. F_k`` in time order; ``k < 9`` is an `InputError` (no clamping: the network was
trained on ten distinct frames).

**Optical flow** (Table 2's "OF"): DIS (`angioseg.flow.dis_flow`) between frames ``k − s`` and
``k``, on the key frame's grid: ``f = dis_flow(F_k, F_{k−s})``, so ``F_k(x) ≈ F_{k−s}(x + f(x))``;
two channels (dx, dy) in pixels.
"""

from __future__ import annotations

import numpy as np

from angioseg.errors import InputError

#: Frames at the end of a run among which the key frame is chosen (the paper's "last 15 frames").
SELECTION_WINDOW = 15
#: Frames the TDL reads: the key frame and the 9 before it.
TDL_FRAMES = 10
#: The frame-difference step of the paper (FD between frames k − 9 and k).
DEFAULT_STEP = 9
#: The steps of the paper's sweep.
PAPER_STEPS = (5, 7, 9, 11, 13)
#: Frames at the start of a run whose median is the background of "BS".
BACKGROUND_FRAMES = 3
#: The fewest frames a run may have: the selection window.
MIN_FRAMES = SELECTION_WINDOW


def _frames(frames: np.ndarray) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(f"a run must be a (T, H, W) array of frames; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
    return array


def check_run_length(count: int, *, window: int = SELECTION_WINDOW) -> None:
    """`InputError` unless a run of `count` frames is long enough for the key-frame selection."""
    if count < window:
        raise InputError(f"DSA-LTDNet needs at least {window} frames (the key frame is chosen among the last "
                         f"{window}); this run has {count}")


def adjacent_differences(frames: np.ndarray) -> np.ndarray:
    """``D_i = Σ_x |F_{i+1} − F_i|`` for every adjacent pair: `(T, H, W)` -> `(T − 1,)` float64."""
    array = _frames(frames)
    out = np.empty(max(array.shape[0] - 1, 0), np.float64)
    for i in range(out.size):
        out[i] = np.abs(array[i + 1].astype(np.float64) - array[i]).sum()
    return out


def key_frame_scores(frames: np.ndarray, *, window: int = SELECTION_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """The candidates and their scores (module docstring).

    Args:
        frames: `(T, H, W)`, T ≥ `window`.
        window: frames at the end of the run that are looked at (≥ 3).
    Returns:
        ``(indices, scores)``: the candidate frame indices ``T−W+1 .. T−2`` (int, ascending) and
        ``S_i = (D_{i−1} + D_i) / 2`` for each (float64).
    """
    array = _frames(frames)
    if isinstance(window, bool) or not isinstance(window, int) or window < 3:
        raise InputError(f"the selection window must be an integer >= 3; got {window!r}")
    count = array.shape[0]
    check_run_length(count, window=window)
    start = count - window
    differences = adjacent_differences(array[start:])  # D over the window: pairs start .. count−2
    scores = 0.5 * (differences[:-1] + differences[1:])  # frame start+1+j sits between D_j and D_{j+1}
    return np.arange(start + 1, count - 1), scores


def select_key_frame(frames: np.ndarray, *, window: int = SELECTION_WINDOW) -> int:
    """The key frame's index in the run: the candidate of least mean adjacent difference."""
    indices, scores = key_frame_scores(frames, window=window)
    return int(indices[int(np.argmin(scores))])


def _check_key(count: int, key: int) -> int:
    if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= int(key) < count:
        raise InputError(f"key frame {key!r} is outside a run of {count} frames")
    return int(key)


def _check_step(step: int) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise InputError(f"the frame-difference step must be a positive integer; got {step!r}")
    return int(step)


def earlier_frame(key: int, step: int = DEFAULT_STEP) -> int:
    """``max(key − step, 0)``: the frame the key frame is compared with."""
    return max(int(key) - _check_step(step), 0)


def frame_difference(frames: np.ndarray, key: int, step: int = DEFAULT_STEP) -> np.ndarray:
    """``FD = F_k − F_{max(k − step, 0)}``: `(T, H, W)` -> `(H, W)` float32 (module docstring)."""
    array = _frames(frames)
    key = _check_key(array.shape[0], key)
    return (array[key].astype(np.float32) - array[earlier_frame(key, step)]).astype(np.float32)


def background_subtraction(frames: np.ndarray, key: int, *, background_frames: int = BACKGROUND_FRAMES) -> np.ndarray:
    """``BS = F_k − median(F_0 .. F_{n−1})``: `(T, H, W)` -> `(H, W)` float32, n = `background_frames`
    (at most the frames before the key frame, at least one)."""
    array = _frames(frames)
    key = _check_key(array.shape[0], key)
    n = max(1, min(int(background_frames), key))
    return (array[key].astype(np.float32) - np.median(array[:n], axis=0)).astype(np.float32)


def tdl_window(frames: np.ndarray, key: int, *, count: int = TDL_FRAMES) -> np.ndarray:
    """The `count` consecutive frames ending at the key frame, ``F_{k−count+1} .. F_k``:
    `(T, H, W)` -> `(count, H, W)`; `InputError` when the run has fewer before the key frame."""
    array = _frames(frames)
    key = _check_key(array.shape[0], key)
    if key + 1 < count:
        raise InputError(f"the TDL needs the {count} consecutive frames ending at the key frame; the key frame is "
                         f"frame {key}, so the run has only {key + 1} up to it")
    return array[key - count + 1 : key + 1]


def flow_between(frames: np.ndarray, key: int, step: int = DEFAULT_STEP, *, preset: str = "medium") -> np.ndarray:
    """DIS flow on the key frame's grid towards frame ``max(k − step, 0)``: `(2, H, W)` float32
    (dx, dy) in pixels, ``F_k(x) ≈ F_{k−s}(x + f(x))``."""
    from angioseg.flow import dis_flow

    array = _frames(frames)
    key = _check_key(array.shape[0], key)
    flow = dis_flow(array[key], array[earlier_frame(key, step)], preset=preset)
    return np.ascontiguousarray(flow.transpose(2, 0, 1)).astype(np.float32)
