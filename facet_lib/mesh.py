"""The one in-memory scan type every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facet_lib.errors import ScanFormatError


@dataclass
class Mesh:
    """A triangle mesh in millimetres.

    vertices: (V, 3) float32, mm. faces: (F, 3) int64 vertex indices.
    colors: optional (V, 3) uint8. uv: optional (V, 2) float32 in [0, 1] with ``texture_path``.
    landmarks: optional (L, 3) float32 with ``landmark_names``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    uv: np.ndarray | None = None
    texture_path: Path | None = None
    landmarks: np.ndarray | None = None
    landmark_names: list[str] | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])


def validate_mesh(mesh: Mesh, path: str | Path | None = None) -> Mesh:
    """Check shapes, finiteness and index ranges; raise ScanFormatError naming the problem."""
    p = path or mesh.source or "<mesh>"
    v, f = mesh.vertices, mesh.faces
    if v.ndim != 2 or v.shape[1] != 3:
        raise ScanFormatError(p, "vertices", "an (N, 3) array", f"shape {v.shape}")
    if v.shape[0] == 0:
        raise ScanFormatError(p, "vertices", "a non-empty mesh", "0 vertices")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
        raise ScanFormatError(p, "faces", "at least one triangle as an (F, 3) array", f"shape {f.shape}")
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ScanFormatError(p, f"vertex {i}", "finite coordinates", f"{v[i].tolist()}")
    lo, hi = int(f.min()), int(f.max())
    if lo < 0 or hi >= v.shape[0]:
        row = int(np.flatnonzero((f < 0).any(1) | (f >= v.shape[0]).any(1))[0])
        raise ScanFormatError(p, f"face {row}", f"vertex indices in [0, {v.shape[0] - 1}]", f"{f[row].tolist()}")
    if mesh.colors is not None and mesh.colors.shape != (v.shape[0], 3):
        raise ScanFormatError(p, "colors", f"({v.shape[0]}, 3) per-vertex colours", f"{mesh.colors.shape}")
    if mesh.uv is not None and mesh.uv.shape != (v.shape[0], 2):
        raise ScanFormatError(p, "uv", f"({v.shape[0]}, 2) texture coordinates", f"{mesh.uv.shape}")
    return mesh


def fan_triangulate(index: np.ndarray) -> np.ndarray:
    """Polygons given as one index list with -1 separators → (F, 3) triangles (fan per polygon)."""
    idx = np.asarray(index, dtype=np.int64)
    if idx.size == 0:
        return np.zeros((0, 3), np.int64)
    if idx.size % 4 == 0 and idx[-1] == -1:  # fast path: "a b c -1" triangles, as scanners write them
        quads = idx.reshape(-1, 4)
        if (quads[:, 3] == -1).all() and (quads[:, :3] >= 0).all():
            return quads[:, :3].copy()
    if idx[-1] != -1:
        idx = np.append(idx, -1)
    ends = np.flatnonzero(idx == -1)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts
    keep = lengths >= 3
    starts, lengths = starts[keep], lengths[keep]
    if np.all(lengths == 3):  # fast path: already triangles
        return np.stack([idx[starts], idx[starts + 1], idx[starts + 2]], axis=1)
    ntri = lengths - 2
    poly = np.repeat(np.arange(len(starts)), ntri)
    k = np.arange(ntri.sum()) - np.repeat(np.cumsum(ntri) - ntri, ntri)  # 0..n-3 within polygon
    s = starts[poly]
    return np.stack([idx[s], idx[s + k + 1], idx[s + k + 2]], axis=1)
