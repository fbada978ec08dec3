"""Read throughput (scans/s) of our .wrl and .bnt readers against trimesh's OBJ reader, same mesh.

Baseline in the same run: trimesh.load of the identical mesh written as .obj. Synthetic BU-3DFE-sized
scan (~35k vertices at a 0.75 mm grid).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from facet_lib.data.face_model import Identity, expression_aus, face_grid
from facet_lib.data.synthetic import _mesh_from_grid
from facet_lib.io.bnt import read_bnt, write_bnt
from facet_lib.io.wrl import read_wrl, write_wrl


def rate(fn, path: Path, min_s: float = 3.0) -> float:
    fn(path)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn(path)
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    rng = np.random.default_rng(0)
    pts, _ = face_grid(Identity.sample(rng), expression_aus("happy", 1.0), rng, step=0.75)
    mesh = _mesh_from_grid(pts)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        write_wrl(d / "s.wrl", mesh)
        rows, cols = pts.shape[:2]
        write_bnt(d / "s.bnt", pts, np.zeros((rows, cols, 2)), "s.png")
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(d / "s.obj")
        print(f"mesh: {mesh.n_vertices} vertices, {mesh.n_faces} faces (synthetic)")
        base = rate(lambda p: trimesh.load(p, force="mesh", process=False), d / "s.obj")
        print(f"{'reader':28s} {'scans/s':>8s} {'vs trimesh OBJ':>15s} {'MB':>6s}")
        print(f"{'trimesh .obj (baseline)':28s} {base:8.2f} {1.0:14.2f}x {(d / 's.obj').stat().st_size / 1e6:6.1f}")
        for name, fn, f in [("facet_lib .wrl", read_wrl, "s.wrl"), ("facet_lib .bnt", read_bnt, "s.bnt")]:
            r = rate(fn, d / f)
            print(f"{name:28s} {r:8.2f} {r / base:14.2f}x {(d / f).stat().st_size / 1e6:6.1f}")


if __name__ == "__main__":
    main()
