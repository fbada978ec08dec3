"""The one place a torch device is chosen: "auto" | "cpu" | "cuda" | "cuda:N".

A GPU that was asked for but cannot be used is an error, not a silent fall-back to the CPU: a request for
"cuda[:N]", or FACET_REQUIRE_GPU=1 in the environment (set by GPU pipeline steps), fails fast with one line
naming torch's CUDA build and the driver's version. An explicit "cpu" is always honoured. Every resolution is logged.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

from facet_lib.errors import ConfigError, FacetError

if TYPE_CHECKING:
    import torch

REQUIRE_GPU_ENV = "FACET_REQUIRE_GPU"
# how many tasks of one pipeline loop (render shards, train folds) run side by side on this machine's CPUs:
# kfp.local runs two at once (pipelines.local_run sets it); unset on a cluster, where each pod has its own CPUs
CONCURRENT_TASKS_ENV = "FACET_CONCURRENT_TASKS"
DEVICE_CHOICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")
_log = logging.getLogger(__name__)


class DeviceUnavailableError(FacetError):
    """A GPU was requested (or required by FACET_REQUIRE_GPU) but CUDA cannot be used."""


def gpu_required(env: dict[str, str] | None = None) -> bool:
    """FACET_REQUIRE_GPU as a flag: 1/true/yes/on → True, unset/0/false/no/off/'' → False, else ConfigError."""
    raw = (os.environ if env is None else env).get(REQUIRE_GPU_ENV, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{REQUIRE_GPU_ENV}={raw!r}: expected 1/true/yes/on or 0/false/no/off")


def _cuda_version_str(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def driver_version() -> str:
    """The NVIDIA driver as one phrase, read without initialising CUDA; 'no driver' when none is found."""
    parts = []
    try:  # kernel module version, present on any node with the driver loaded
        with open("/proc/driver/nvidia/version") as f:
            m = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)", f.read())
        if m:
            parts.append(m.group(1))
    except OSError:
        pass
    try:  # the CUDA version the user-space driver supports (libcuda is mounted by the NVIDIA runtime)
        lib = ctypes.CDLL("libcuda.so.1")
        v = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value > 0:
            parts.append(f"supports CUDA {_cuda_version_str(v.value)}")
    except (OSError, AttributeError):
        pass
    if not parts:
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if out.returncode == 0 and out.stdout.strip():
                parts.append(out.stdout.strip().splitlines()[0])
        except (OSError, subprocess.SubprocessError):
            pass
    return "driver " + ", ".join(parts) if parts else "no driver"


def torch_cuda_version() -> str:
    """torch's version and the CUDA it was built for ('CPU-only build' when none)."""
    import torch

    cuda = torch.version.cuda
    return f"torch {torch.__version__} built for CUDA {cuda}" if cuda else f"torch {torch.__version__} (CPU-only build)"


def _report(msg: str) -> None:
    # Steps run as plain processes (kfp, CLI): where logging would drop an INFO record, print it instead.
    if _log.hasHandlers() and _log.isEnabledFor(logging.INFO):
        _log.info(msg)
    else:
        print(msg, file=sys.stderr, flush=True)


def resolve_device(name: str = "auto", *, require_gpu: bool | None = None, what: str = "device") -> torch.device:
    """Resolve a device name to a usable torch.device, failing fast on an unusable GPU.

    require_gpu=None reads FACET_REQUIRE_GPU. With it set, "auto" must find CUDA; an explicit "cpu" still wins
    (logged as overriding it).
    `what` names the setting in messages (e.g. "train.device").
    """
    import torch

    if not isinstance(name, str) or not (m := _DEVICE_RE.match(name.strip())):
        raise ConfigError(f"{what}={name!r}: expected {DEVICE_CHOICES}")
    name = name.strip()
    required = gpu_required() if require_gpu is None else require_gpu
    wants_gpu = name.startswith("cuda") or (name == "auto" and required)
    if name == "cpu" or (name == "auto" and not wants_gpu and not torch.cuda.is_available()):
        # An explicit "cpu" is the user's choice and wins over FACET_REQUIRE_GPU (e.g. a local CPU run of the
        # pipeline whose GPU tasks carry it); it is said in the log line, never silent.
        cause = "CUDA not available" if name == "auto" else "requested"
        if name == "cpu" and required:
            cause += f", overriding {REQUIRE_GPU_ENV}"
        _report(f"facet: {what}: cpu ({cause}; {torch_cuda_version()})")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = f"{what}={name!r}" if name.startswith("cuda") else f"{REQUIRE_GPU_ENV} is set"
        raise DeviceUnavailableError(
            f"GPU requested ({why}) but CUDA is not available: {torch_cuda_version()}, {driver_version()}"
        )
    index = int(m.group(2)) if m.group(2) is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceUnavailableError(f"{what}={name!r}: only {count} CUDA device(s) visible (indices 0..{count - 1})")
    dev = torch.device("cuda", index)
    _report(f"facet: {what}: {dev} ({torch.cuda.get_device_name(index)}; {torch_cuda_version()}, {driver_version()})")
    return dev


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU limit (a pod's ``cpu`` limit)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)


def concurrent_tasks() -> int:
    """FACET_CONCURRENT_TASKS as a count (unset: 1)."""
    raw = os.environ.get(CONCURRENT_TASKS_ENV, "").strip() or "1"
    try:
        return max(1, int(raw))
    except ValueError:
        raise ConfigError(f"{CONCURRENT_TASKS_ENV}={raw!r}: expected a whole number of tasks") from None


def cpu_threads(concurrent: int | None = None) -> int:
    """torch's CPU threads for one task: the usable CPUs shared by ``concurrent`` tasks (default
    ``concurrent_tasks()``), at least one. Two training processes with a thread per core each on two cores
    spend their time waiting on each other's threads."""
    return max(1, usable_cpus() // max(1, concurrent_tasks() if concurrent is None else concurrent))


def set_cpu_threads(concurrent: int | None = None) -> int:
    """Set torch's intra-op threads to ``cpu_threads(concurrent)``; returns the number (logged when it changes)."""
    import torch

    tasks = concurrent_tasks() if concurrent is None else concurrent
    n = cpu_threads(tasks)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
        _report(f"facet: torch CPU threads: {n} ({usable_cpus()} usable CPUs shared by {tasks} task(s))")
    return n
