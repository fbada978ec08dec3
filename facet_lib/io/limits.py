"""Resource limits for reading untrusted scan files (the server passes its own; datasets use the defaults).

Checked while a VRML scene is expanded (before any DEF/USE copy is made) and after any other reader:
a file over a limit raises ``ScanFormatError`` naming the file and the limit, never RecursionError
or MemoryError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facet_lib.errors import ConfigError, ScanFormatError


@dataclass(frozen=True)
class ParseLimits:
    """max_vertices / max_faces: totals after DEF/USE expansion (faces after triangulation).
    max_instances: Shape instances after expansion. max_depth: node nesting, counting USE'd subtrees.
    max_faces_per_vertex: triangles per vertex that faces actually use (a scan has about 2; thousands
    of triangles over three vertices only cost render time). max_tokens: tokens outside numeric lists
    (node types, field names, single values; a scan has about a hundred), which the parser reads one
    by one in Python — numeric lists are read in bulk and are bounded by the vertex/face limits."""

    max_vertices: int = 5_000_000
    max_faces: int = 10_000_000
    max_instances: int = 10_000
    max_depth: int = 64
    max_faces_per_vertex: float = 8.0
    max_tokens: int = 50_000

    def __post_init__(self):
        for name in ("max_vertices", "max_faces", "max_instances", "max_depth", "max_faces_per_vertex", "max_tokens"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"ParseLimits.{name}: expected a positive number, got {getattr(self, name)}")


DEFAULT_LIMITS = ParseLimits()


def check_counts(path: str, limits: ParseLimits, vertices: int, faces: int, used_vertices: int, where: str) -> None:
    """Raise ScanFormatError if (expanded) counts exceed ``limits``."""
    if vertices > limits.max_vertices:
        raise ScanFormatError(path, where, f"at most {limits.max_vertices} vertices (limit)", str(vertices))
    if faces > limits.max_faces:
        raise ScanFormatError(path, where, f"at most {limits.max_faces} faces (limit)", str(faces))
    if faces > limits.max_faces_per_vertex * max(used_vertices, 1):
        raise ScanFormatError(
            path,
            where,
            f"at most {limits.max_faces_per_vertex:g} triangles per used vertex (limit)",
            f"{faces} triangles over {used_vertices} vertices",
        )


def used_vertex_count(faces: np.ndarray, n_vertices: int) -> int:
    """How many distinct vertices the (valid) faces reference."""
    if faces.size == 0:
        return 0
    seen = np.zeros(n_vertices, bool)
    seen[faces.ravel()] = True
    return int(seen.sum())


def check_mesh(mesh, path: str, limits: ParseLimits) -> None:
    """Limits for readers that build the whole mesh first (OBJ/PLY through trimesh, BNT grids)."""
    used = used_vertex_count(mesh.faces, mesh.n_vertices)
    check_counts(path, limits, mesh.n_vertices, mesh.n_faces, used, "geometry")
