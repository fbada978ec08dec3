"""The scene graph of a parsed VRML file: nodes, DEF/USE-shared geometry, and its size once expanded.

``Scene`` counts the expanded scene (Shape instances, vertices, triangles) once per distinct node
and checks it against ``ParseLimits`` before any copy is made; then it lists the Shape instances
with their accumulated Transform matrices. Each IndexedFaceSet is turned into arrays once
(``_geometry``), however often it is USE'd.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facet_lib.errors import ScanFormatError
from facet_lib.io.limits import ParseLimits, check_counts, used_vertex_count
from facet_lib.io.vrml_numbers import coord_indices
from facet_lib.mesh import fan_triangulate

GROUPS = ("Transform", "Group", "Collision", "Anchor", "Billboard", "LOD", "Switch")


@dataclass(eq=False)
class Node:
    type: str
    fields: dict[str, object] = field(default_factory=dict)
    height: int = 1  # levels of nodes in this subtree, USE'd subtrees included


def _as_array(v: object, path: str, where: str, width: int) -> np.ndarray:
    if isinstance(v, list):
        try:
            v = np.array([float(x) for x in v], dtype=np.float64)
        except (TypeError, ValueError):
            raise ScanFormatError(path, where, "a numeric list") from None
    arr = np.asarray(v, dtype=np.float64)
    if arr.size % width:
        raise ScanFormatError(path, where, f"a multiple of {width} numbers", f"{arr.size}")
    return arr.reshape(-1, width)


def _transform(node: Node, path: str) -> np.ndarray:
    """4×4 matrix of a Transform node (translation · rotation · scale; centre ignored if absent)."""
    m = np.eye(4)
    f = node.fields
    t = _as_array(f.get("translation", ["0", "0", "0"]), path, "Transform.translation", 3)[0]
    s = _as_array(f.get("scale", ["1", "1", "1"]), path, "Transform.scale", 3)[0]
    r = _as_array(f.get("rotation", ["0", "0", "1", "0"]), path, "Transform.rotation", 4)[0]
    axis, ang = r[:3], r[3]
    n = np.linalg.norm(axis)
    rot = np.eye(3)
    if n > 0 and ang != 0:
        x, y, z = axis / n
        c, sn, C = np.cos(ang), np.sin(ang), 1 - np.cos(ang)
        rot = np.array(
            [
                [x * x * C + c, x * y * C - z * sn, x * z * C + y * sn],
                [y * x * C + z * sn, y * y * C + c, y * z * C - x * sn],
                [z * x * C - y * sn, z * y * C + x * sn, z * z * C + c],
            ]
        )
    m[:3, :3] = rot @ np.diag(s)
    m[:3, 3] = t
    return m


def _children(node: Node) -> list[Node]:
    kids = node.fields.get("children", node.fields.get("level", node.fields.get("choice", [])))
    return [k for k in (kids if isinstance(kids, list) else [kids]) if isinstance(k, Node)]


@dataclass
class _Geometry:
    """One IndexedFaceSet, read once however often it is USE'd."""

    points: np.ndarray  # (V, 3) float64, untransformed
    tris: np.ndarray  # (F, 3) int64
    uv: np.ndarray | None
    colors: np.ndarray | None
    used: int  # vertices referenced by tris


def _geometry(geo: Node, p: str) -> _Geometry:
    coord = geo.fields.get("coord")
    if not isinstance(coord, Node):
        raise ScanFormatError(p, "IndexedFaceSet.coord", "a Coordinate node")
    pts = _as_array(coord.fields.get("point", []), p, "Coordinate.point", 3)
    if "coordIndex" not in geo.fields:
        raise ScanFormatError(p, "IndexedFaceSet", "a coordIndex field")
    cidx = coord_indices(_as_array(geo.fields["coordIndex"], p, "coordIndex", 1).ravel(), len(pts), p)
    tris = fan_triangulate(cidx)
    uv = None
    tc = geo.fields.get("texCoord")
    if isinstance(tc, Node):
        tpts = _as_array(tc.fields.get("point", []), p, "TextureCoordinate.point", 2)
        tidx = geo.fields.get("texCoordIndex")
        uv = np.zeros((len(pts), 2))
        if tidx is None:  # per the standard: coordIndex indexes the texture coordinates too
            if len(tpts) < len(pts):
                raise ScanFormatError(
                    p, "TextureCoordinate.point", f">= {len(pts)} points without texCoordIndex", str(len(tpts))
                )
            uv = tpts[: len(pts)]
        else:
            tidx = _as_array(tidx, p, "texCoordIndex", 1).astype(np.int64).ravel()
            if tidx.shape != cidx.shape:
                raise ScanFormatError(p, "texCoordIndex", f"{cidx.size} entries like coordIndex", str(tidx.size))
            if tidx.max(initial=-1) >= len(tpts):
                raise ScanFormatError(p, "texCoordIndex", f"indices < {len(tpts)}", str(tidx.max()))
            bad = (cidx >= 0) & (tidx < 0)  # -1 only where coordIndex ends a face; never a negative index
            if bad.any():
                raise ScanFormatError(p, "texCoordIndex", "indices >= 0 at every face corner", str(tidx[bad][0]))
            if len(tpts) >= len(pts) and np.array_equal(tidx, cidx):  # common: one index list for both
                seen = np.zeros(len(pts), bool)
                seen[cidx[cidx >= 0]] = True
                uv[seen] = tpts[: len(pts)][seen]
            else:
                corner = cidx >= 0
                # Per-corner UVs collapse to per-vertex ones (a seam vertex keeps its last UV).
                uv[cidx[corner]] = tpts[tidx[corner]]
    colors = None
    col = geo.fields.get("color")
    if isinstance(col, Node):
        c = _as_array(col.fields.get("color", []), p, "Color.color", 3)
        if len(c) == len(pts):
            colors = np.clip(c * 255 + 0.5, 0, 255).astype(np.uint8)
    return _Geometry(pts, tris, uv, colors, used_vertex_count(tris, len(pts)))


class Scene:
    """Counts the expanded scene once per distinct node, then lists its Shape instances."""

    def __init__(self, path: str, limits: ParseLimits):
        self.path, self.limits = path, limits
        self.geoms: dict[int, _Geometry] = {}
        self.counts: dict[int, tuple[int, int, int, int]] = {}

    def geometry(self, shape: Node) -> _Geometry | None:
        geo = shape.fields.get("geometry")
        if not isinstance(geo, Node) or geo.type != "IndexedFaceSet":
            return None
        if id(geo) not in self.geoms:
            self.geoms[id(geo)] = _geometry(geo, self.path)
        return self.geoms[id(geo)]

    def count(self, node: Node) -> tuple[int, int, int, int]:
        """(Shape instances, vertices, faces, used vertices) of the expanded subtree, once per node.

        The recursion is as deep as the parser allowed (``max_depth``, USE'd subtrees included)."""
        if id(node) not in self.counts:
            total = (0, 0, 0, 0)
            if node.type == "Shape":
                g = self.geometry(node)
                total = (1, len(g.points), len(g.tris), g.used) if g else (1, 0, 0, 0)
            elif node.type in GROUPS:
                for kid in _children(node):
                    total = tuple(a + b for a, b in zip(total, self.count(kid)))
            self.counts[id(node)] = total
        return self.counts[id(node)]

    def check(self, nodes: list[Node]) -> None:
        inst = v = f = used = 0
        for n in nodes:
            c = self.count(n)
            inst, v, f, used = inst + c[0], v + c[1], f + c[2], used + c[3]
        if inst > self.limits.max_instances:
            raise ScanFormatError(
                self.path,
                "scene",
                f"at most {self.limits.max_instances} Shape instances after DEF/USE (limit)",
                str(inst),
            )
        check_counts(self.path, self.limits, v, f, used, "scene after DEF/USE expansion")

    def shapes(self, nodes: list[Node], mat: np.ndarray | None, out: list[tuple[Node, np.ndarray | None]]) -> None:
        for node in nodes:
            if node.type == "Shape":
                out.append((node, mat))
            elif node.type in GROUPS:
                m = mat
                if node.type == "Transform":
                    t = _transform(node, self.path)
                    if not np.array_equal(t, np.eye(4)):  # an identity (e.g. a bare Transform) costs nothing
                        m = t if mat is None else mat @ t
                self.shapes(_children(node), m, out)


def shape_texture_url(shape: Node) -> str | None:
    app = shape.fields.get("appearance")
    tex = app.fields.get("texture") if isinstance(app, Node) else None
    if isinstance(tex, Node) and tex.type == "ImageTexture":
        url = tex.fields.get("url")
        if isinstance(url, list) and url:
            return str(url[0]).strip('"')
    return None
