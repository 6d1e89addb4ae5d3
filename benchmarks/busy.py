"""A busy core for the benchmarks' ``--busy-core``: another program holding one CPU.

`busy_core()` runs a separate process spinning a tight Python loop for the duration of a
``with`` block. It is a fresh interpreter (not a fork of the benchmark, not a thread: it must
not share the GIL or torch's state), pinned to the last CPU of this process's affinity mask
where the platform allows.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

BUSY_LOOP = """
import os, sys
cpu = int(sys.argv[1])
if cpu >= 0:
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass
sys.stdout.write("spinning\\n")
sys.stdout.flush()
while True:
    pass
"""


@contextlib.contextmanager
def busy_core() -> Iterator[int]:
    """Spin one core for the block; yields the CPU it is pinned to (-1 where it could not be)."""
    cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else -1
    process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(cpu)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        process.stdout.readline()  # it spins once it has said so
        yield cpu
    finally:
        process.kill()
        process.wait()


def run_busy(measure, *, threads: int | None, quiet_threads: int):
    """`measure()` again while one core spins: the thread policy is taken again once it spins
    (an explicit `threads` stays), and a header line says where it spins. Returns (its result,
    the thread count it ran with)."""
    from angioseg.threads import apply_threads

    with busy_core() as cpu:
        busy_threads = apply_threads(threads)
        where = f"pinned to CPU {cpu}" if cpu >= 0 else "not pinned"
        print(f"-- busy core: a Python busy loop in another process, {where}; torch threads {busy_threads} "
              f"(quiet run: {quiet_threads}) --", flush=True)
        return measure(), busy_threads
