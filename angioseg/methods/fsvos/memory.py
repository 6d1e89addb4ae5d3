"""The bounded feature memory of the FSVOS propagation.

Each memory frame holds its key ``(Dk, h, w)`` and per-object values ``(O, Dv, h, w)``.

* Labelled frames are **permanent**: never evicted.
* A propagated frame becomes a **keyframe** (added with its predicted soft masks) every
  ``keyframe_every`` frames after the last frame added (r in the paper, default 6).
* At most ``capacity`` frames are held. Adding one more evicts a non-permanent frame:
  ``"oldest"`` (first in, first out) or ``"usage"`` (XMem-like: the frame whose keys drew the
  least affinity, averaged over the reads since it was added). Permanent frames alone may
  exceed the capacity (each labelled frame is kept).
* ``storage_dtype`` float16 halves the stored size; reads cast back to float32.

So memory is O(capacity) whatever the run's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from angioseg.errors import InputError

EVICTION_POLICIES = ("oldest", "usage")


@dataclass
class MemoryFrame:
    key: torch.Tensor  # (Dk, h, w)
    values: torch.Tensor  # (O, Dv, h, w)
    frame: int
    permanent: bool
    usage: float = 0.0
    reads: int = 0

    def mean_usage(self) -> float:
        return self.usage / self.reads if self.reads else float("inf")


class MemoryBank:
    """A bounded list of memory frames (module docstring) with stacked tensors for reading."""

    def __init__(self, *, capacity: int = 8, keyframe_every: int = 6, eviction: str = "oldest",
                 storage_dtype: torch.dtype = torch.float32) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InputError(f"memory capacity must be a positive number of frames; got {capacity!r}")
        if isinstance(keyframe_every, bool) or not isinstance(keyframe_every, int) or keyframe_every < 1:
            raise InputError(f"keyframe_every must be a positive number of frames; got {keyframe_every!r}")
        if eviction not in EVICTION_POLICIES:
            raise InputError(f"eviction must be one of {', '.join(EVICTION_POLICIES)}; got {eviction!r}")
        self.capacity = capacity
        self.keyframe_every = keyframe_every
        self.eviction = eviction
        self.storage_dtype = storage_dtype
        self.frames: list[MemoryFrame] = []
        self._since_added = 0
        self._stacked: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, key: torch.Tensor, values: torch.Tensor, *, frame: int, permanent: bool) -> None:
        """Store ``key (Dk, h, w)`` and ``values (O, Dv, h, w)`` of run frame `frame`; evict if full."""
        self.frames.append(MemoryFrame(key.detach().to(self.storage_dtype), values.detach().to(self.storage_dtype),
                                       frame, permanent))
        self._since_added = 0
        self._stacked = None
        while len(self.frames) > self.capacity and self._evict():
            pass

    def _evict(self) -> bool:
        candidates = [i for i, f in enumerate(self.frames) if not f.permanent and i != len(self.frames) - 1]
        if not candidates:
            return False
        if self.eviction == "usage":
            victim = min(candidates, key=lambda i: (self.frames[i].mean_usage(), self.frames[i].frame))
        else:
            victim = candidates[0]
        del self.frames[victim]
        self._stacked = None
        return True

    def wants_keyframe(self) -> bool:
        """Count one propagated frame; True when it is to be added as a keyframe (every r-th)."""
        self._since_added += 1
        return self._since_added >= self.keyframe_every

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``keys (1, K, Dk, h, w)`` and ``values (1, K, O, Dv, h, w)`` in float32 (cached until the memory changes)."""
        if not self.frames:
            raise InputError("the propagation memory is empty: give a labelled frame first")
        if self._stacked is None:
            keys = torch.stack([f.key for f in self.frames]).float().unsqueeze(0)
            values = torch.stack([f.values for f in self.frames]).float().unsqueeze(0)
            self._stacked = (keys, values)
        return self._stacked

    def record_usage(self, affinity: torch.Tensor) -> None:
        """Credit each frame with the affinity mass its elements drew: ``affinity (1, N, K·h·w)``
        from a global/masked read (per-query rows summing to 1)."""
        count = len(self.frames)
        if affinity.shape[-1] % count:
            return  # an unfold read (K·k² columns) cannot be split by frame position
        per_frame = affinity.reshape(affinity.shape[0], affinity.shape[1], count, -1).sum(-1).mean(dim=(0, 1))
        for memory_frame, mass in zip(self.frames, per_frame.tolist()):
            memory_frame.usage += mass
            memory_frame.reads += 1

    def nbytes(self) -> int:
        return sum(f.key.numel() * f.key.element_size() + f.values.numel() * f.values.element_size() for f in self.frames)
