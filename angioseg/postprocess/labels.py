"""Per-class probabilities and label maps.

A method's probabilities are `(T, C, H, W)`: channel c is the probability of the c-th id of
the label table in increasing order (channel 0 = background, id 0). The foreground
probability is the sum of the non-background channels,

    p_fg = Σ_{c ≥ 1} P_c,

and a pixel's label is the most probable foreground class where p_fg ≥ threshold, else 0.
For two classes this is exactly ``labels = (P_1 >= threshold)``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from angioseg.errors import InputError

__all__ = ["foreground_probability", "labels_from_probabilities", "one_hot_probabilities"]


def foreground_probability(class_probabilities: np.ndarray) -> np.ndarray:
    """`(T, H, W)` float32 Σ_{c ≥ 1} P_c of `(T, C, H, W)` probabilities (exactly P_1 when C = 2)."""
    probabilities = np.asarray(class_probabilities)
    if probabilities.ndim != 4 or probabilities.shape[1] < 2:
        raise InputError(f"class probabilities must be (T, C, H, W) with C >= 2; got shape {probabilities.shape}")
    if probabilities.shape[1] == 2:
        return probabilities[:, 1].astype(np.float32, copy=False)
    return probabilities[:, 1:].sum(axis=1, dtype=np.float32)


def labels_from_probabilities(class_probabilities: np.ndarray, label_table: Mapping[int, str], *, threshold: float) -> np.ndarray:
    """`(T, H, W)` uint8/uint16 labels (module docstring): the most probable foreground class
    where the foreground probability reaches `threshold`, else 0."""
    probabilities = np.asarray(class_probabilities)
    ids = sorted(int(k) for k in label_table)
    if probabilities.ndim != 4 or probabilities.shape[1] != len(ids):
        raise InputError(f"class probabilities {probabilities.shape} do not match the {len(ids)} labels of the table (T, C, H, W)")
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold must lie in (0, 1); got {threshold}")
    dtype = np.uint8 if ids[-1] < 256 else np.uint16
    foreground = foreground_probability(probabilities) >= threshold
    if len(ids) == 2:
        return (foreground * ids[1]).astype(dtype)
    best = np.asarray(ids[1:], dtype=dtype)[np.argmax(probabilities[:, 1:], axis=1)]
    return np.where(foreground, best, 0).astype(dtype)


def one_hot_probabilities(labels: np.ndarray, label_table: Mapping[int, str]) -> np.ndarray:
    """`(..., C, H, W)` float32 one-hot probabilities of integer `labels` `(..., H, W)` (channel
    order: the table's ids in increasing order)."""
    ids = sorted(int(k) for k in label_table)
    array = np.asarray(labels)
    unknown = set(np.unique(array).tolist()) - set(ids)
    if unknown:
        raise InputError(f"labels {sorted(unknown)} are not in the label table {ids}")
    return np.stack([(array == i).astype(np.float32) for i in ids], axis=-3)
