"""CPU counting from cgroup files, fed from temporary folders in place of /sys/fs/cgroup."""

import os
from pathlib import Path

import pytest

from indexer.cpus import cgroup_cpu_quota, thread_count, usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


def write(root: Path, name: str, content: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content + "\n")


@pytest.mark.parametrize("content, quota", [
    ("max 100000", None),
    ("200000 100000", 2.0),
    ("150000 100000", 1.5),
    ("50000 100000", 0.5),
    ("garbage", None),
    ("100000 0", None),
])
def test_cgroup_v2_quota(tmp_path, content, quota):
    write(tmp_path, "cpu.max", content)

    assert cgroup_cpu_quota(tmp_path) == quota


@pytest.mark.parametrize("folder", ["cpu", "cpu,cpuacct"])
@pytest.mark.parametrize("quota, period, expected", [
    ("-1", "100000", None),
    ("100000", "100000", 1.0),
    ("300000", "100000", 3.0),
])
def test_cgroup_v1_quota(tmp_path, folder, quota, period, expected):
    write(tmp_path, f"{folder}/cpu.cfs_quota_us", quota)
    write(tmp_path, f"{folder}/cpu.cfs_period_us", period)

    assert cgroup_cpu_quota(tmp_path) == expected


def test_v2_file_wins_over_v1(tmp_path):
    write(tmp_path, "cpu.max", "100000 100000")
    write(tmp_path, "cpu/cpu.cfs_quota_us", "400000")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000")

    assert cgroup_cpu_quota(tmp_path) == 1.0


def test_no_cgroup_files_means_affinity(tmp_path):
    assert cgroup_cpu_quota(tmp_path) is None
    assert usable_cpus(tmp_path) == AFFINITY


def test_quota_under_one_cpu_gives_one(tmp_path):
    write(tmp_path, "cpu.max", "50000 100000")

    assert usable_cpus(tmp_path) == 1


def test_fractional_quota_rounds_down(tmp_path):
    write(tmp_path, "cpu.max", "150000 100000")

    assert usable_cpus(tmp_path) == 1


def test_quota_above_affinity_gives_affinity(tmp_path):
    write(tmp_path, "cpu.max", f"{(AFFINITY + 4) * 100000} 100000")

    assert usable_cpus(tmp_path) == AFFINITY


def test_setting_overrides_cpu_count(tmp_path):
    write(tmp_path, "cpu.max", "100000 100000")

    assert thread_count(3, tmp_path) == 3
    assert thread_count(0, tmp_path) == 1
