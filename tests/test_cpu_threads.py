"""torch's CPU threads per task: the usable CPUs divided by the loop tasks sharing them, one definition."""

import pytest

from facet_lib import device
from facet_lib.errors import ConfigError


def test_share_of_the_cpus(monkeypatch):
    monkeypatch.setattr(device, "usable_cpus", lambda: 8)
    monkeypatch.delenv(device.CONCURRENT_TASKS_ENV, raising=False)
    assert device.cpu_threads() == 8  # alone: every CPU
    monkeypatch.setenv(device.CONCURRENT_TASKS_ENV, "2")
    assert device.cpu_threads() == 4 and device.cpu_threads(1) == 8 and device.cpu_threads(3) == 2
    monkeypatch.setenv(device.CONCURRENT_TASKS_ENV, "16")
    assert device.cpu_threads() == 1  # never zero
    monkeypatch.setenv(device.CONCURRENT_TASKS_ENV, "two")
    with pytest.raises(ConfigError, match="FACET_CONCURRENT_TASKS"):
        device.cpu_threads()


def test_usable_cpus_is_the_affinity_mask_at_most():
    import os

    assert 1 <= device.usable_cpus() <= len(os.sched_getaffinity(0))


def test_set_cpu_threads_sets_torch(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(device, "usable_cpus", lambda: 2)
    try:
        assert device.set_cpu_threads(2) == 1 and torch.get_num_threads() == 1
        assert device.set_cpu_threads(1) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_local_runs_tell_tasks_how_many_run_side_by_side():
    from pipelines.local_run import loop_concurrency

    assert loop_concurrency() == 2  # kfp 2.17's local ParallelFor executor runs two iterations at once
