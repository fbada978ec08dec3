"""Server-side rendering of scans and sequences in worker processes, off the event loop.

``RenderPool`` keeps one process per CPU core (``Limits.render_workers``); each is warmed up (numba
kernels compiled or loaded from cache) before the server reports ready. A request's renders share one
time limit (``Limits.render_timeout_s``): a render over it kills its worker (a fresh one replaces it)
and the caller gets 413 — one hostile file cannot stall the server or the other callers' requests.
Each scan, and each sampled frame of a sequence, is parsed exactly once. No torch, no kserve here.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import logging
import multiprocessing as mp
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from facet_lib.config import Limits, RenderConfig
from facet_lib.errors import FacetError
from facet_lib.serving.decoding import RequestError
from facet_lib.serving.inputs import REQUEST_KINDS, Job

log = logging.getLogger("facet_lib.serving")

# Exceptions a reader may raise on a hostile file that the reader's own checks did not name.
_TMP = re.compile(r"[^\s'\"]*facet-req-[^\s'\":]*")  # the server's temporary folders: never echoed


def _scrub(message: str) -> str:
    """A reader's/renderer's message without the server's temporary paths (``scan`` in their place)."""
    return _TMP.sub("scan", message)[:300]


_INPUT_FAULTS = (RecursionError, ValueError, IndexError, OverflowError, UnicodeDecodeError, KeyError, TypeError)


def parse_scan(data: bytes | Path, fmt: str, field: str, limits: Limits, tmp: Path):
    """One scan file (its bytes, or the file the server spooled them to) → Mesh (read once), checked
    against the vertex limit."""
    from facet_lib.io import read_scan
    from facet_lib.io.limits import ParseLimits

    spooled = isinstance(data, Path)
    path = data if spooled else tmp / f"scan.{fmt}"
    if not spooled:
        path.write_bytes(data)
    try:  # the reader counts vertices/faces/instances while expanding DEF/USE, before any copy
        mesh = read_scan(path, ParseLimits(max_vertices=limits.max_vertices))
    except FacetError as e:
        raise RequestError(f"{field}: {_scrub(str(e).replace(str(path), 'scan'))}") from None
    except MemoryError:
        raise RequestError(f"{field}: the {fmt} file needs more memory than the server allows", 413) from None
    except _INPUT_FAULTS as e:
        raise RequestError(f"{field}: unreadable {fmt} file ({type(e).__name__})") from None
    finally:
        if not spooled:
            path.unlink(missing_ok=True)
    if mesh.n_vertices > limits.max_vertices:
        raise RequestError(f"{field}: {mesh.n_vertices} vertices exceed the limit of {limits.max_vertices}", 413)
    return mesh


def render_job(job: Job, cfg: RenderConfig, limits: Limits) -> np.ndarray:
    """A job of a kind rendered server-side (a scan, a sequence: ``REQUEST_KINDS[job.kind].render``) →
    (3, H, W, 3) uint8 views, exactly as in training; each of its files read once by ``parse_scan``."""
    with tempfile.TemporaryDirectory(prefix="facet-req-") as t:

        def read(data: bytes | Path, field: str):
            return parse_scan(data, job.fmt, field, limits, Path(t))

        try:
            return REQUEST_KINDS[job.kind].render(job, cfg, read)
        except RequestError:
            raise
        except FacetError as e:  # e.g. texture mode without a texture
            raise RequestError(f"{job.field}: {_scrub(str(e))}") from None
        except MemoryError:
            raise RequestError(f"{job.field}: rendering needs more memory than the server allows", 413) from None
        except _INPUT_FAULTS as e:
            raise RequestError(f"{job.field}: cannot render this input ({type(e).__name__})") from None


def warm_up(cfg: RenderConfig) -> None:
    """Read and render a small synthetic cap so the reader's and the renderer's numba kernels are
    compiled (or loaded from cache) before the server reports ready."""
    from facet_lib.mesh import Mesh
    from facet_lib.render import render_views

    g = np.linspace(-60, 60, 24, dtype=np.float32)
    x, y = np.meshgrid(g, g)
    z = np.sqrt(np.maximum(100.0**2 - x**2 - y**2, 0)) - 60
    verts = np.stack([x, y, z], -1).reshape(-1, 3).astype(np.float32)
    n = len(g)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)]).astype(np.int64)
    mesh = Mesh(vertices=verts, faces=faces, colors=np.full((len(verts), 3), 180, np.uint8))
    try:
        with tempfile.TemporaryDirectory(prefix="facet-warm-") as t:  # the VRML reader's kernels too
            from facet_lib.io import read_scan
            from facet_lib.io.wrl import write_wrl

            write_wrl(Path(t) / "warm.wrl", mesh)
            mesh = read_scan(Path(t) / "warm.wrl")
        render_views(mesh, cfg)
    except FacetError:  # e.g. texture mode: the kernels it reaches are compiled anyway
        pass


def _worker_main(conn, cfg: RenderConfig, limits: Limits) -> None:
    warm_up(cfg)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        size = _job_bytes(job)  # before answering: the server removes spooled files once answered
        try:
            out = ("ok", render_job(job, cfg, limits))
        except RequestError as e:
            out = ("err", e.status, _scrub(str(e)))
        conn.send(out)
        del out
        if size >= limits.trim_after_bytes:  # a large scan: give its freed heap back to the OS
            malloc_trim()


def _trimmer():
    """glibc's ``malloc_trim`` (returns freed heap pages to the OS), or None on other C libraries."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_TRIM = _trimmer()


def malloc_trim() -> bool:
    return bool(_TRIM and _TRIM(0))


def _job_bytes(job: Job) -> int:
    def size(x: bytes | Path) -> int:
        try:
            return x.stat().st_size if isinstance(x, Path) else len(x)
        except OSError:
            return 0

    return sum(size(f) for f in job.files)


def usable_cores() -> int:
    """CPU cores this process may use: its affinity, capped by a cgroup v2 CPU quota (a pod's limit)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _spooled(job: Job, d: Path) -> Job:
    """The job with its files written to ``d``: only their paths cross the pipe (a pipe moves a 3 MB
    scan in ~50 round trips between the processes; a file write is one copy)."""
    if not job.files:
        return job
    paths = [d / f"{job.kind}{i:05d}.{job.fmt}" for i in range(len(job.files))]
    for p, f in zip(paths, job.files):
        p.write_bytes(f)
    return dataclasses.replace(job, files=paths)


def _call(conn, job: Job) -> tuple:
    with tempfile.TemporaryDirectory(prefix="facet-req-") as d:  # removed once answered (or the worker ended)
        conn.send(_spooled(job, Path(d)))
        return conn.recv()


class _Worker:
    def __init__(self, ctx, cfg: RenderConfig, limits: Limits):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, cfg, limits), daemon=True, name="facet-render")
        self.proc.start()
        child.close()

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            self.kill()
            raise RuntimeError(f"render worker not ready after {timeout:.0f} s")
        self.conn.recv()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class RenderPool:
    """Worker processes rendering ``Job``s; see the module docstring."""

    def __init__(self, cfg: RenderConfig, limits: Limits, start_timeout_s: float = 300.0):
        self.cfg, self.limits, self.start_timeout_s = cfg, limits, start_timeout_s
        self.size = limits.render_workers or usable_cores()
        self._ctx = mp.get_context("spawn")  # never fork a process that holds torch threads
        self._all: list[_Worker] = []
        self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="facet-render")
        self._idle: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.killed = 0

    def start(self) -> float:
        """Start and warm every worker (blocking; called from ``load()``); returns the seconds it took."""
        t = time.perf_counter()
        self._all = [_Worker(self._ctx, self.cfg, self.limits) for _ in range(self.size)]
        for w in self._all:
            w.wait_ready(self.start_timeout_s)
        return time.perf_counter() - t

    def close(self) -> None:
        for w in self._all:
            w.kill()
        self._all = []

    def _queue(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the queue belongs to one event loop
            self._loop, self._idle = loop, asyncio.Queue()
            for w in self._all:
                self._idle.put_nowait(w)
        return self._idle

    def _replace(self, dead: _Worker) -> None:
        """Kill ``dead`` and start a replacement in a thread; it joins the idle queue when warm. The dead
        worker's pipe is left to its pending call (which ends with EOF) and then to the GC."""
        if dead.proc.is_alive():
            dead.proc.kill()
        self.killed += 1
        loop, idle = self._loop, self._idle

        def spawn():
            dead.proc.join(10)
            try:
                w = _Worker(self._ctx, self.cfg, self.limits)
                w.wait_ready(self.start_timeout_s)
            except Exception as e:  # noqa: BLE001 — logged; the pool runs with one worker fewer
                log.error("render worker could not be replaced: %r", e)
                return
            self._all = [x for x in self._all if x is not dead] + [w]
            if not loop.is_closed():
                loop.call_soon_threadsafe(idle.put_nowait, w)

        threading.Thread(target=spawn, daemon=True).start()

    async def _run(self, job: Job, deadline: list[float | None]) -> np.ndarray:
        idle, loop = self._queue(), asyncio.get_running_loop()
        w: _Worker = await idle.get()
        while not w.proc.is_alive():  # killed while idle (e.g. by the OOM killer): replace it, take another
            log.error("render worker %s found dead (exit code %s); replacing it", w.proc.pid, w.proc.exitcode)
            self._replace(w)
            w = await idle.get()
        if deadline[0] is None:  # the request's clock starts with its first render
            deadline[0] = loop.time() + self.limits.render_timeout_s
        ok = False
        try:  # a blocking send+recv in a pool thread; killing the worker on timeout ends that call too
            call = loop.run_in_executor(self._threads, _call, w.conn, job)
            msg = await asyncio.wait_for(call, max(deadline[0] - loop.time(), 0.001))
            ok = True
        except (asyncio.TimeoutError, TimeoutError):
            raise RequestError(
                f"{job.field}: rendering exceeded the time limit of {self.limits.render_timeout_s:g} s", 413
            ) from None
        except (EOFError, OSError) as e:
            await loop.run_in_executor(None, w.proc.join, 2)
            log.error("render worker %s ended (exit code %s) on %s: %r", w.proc.pid, w.proc.exitcode, job.field, e)
            code = w.proc.exitcode
            why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            msg = (
                f"{job.field}: the render worker ended while rendering this input ({why}; e.g. out of memory); "
                "a fresh worker replaces it"
            )
            raise RequestError(msg, 422) from None
        finally:
            if ok:
                idle.put_nowait(w)
            else:  # timed out, died or cancelled: never reuse a worker that may still be busy
                self._replace(w)
        if msg[0] == "err":
            raise RequestError(msg[2], msg[1])
        return msg[1]

    async def render(self, jobs: list[Job]) -> list[np.ndarray]:
        """Render a request's jobs concurrently across the workers, under one time limit."""
        deadline: list[float | None] = [None]
        tasks = [asyncio.ensure_future(self._run(j, deadline)) for j in jobs]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for t in tasks:
                t.cancel()
