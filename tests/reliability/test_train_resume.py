"""Issue 13.11: a training run interrupted after epoch k and resumed ends byte-identical to an uninterrupted one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facet_lib.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
import resume_job  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny steps: one thread is several times faster than two on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Interrupted(Exception):
    pass


def _interrupt_after(k: int):
    def hook(rec: dict) -> None:
        if rec["epoch"] == k:
            raise Interrupted

    return hook


def _scramble_global_rngs() -> None:
    """A resumed process starts with whatever RNG state it has, not the dead one's."""
    random.seed(12345)
    np.random.seed(12345)
    torch.manual_seed(12345)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), f"{k} scores differ after resume"


@pytest.mark.parametrize("k", [1, 3])  # inside the frozen phase, and after the top block started training
def test_interrupt_and_resume_is_byte_identical(tmp_path, k):
    straight = resume_job.run(tmp_path / "straight")
    with pytest.raises(Interrupted):
        resume_job.run(tmp_path / "resumed", _interrupt_after(k))
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    st = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert st["epoch"] == k and {"python", "prompts", "numpy", "torch", "data_order"} <= set(st["rng"])
    _scramble_global_rngs()
    epochs = []
    resumed = resume_job.run(tmp_path / "resumed", lambda rec: epochs.append(rec["epoch"]))
    assert epochs == list(range(k + 1, resume_job.TRAIN.epochs))  # only the remaining epochs ran
    _same(straight, resumed)


def test_checkpoint_with_other_settings_or_garbage_is_refused(tmp_path):
    with pytest.raises(Interrupted):
        resume_job.run(tmp_path, _interrupt_after(0))
    import dataclasses

    real = resume_job.TRAIN
    try:
        resume_job.TRAIN = dataclasses.replace(real, lr=1e-3)
        with pytest.raises(ConfigError, match=r"checkpoint\.pt: checkpoint was written with different settings \(lr\)"):
            resume_job.run(tmp_path)
    finally:
        resume_job.TRAIN = real
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"checkpoint\.pt: unreadable training checkpoint"):
        resume_job.run(tmp_path)
    torch.save({"epoch": 0, "model": {}}, tmp_path / "checkpoint.pt")  # an older checkpoint without RNG state
    with pytest.raises(ConfigError, match=r"checkpoint format None, expected 2"):
        resume_job.run(tmp_path)


def _job(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    script = str(Path(__file__).parent / "resume_job.py")
    return subprocess.run([sys.executable, script, str(out), *extra], env=env, capture_output=True, timeout=600)


@pytest.mark.slow
def test_sigkill_and_resume_in_fresh_processes_is_byte_identical(tmp_path):
    """The real thing: separate processes, one SIGKILLed after epoch 2's checkpoint, then resumed."""
    assert _job(tmp_path / "straight").returncode == 0
    killed = _job(tmp_path / "resumed", "--kill-after", "2")
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "resumed" / "scores.npz").exists()
    done = _job(tmp_path / "resumed")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    a, b = np.load(tmp_path / "straight" / "scores.npz"), np.load(tmp_path / "resumed" / "scores.npz")
    _same(dict(a), dict(b))
