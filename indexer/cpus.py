"""The number of CPUs this process may use, for sizing the thread pools of torch, ONNX
Runtime and FAISS.

`os.cpu_count()` returns the host's cores, but a container is often limited to fewer by a
CFS quota (cgroup v1 or v2) or by CPU affinity. Running more compute threads than the
quota allows makes the kernel throttle the process, so thread counts follow the smallest
of those limits.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """Return the smallest of the CPU affinity and the cgroup CPU quota, at least 1.

    A fractional quota is rounded down (1.5 CPUs gives 1 thread), so that the threads never
    ask for more CPU time than the quota grants. Unreadable or malformed cgroup files count
    as no limit.
    """
    limits = [len(os.sched_getaffinity(0))]
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        limits.append(math.floor(quota))
    return max(1, min(limits))


def thread_count(setting: int, cgroup_root: Path = CGROUP_ROOT) -> int:
    """Return `setting` when it is positive, otherwise the CPUs this process may use."""
    return setting if setting > 0 else usable_cpus(cgroup_root)


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """Return the CFS quota in CPUs (quota divided by period), or None when there is none.

    Reads cgroup v2's `cpu.max` first, then cgroup v1's `cpu.cfs_quota_us` and
    `cpu.cfs_period_us` under `cpu/` or `cpu,cpuacct/`, the usual mount points in a
    container.

    NOTE: only the cgroup mounted at `cgroup_root` is read. Outside a container, where that
    is the root cgroup, a quota set on the process's own cgroup or its parents is missed.
    """
    v2 = _read(cgroup_root / "cpu.max")
    if v2 is not None:
        fields = v2.split()
        return _ratio(fields[0], fields[1]) if len(fields) == 2 else None
    for folder in ("cpu", "cpu,cpuacct"):
        quota = _read(cgroup_root / folder / "cpu.cfs_quota_us")
        period = _read(cgroup_root / folder / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _ratio(quota, period)
    return None


def _ratio(quota: str, period: str) -> float | None:
    # cgroup v2 writes `max` and cgroup v1 writes -1 for "no quota".
    if quota in ("max", "-1"):
        return None
    try:
        value = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        log.warning("cgroup_quota_unreadable", quota=quota, period=period)
        return None
    return value if value > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
