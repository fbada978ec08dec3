"""Scan readers and writers. ``read_scan`` dispatches on the file suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facet_lib.errors import ScanFormatError
from facet_lib.io.limits import DEFAULT_LIMITS, ParseLimits, check_mesh
from facet_lib.mesh import Mesh, validate_mesh

__all__ = ["SCAN_SUFFIXES", "ParseLimits", "read_scan", "read_trimesh"]

SCAN_SUFFIXES = (".wrl", ".bnt", ".obj", ".ply")


def read_trimesh(path: str | Path) -> Mesh:
    """``.obj`` (BP4D-Spontaneous, 4DME frames) and ``.ply`` through trimesh."""
    import trimesh

    p = str(path)
    try:
        loaded = trimesh.load(p, force="mesh", process=False, skip_materials=False)
    except Exception as e:  # trimesh raises many types for broken files
        raise ScanFormatError(p, "file", f"a valid {Path(p).suffix} mesh", f"{type(e).__name__}: {e}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.vertices) == 0 or len(loaded.faces) == 0:
        raise ScanFormatError(p, "geometry", "a non-empty triangle mesh", "no faces or vertices")
    mesh = Mesh(
        vertices=np.asarray(loaded.vertices, np.float32),
        faces=np.asarray(loaded.faces, np.int64),
        source=p,
    )
    vis = loaded.visual
    uv = getattr(vis, "uv", None)
    if uv is not None and len(uv) == len(mesh.vertices):
        mesh.uv = np.asarray(uv, np.float32)
        img = getattr(getattr(vis, "material", None), "image", None)
        name = getattr(img, "filename", None) if img is not None else None
        if name:
            mesh.texture_path = Path(p).parent / Path(name).name
    elif getattr(vis, "kind", None) == "vertex":
        mesh.colors = np.asarray(vis.vertex_colors, np.uint8)[:, :3]
    return validate_mesh(mesh, p)


def read_scan(path: str | Path, limits: ParseLimits = DEFAULT_LIMITS) -> Mesh:
    """Read any supported scan file by its suffix; ``limits`` bounds its size (see ``ParseLimits``).

    VRML files are checked while their DEF/USE scene is expanded, before any copy is made; the other
    formats are linear in the file size and are checked once read.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".wrl":
        from facet_lib.io.wrl import read_wrl

        return read_wrl(path, limits)
    if suffix == ".bnt":
        from facet_lib.io.bnt import read_bnt

        mesh = read_bnt(path)
        check_mesh(mesh, str(path), limits)
        return mesh
    if suffix in (".obj", ".ply"):
        mesh = read_trimesh(path)
        check_mesh(mesh, str(path), limits)
        return mesh
    raise ScanFormatError(str(path), "suffix", f"one of {', '.join(SCAN_SUFFIXES)}", repr(suffix))
