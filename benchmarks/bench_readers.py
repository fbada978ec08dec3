"""Read throughput of our .wrl and .bnt readers against trimesh's OBJ reader and VTK's VRML importer.

Baselines in the same run, on the same synthetic BU-3DFE-sized scan (~42k vertices at a 0.75 mm grid):
- ``trimesh .obj``: trimesh.load of the identical mesh written as .obj;
- ``vtkVRMLImporter .wrl``: VTK reading the identical .wrl file, arrays taken out with numpy_support
  (optional: ``pip install facet-vlm-ops[bench]``; the row is skipped with a message without vtk);
- ``raw read()``: reading the .wrl file's bytes, the I/O floor that MB/s figures compare against;
- ``previous .wrl``: the token-by-token reader this one replaced (``tests/io/wrl_reference.py``).

Each reader runs for ``--seconds`` (default 3); figures are process CPU time per scan, which is
less disturbed than wall time when other work shares the machine (both are printed).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from facet_lib.data.face_model import Identity, expression_aus, face_grid
from facet_lib.data.synthetic import _mesh_from_grid
from facet_lib.io.bnt import read_bnt, write_bnt
from facet_lib.io.wrl import read_wrl, write_wrl


def rate(fn, path: Path, min_s: float) -> tuple[float, float]:
    """(scans per CPU second, scans per wall second)."""
    fn(path)  # warm-up (and numba's compile/cache load)
    n, w0, c0 = 0, time.perf_counter(), time.process_time()
    while time.process_time() - c0 < min_s:
        fn(path)
        n += 1
    return n / (time.process_time() - c0), n / (time.perf_counter() - w0)


def vtk_reader():
    """A reader function for vtkVRMLImporter, or None with the reason."""
    try:
        import vtk
        from vtk.util.numpy_support import vtk_to_numpy
    except ImportError as e:
        return None, f"vtk not installed ({e}); pip install 'facet-vlm-ops[bench]'"
    vtk.vtkObject.GlobalWarningDisplayOff()  # its unused render window warns without an X display

    def read(path: Path):
        imp = vtk.vtkVRMLImporter()
        imp.SetFileName(str(path))
        imp.Update()
        actors = imp.GetRenderer().GetActors()
        actors.InitTraversal()
        out = []
        for _ in range(actors.GetNumberOfItems()):
            pd = actors.GetNextActor().GetMapper().GetInput()
            out.append((vtk_to_numpy(pd.GetPoints().GetData()), vtk_to_numpy(pd.GetPolys().GetConnectivityArray())))
        if not out:
            raise RuntimeError(f"vtkVRMLImporter read no geometry from {path}")
        return out

    return read, ""


def reference_reader():
    """The previous token-by-token reader, kept in tests/io/wrl_reference.py for the equivalence test."""
    path = Path(__file__).resolve().parents[1] / "tests" / "io" / "wrl_reference.py"
    spec = importlib.util.spec_from_file_location("wrl_reference", path)
    mod = sys.modules["wrl_reference"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.read_wrl


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per reader")
    ap.add_argument("--step", type=float, default=0.75, help="face grid step in mm (0.75 → ~42k vertices)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    pts, _ = face_grid(Identity.sample(rng), expression_aus("happy", 1.0), rng, step=args.step)
    mesh = _mesh_from_grid(pts)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        write_wrl(d / "s.wrl", mesh)
        rows, cols = pts.shape[:2]
        write_bnt(d / "s.bnt", pts, np.zeros((rows, cols, 2)), "s.png")
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(d / "s.obj")
        ours = read_wrl(d / "s.wrl")
        assert ours.n_vertices == mesh.n_vertices and ours.n_faces == mesh.n_faces
        print(f"mesh: {mesh.n_vertices} vertices, {mesh.n_faces} faces (synthetic)")
        base, base_wall = rate(lambda p: trimesh.load(p, force="mesh", process=False), d / "s.obj", args.seconds)
        raw, raw_wall = rate(lambda p: p.read_bytes(), d / "s.wrl", min(args.seconds, 1.0))
        wrl_mb = (d / "s.wrl").stat().st_size / 1e6
        print(f"{'reader':26s} {'scans/s':>8s} {'(wall)':>8s} {'vs trimesh OBJ':>15s} {'MB':>5s} {'MB/s':>7s}")

        def row(name: str, cpu: float, wall: float, f: str) -> None:
            mb = (d / f).stat().st_size / 1e6
            print(f"{name:26s} {cpu:8.1f} {wall:8.1f} {cpu / base:14.2f}x {mb:5.1f} {cpu * mb:7.0f}")

        row("trimesh .obj (baseline)", base, base_wall, "s.obj")
        readers = [
            ("facet_lib .wrl", read_wrl, "s.wrl"),
            ("previous .wrl (reference)", reference_reader(), "s.wrl"),
            ("facet_lib .bnt", read_bnt, "s.bnt"),
        ]
        vtk_read, why = vtk_reader()
        if vtk_read is None:
            print(f"{'vtkVRMLImporter .wrl':26s} skipped: {why}")
        else:
            readers.insert(1, ("vtkVRMLImporter .wrl", vtk_read, "s.wrl"))
        res = {}
        for name, fn, f in readers:
            res[name] = rate(fn, d / f, args.seconds)
            row(name, *res[name], f)
        row("raw read() of the .wrl", raw, raw_wall, "s.wrl")
        ours_cpu = res["facet_lib .wrl"][0]
        print(
            f"facet_lib .wrl: {ours_cpu * wrl_mb:.0f} MB/s = {ours_cpu / raw:.3f} of a raw read() "
            f"({raw * wrl_mb:.0f} MB/s)"
        )
        if "vtkVRMLImporter .wrl" in res:
            print(f"facet_lib .wrl vs vtkVRMLImporter: {ours_cpu / res['vtkVRMLImporter .wrl'][0]:.2f}x")


if __name__ == "__main__":
    main()
