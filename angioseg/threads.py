"""How many threads angioseg's numeric libraries use: one decision for torch, BLAS and OpenCV.

torch (its OpenMP pool, and MKL inside it), numpy's BLAS and OpenCV each start one thread per
core by default. On a workstation where another program keeps a core busy that is the worst
choice: an OpenMP parallel region ends when its slowest thread does, and the thread that
shares a core with the other program gets half of it at best, so every region waits for it
(while the other threads spin). `apply_threads` is the one entry point that sets all three;
`default_threads` is the policy it uses when the user gives no ``--threads``: as many threads
as there are idle cores right now, read from ``/proc/stat``.

Nothing here imports torch or OpenCV at module level (`apply_threads` imports them when called).

``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep instead of spinning while they wait; it must
be set before torch is imported) was measured and is deliberately NOT set. On the 2-core
development VM, 16 frames of 512², best of 3, each run started on an idle machine (two or three
runs each), angioseg's Frangi in ms/frame and the default supervised model (cenet3d2d-n2, folded,
torch) in frames/s; "busy" is a Python busy loop pinned to one core:

=======================  ============  ============  ============  ============
                         quiet, 2 thr  quiet, 1 thr  busy, 2 thr   busy, 1 thr
=======================  ============  ============  ============  ============
spin-waiting (default)   19-22 ms      32-35 ms      72-74 ms      32-34 ms
                         34-38 fps     19-21 fps     9.5-12 fps    18-20 fps
OMP_WAIT_POLICY=PASSIVE  36-40 ms      -             36-37 ms      34-35 ms
                         17-19 fps     -             16-20 fps     15-20 fps
=======================  ============  ============  ============  ============

PASSIVE rescues two threads on a busy core, but only to the one-thread speed, and it costs up
to half the two-thread speed on a quiet machine (each wake-up of a sleeping worker); the policy
below already runs one thread when a core is busy, where the wait policy makes no difference.
(Three threads on the busy machine: 41 ms, 19-20 fps; no better than one.) Users can still set
the variable themselves.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from angioseg.errors import InputError

__all__ = [
    "apply_threads",
    "available_cores",
    "cpu_times",
    "default_threads",
    "idle_between",
    "idle_cores",
    "worker_threads",
]

PROC_STAT = Path("/proc/stat")

#: The threadpoolctl limiter that holds BLAS at the applied count; kept so that it lives as long
#: as the process (threadpoolctl restores the original limits only when asked to).
_blas_limiter: Any = None


def available_cores() -> int:
    """The number of CPUs this process may run on.

    The affinity mask (``os.sched_getaffinity``, set by ``taskset``, cgroup cpusets, job
    schedulers) where the platform has one, else ``os.cpu_count()``; at least 1. CPU *quotas*
    (cgroup ``cpu.max``, ``docker --cpus``) are not read.
    """
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def _affinity() -> set[int] | None:
    if hasattr(os, "sched_getaffinity"):
        try:
            return set(os.sched_getaffinity(0))
        except OSError:
            return None
    return None


def cpu_times(text: str) -> dict[int, tuple[int, int]]:
    """Per-CPU ``(idle ticks, total ticks)`` from the text of ``/proc/stat``.

    Only the ``cpuN`` lines count (the aggregate ``cpu`` line is skipped). Idle is ``idle +
    iowait``; total is ``user + nice + system + idle + iowait + irq + softirq + steal`` (``guest``
    and ``guest_nice`` are already inside ``user`` and ``nice``). Lines that do not parse are
    skipped, so older kernels with fewer columns still work.
    """
    times: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or not fields[0].startswith("cpu") or not fields[0][3:].isdigit():
            continue
        try:
            values = [int(v) for v in fields[1:9]]
        except ValueError:
            continue
        if len(values) < 4:
            continue
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        times[int(fields[0][3:])] = (idle, sum(values))
    return times


def idle_between(before: str, after: str, *, cpus: Iterable[int] | None = None) -> float:
    """How many CPUs were idle between two readings of ``/proc/stat`` (pure; no I/O).

    Each CPU contributes its idle fraction ``Δidle / Δtotal`` over the interval (1.0 when no tick
    elapsed on it), summed over `cpus` (default: every ``cpuN`` in both texts; CPUs missing from
    either text are skipped). Returns NaN when no CPU could be compared.
    """
    first, second = cpu_times(before), cpu_times(after)
    wanted = set(first) & set(second) if cpus is None else set(cpus) & set(first) & set(second)
    if not wanted:
        return math.nan
    idle = 0.0
    for cpu in wanted:
        d_idle = second[cpu][0] - first[cpu][0]
        d_total = second[cpu][1] - first[cpu][1]
        idle += 1.0 if d_total <= 0 else min(1.0, max(0.0, d_idle / d_total))
    return idle


def idle_cores(*, sample_seconds: float = 0.1) -> float:
    """How many of this process's CPUs are idle now (a float in ``[0, available_cores()]``).

    Reads ``/proc/stat`` twice, `sample_seconds` apart, and sums the idle fraction of each CPU in
    the affinity mask (`idle_between`). CPU time this process itself spent during the interval
    (its other threads) is added back: those cores are busy with our own work, not someone
    else's. Where ``/proc/stat`` cannot be read (not Linux), every available core counts as idle.
    The kernel counts in ticks (usually 100 per second per CPU), so the default 0.1 s gives a
    resolution of about 0.1 core.
    """
    available = available_cores()
    try:
        before = PROC_STAT.read_text()
        wall, own = time.perf_counter(), time.process_time()
        time.sleep(max(0.0, sample_seconds))
        after = PROC_STAT.read_text()
        wall, own = time.perf_counter() - wall, time.process_time() - own
    except OSError:
        return float(available)
    idle = idle_between(before, after, cpus=_affinity())
    if math.isnan(idle):
        return float(available)
    idle += own / wall if wall > 0 else 0.0
    return float(min(available, max(0.0, idle)))


def _env_threads() -> int | None:
    """``OMP_NUM_THREADS`` as a positive int (its first entry where it is a list), else None."""
    text = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(text) if text.isdigit() and int(text) >= 1 else None


def default_threads(*, sample_seconds: float = 0.1, available: int | None = None, idle: float | None = None) -> int:
    """The thread count to use when the user gives none: the idle cores, rounded, at least 1.

    Rule: ``max(1, min(available, floor(idle + 0.5), OMP_NUM_THREADS))`` where `available` is
    `available_cores()`, `idle` is `idle_cores()` (sampled for `sample_seconds`) and
    ``OMP_NUM_THREADS`` only counts where the user has set it. `available` and `idle` may be
    given to evaluate the rule without measuring.

    Why (measured on the 2-core development VM with `benchmarks/vesselness.py --busy-core` and a
    duty-cycled busy loop on one core, angioseg's Frangi on 16 frames of 512²): an OpenMP region
    ends with its slowest thread, so a thread that shares a core with another program slows
    every region, and spinning waiters make it worse. Time with 2 threads / time with 1 thread
    as the other program's share of one core grows: 0 % 0.63, 25 % 0.77, 50 % 0.93, 75 % 1.09,
    100 % 1.86 (with the default spin-waiting; 613-659 ms/frame against 32 ms/frame with one
    thread when the machine was loaded too). Two threads pay until about half a core is taken,
    hence rounding the idle count to the nearest core. With the rule, one busy core gives one
    thread and the filters keep their one-thread speed (frangi 32 ms/frame, about 10x
    scikit-image, instead of 1.2-1.5x with two threads).
    """
    available = available_cores() if available is None else max(1, int(available))
    idle = idle_cores(sample_seconds=sample_seconds) if idle is None else float(idle)
    threads = min(available, math.floor(idle + 0.5))
    cap = _env_threads()
    if cap is not None:
        threads = min(threads, cap)
    return max(1, threads)


def _check_count(value: Any, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{option} must be a whole number >= 1; got {value!r}")
    return int(value)


def apply_threads(threads: int | None) -> int:
    """Set the thread count of torch, BLAS and OpenCV; return it. The one entry point.

    `threads` None means `default_threads()` (the idle cores now). Sets
    ``torch.set_num_threads`` (its OpenMP pool and the MKL inside torch; ONNX Runtime sessions
    that angioseg creates afterwards take torch's count too), ``cv2.setNumThreads`` and the BLAS
    libraries numpy/scipy loaded (OpenBLAS, MKL) through ``threadpoolctl``, whose limiter is kept
    for the life of the process. Calling it again replaces the earlier setting: the default is a
    snapshot of the load when it is taken, so a long batch may call ``apply_threads(None)`` again
    between inputs to follow a machine whose load changes.

    Raises `InputError` (naming ``--threads``) unless `threads` is None or an int >= 1.
    """
    global _blas_limiter
    count = default_threads() if threads is None else _check_count(threads, "--threads")

    import torch

    torch.set_num_threads(count)
    try:
        import cv2
    except ImportError:  # a declared dependency; tolerate its absence rather than fail here
        pass
    else:
        cv2.setNumThreads(count)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        _blas_limiter = threadpool_limits(limits=count, user_api="blas")
    return count


def worker_threads(jobs: int, *, total: int | None = None) -> int:
    """Threads for each of `jobs` worker processes that share the machine: ``max(1, total // jobs)``.

    `total` is the machine-wide budget (the user's ``--threads``); default `default_threads()`.
    Raises `InputError` (naming ``--jobs`` / ``--threads``) unless both are ints >= 1.
    """
    jobs = _check_count(jobs, "--jobs")
    total = default_threads() if total is None else _check_count(total, "--threads")
    return max(1, total // jobs)
