"""Rendering benchmarks (synthetic data), each against a baseline measured in the same run.

1. views/s for a BU-3DFE-sized mesh (~35k vertices) at 224×224, fast backend vs pyrender (EGL/Mesa),
   on one core and on all cores (one process per core), and the fast/pyrender ratio.
2. rank pooling frames/s for a 100-frame, 3-view sequence vs one plain read of the same frames.
3. end-to-end: a synthetic BU-4DFE-style dataset rendered to dynamic images, sequences/s.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
import numpy as np  # noqa: E402

from facet_lib.data.face_model import Identity, expression_aus, face_grid  # noqa: E402
from facet_lib.data.synthetic import SynthConfig, _mesh_from_grid, generate  # noqa: E402
from facet_lib.rankpool import dynamic_image  # noqa: E402
from facet_lib.render import RenderConfig, render_views  # noqa: E402

MIN_S = float(os.environ.get("BENCH_SECONDS", "4"))


def _mesh():
    rng = np.random.default_rng(0)
    pts, _ = face_grid(Identity.sample(rng), expression_aus("happy", 1.0), rng, step=0.8)
    return _mesh_from_grid(pts)


def _views_per_s(backend: str, seconds: float = MIN_S) -> float:
    mesh, cfg = _mesh(), RenderConfig(backend=backend)
    render_views(mesh, cfg)  # warm-up (JIT / GL context)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += render_views(mesh, cfg).shape[0]
    return n / (time.perf_counter() - t0)


def _all_cores(backend: str) -> float:
    k = os.cpu_count() or 1
    with ProcessPoolExecutor(k, mp_context=mp.get_context("spawn")) as ex:  # no GL context across fork
        return sum(ex.map(_views_per_s, [backend] * k))


def bench_backends() -> None:
    m = _mesh()
    print(f"[1] views/s, {m.n_vertices} vertices / {m.n_faces} faces, 224x224, 3 views per call (synthetic mesh)")
    res = {}
    for backend in ("pyrender", "fast"):
        try:
            res[backend] = (_views_per_s(backend), _all_cores(backend))
        except Exception as e:  # no EGL: say so, keep going
            print(f"    {backend}: unavailable ({type(e).__name__}: {e})")
    for b, (one, alln) in res.items():
        print(f"    {b:9s} one core {one:8.1f} views/s   all {os.cpu_count()} cores {alln:8.1f} views/s")
    if len(res) == 2:
        print(
            f"    fast / pyrender: {res['fast'][0] / res['pyrender'][0]:.1f}x on one core, "
            f"{res['fast'][1] / res['pyrender'][1]:.1f}x on all cores (default backend: fast)"
        )


def bench_rankpool() -> None:
    frames = np.random.default_rng(0).integers(0, 255, (100, 3, 224, 224, 3), dtype=np.uint8)

    def timed(fn) -> float:
        fn()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < MIN_S / 2:
            fn()
            n += 1
        return n * frames.shape[0] * frames.shape[1] / (time.perf_counter() - t0)

    pool = timed(lambda: [dynamic_image(frames[:, v]) for v in range(3)])
    dst = np.empty_like(frames)
    read = timed(lambda: np.copyto(dst, frames))  # memory-bandwidth bound: every byte read once
    print(
        f"[2] rank pooling 100 frames x 3 views 224x224: {pool:8.0f} frame-views/s; "
        f"copying the same frames (bandwidth bound) {read:8.0f}/s; ratio {pool / read:.2f}"
    )


def bench_end_to_end() -> None:
    from facet_lib.data.indexers import index_dataset
    from facet_lib.render.dataset import render_dataset

    with tempfile.TemporaryDirectory() as d:
        root = generate("bu4dfe", Path(d) / "bu4dfe", SynthConfig(subjects=2, frames=16, step_4d=1.0))
        idx = index_dataset("bu4dfe", root).index
        t0 = time.perf_counter()
        m = render_dataset(idx, Path(d) / "out", RenderConfig(frames=16), progress=False)
        dt = time.perf_counter() - t0
    print(
        f"[3] end-to-end BU-4DFE-style (synthetic, {len(idx)} sequences x 16 frames, ~20k-vertex .wrl frames): "
        f"{len(idx) / dt:.2f} sequences/s, {m['samples']} rendered, {len(m['failures'])} failed"
    )


if __name__ == "__main__":
    which = sys.argv[1:] or ["backends", "rankpool", "e2e"]
    if "backends" in which:
        bench_backends()
    if "rankpool" in which:
        bench_rankpool()
    if "e2e" in which:
        bench_end_to_end()
