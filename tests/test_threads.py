"""angioseg.threads: /proc/stat parsing, the default policy, apply_threads and worker_threads."""

from __future__ import annotations

import math

import pytest

from angioseg import InputError, threads

# Two readings of /proc/stat a moment apart (columns: user nice system idle iowait irq softirq
# steal guest guest_nice). Per CPU over the interval:
#   cpu0: user +10, system +5, idle +80, iowait +5         -> idle 85 of total 100 = 0.85
#   cpu1: user +100 (a busy loop), nothing else            -> idle  0 of total 100 = 0.00
#   cpu2: idle +50, steal +50                              -> idle 50 of total 100 = 0.50
#   cpu3: no tick elapsed                                  -> counted idle        = 1.00
# guest (+7 on cpu0) is already inside user, so it is not counted again.
BEFORE = """\
cpu  5995 0 2146 26050 112 0 15 9 0 0
cpu0 1000 0 500 10000 10 0 5 0 3 0
cpu1 2000 0 600 9000 20 0 5 0 0 0
cpu2 100 0 100 5000 0 0 0 100 0 0
cpu3 10 0 10 100 0 0 0 0 0 0
intr 129829 0 0 0
ctxt 229325
btime 1700000000
"""
AFTER = """\
cpu  6110 0 2151 26210 117 0 15 59 7 0
cpu0 1010 0 505 10080 15 0 5 0 10 0
cpu1 2100 0 600 9000 20 0 5 0 0 0
cpu2 100 0 100 5050 0 0 0 150 0 0
cpu3 10 0 10 100 0 0 0 0 0 0
intr 130000 0 0 0
ctxt 230000
btime 1700000000
"""


def test_cpu_times_reads_per_cpu_lines_only():
    times = threads.cpu_times(BEFORE)
    assert set(times) == {0, 1, 2, 3}  # the aggregate "cpu" line and the others are skipped
    assert times[0] == (10000 + 10, 1000 + 500 + 10000 + 10 + 5)  # guest is not added to the total
    assert threads.cpu_times("cpu0 1 2\ncpuX 1 2 3 4\nnonsense\n") == {}  # too few columns / not cpuN


def test_idle_between_hand_computed():
    assert threads.idle_between(BEFORE, AFTER) == pytest.approx(0.85 + 0.0 + 0.5 + 1.0)
    assert threads.idle_between(BEFORE, AFTER, cpus={0, 1}) == pytest.approx(0.85)
    assert threads.idle_between(BEFORE, AFTER, cpus=[1]) == pytest.approx(0.0)
    assert threads.idle_between(BEFORE, AFTER, cpus={2, 7}) == pytest.approx(0.5)  # cpu7 is not in the texts
    assert math.isnan(threads.idle_between(BEFORE, AFTER, cpus={9}))
    assert math.isnan(threads.idle_between("", ""))


def test_idle_cores_within_bounds_and_fallback(monkeypatch, tmp_path):
    available = threads.available_cores()
    assert available >= 1
    assert 0.0 <= threads.idle_cores(sample_seconds=0.02) <= available
    monkeypatch.setattr(threads, "PROC_STAT", tmp_path / "missing")
    assert threads.idle_cores(sample_seconds=0.0) == float(available)  # not Linux: every core counts as idle


def test_default_threads_rule(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.default_threads(available=2, idle=2.0) == 2
    assert threads.default_threads(available=2, idle=1.6) == 2
    assert threads.default_threads(available=2, idle=1.4) == 1  # one core mostly busy
    assert threads.default_threads(available=2, idle=1.0) == 1
    assert threads.default_threads(available=2, idle=0.1) == 1  # never 0
    assert threads.default_threads(available=4, idle=3.9) == 4
    assert threads.default_threads(available=4, idle=7.0) == 4  # never above the available cores
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads(available=8, idle=8.0) == 3  # the user's OMP_NUM_THREADS caps it
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert threads.default_threads(available=8, idle=8.0) == 8


@pytest.fixture
def restore_threads():
    torch = pytest.importorskip("torch")
    cv2 = pytest.importorskip("cv2")
    before = torch.get_num_threads(), cv2.getNumThreads()
    yield torch, cv2
    torch.set_num_threads(before[0])
    cv2.setNumThreads(before[1])
    if threads._blas_limiter is not None:
        threads._blas_limiter.restore_original_limits()
        threads._blas_limiter = None


def test_apply_threads_sets_torch_opencv_and_blas(restore_threads):
    torch, cv2 = restore_threads
    assert threads.apply_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert cv2.getNumThreads() == 1
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert all(pool["num_threads"] == 1 for pool in blas)


def test_apply_threads_default_is_the_policy(restore_threads, monkeypatch):
    torch, _ = restore_threads
    monkeypatch.setattr(threads, "default_threads", lambda: 1)
    assert threads.apply_threads(None) == 1
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_apply_threads_rejects_bad_counts(bad):
    with pytest.raises(InputError, match="--threads") as caught:
        threads.apply_threads(bad)
    assert "\n" not in str(caught.value)


def test_worker_threads(monkeypatch):
    assert threads.worker_threads(1, total=8) == 8
    assert threads.worker_threads(3, total=8) == 2
    assert threads.worker_threads(16, total=8) == 1  # at least one each
    monkeypatch.setattr(threads, "default_threads", lambda: 4)
    assert threads.worker_threads(2) == 2
    with pytest.raises(InputError, match="--jobs"):
        threads.worker_threads(0)
    with pytest.raises(InputError, match="--threads"):
        threads.worker_threads(2, total=0)


def test_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, angioseg.threads; print('torch' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
