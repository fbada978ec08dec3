"""REFERENCE ONLY (tests and benchmarks): the token-by-token VRML reader as it was before the bulk reader.

Kept verbatim (with its own fan triangulation) so that tests/io/test_wrl_equivalence.py can check the
current reader against it. Its original docstring follows.

VRML 2.0 (``.wrl``) IndexedFaceSet reader and writer (BU-3DFE scans, BU-4DFE frames).

Format: ISO/IEC 14772-1:1997 (VRML97). The scans of BU-3DFE and BU-4DFE are VRML 2.0 files
(header ``#VRML V2.0 utf8``) holding ``Shape { geometry IndexedFaceSet { coord Coordinate
{ point [...] } coordIndex [...] texCoord TextureCoordinate { point [...] } texCoordIndex [...] } }``
with ``appearance Appearance { texture ImageTexture { url "<name>.bmp" } }`` — sometimes inside a
``Transform`` and sometimes several Shapes per file. Commas are white space and ``#`` starts a
comment (outside strings), as the standard says. ``DEF name``/``USE name`` share nodes.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facet_lib.errors import ScanFormatError
from facet_lib.mesh import Mesh, validate_mesh

_COMMENT_OR_STRING = re.compile(r'("(?:[^"\\]|\\.)*")|#[^\n]*')
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[{}\[\]]|[^\s{}\[\]"]+)')
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|[-+]?(?:nan|inf)$", re.I)
_KEYWORD_VALUES = {"TRUE", "FALSE", "NULL"}


@dataclass
class Node:
    type: str
    fields: dict[str, object] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: str, path: str):
        self.text, self.path, self.pos = text, path, 0
        self.defs: dict[str, Node] = {}

    # -- lexing -------------------------------------------------------------------------------
    def _where(self, pos: int | None = None) -> str:
        p = self.pos if pos is None else pos
        return f"line {self.text.count(chr(10), 0, p) + 1}"

    def peek(self) -> str | None:
        m = _TOKEN.match(self.text, self.pos)
        return m.group(1) if m else None

    def next(self) -> str:
        m = _TOKEN.match(self.text, self.pos)
        if not m:
            raise ScanFormatError(self.path, self._where(), "more VRML tokens", "end of file")
        self.pos = m.end()
        return m.group(1)

    def expect(self, tok: str) -> None:
        start = self.pos
        got = self.next()
        if got != tok:
            raise ScanFormatError(self.path, self._where(start), f"'{tok}'", repr(got))

    # -- grammar ------------------------------------------------------------------------------
    def parse_file(self) -> list[Node]:
        nodes: list[Node] = []
        while self.peek() is not None:
            tok = self.peek()
            if tok == "ROUTE":  # ROUTE a.b TO c.d
                for _ in range(4):
                    self.next()
                continue
            nodes.append(self.parse_node())
        return nodes

    def parse_node(self) -> Node:
        start = self.pos
        tok = self.next()
        if tok == "USE":
            name = self.next()
            if name not in self.defs:
                raise ScanFormatError(self.path, self._where(start), f"a DEF for USE {name}")
            return self.defs[name]
        name = None
        if tok == "DEF":
            name, tok = self.next(), self.next()
        if not re.match(r"[A-Za-z_]", tok):
            raise ScanFormatError(self.path, self._where(start), "a node type", repr(tok))
        node = Node(tok)
        if name:
            self.defs[name] = node
        self.expect("{")
        while True:
            t = self.peek()
            if t is None:
                raise ScanFormatError(self.path, self._where(), f"'}}' closing {node.type}", "end of file")
            if t == "}":
                self.next()
                return node
            fname = self.next()
            node.fields[fname] = self.parse_value()

    def _is_node_start(self, tok: str) -> bool:
        if tok in ("DEF", "USE"):
            return True
        m = _TOKEN.match(self.text, self.pos)
        after = _TOKEN.match(self.text, m.end()) if m else None
        return bool(re.match(r"[A-Za-z_]", tok)) and after is not None and after.group(1) == "{"

    def parse_value(self) -> object:
        tok = self.peek()
        if tok is None:
            raise ScanFormatError(self.path, self._where(), "a field value", "end of file")
        if tok == "[":
            return self.parse_list()
        if self._is_node_start(tok):
            return self.parse_node()
        values: list[str] = []
        while True:
            t = self.peek()
            if t is None or not (_NUMBER.match(t) or t.startswith('"') or t in _KEYWORD_VALUES):
                break
            values.append(self.next())
        if not values:
            raise ScanFormatError(self.path, self._where(), "a field value", repr(tok))
        return values

    def parse_list(self) -> object:
        start = self.pos
        self.expect("[")
        end = self.text.find("]", self.pos)
        if end < 0:
            raise ScanFormatError(self.path, self._where(start), "']' closing the list", "end of file")
        body = self.text[self.pos : end]
        if "{" not in body and '"' not in body:  # fast path: a numeric array, parsed in C
            self.pos = end + 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", DeprecationWarning)  # numpy warns on bad text
                    return np.fromstring(body, sep=" ")
            except (ValueError, DeprecationWarning):
                bad = next((t for t in body.split() if not _NUMBER.match(t)), "?")
                raise ScanFormatError(self.path, self._where(start), "numbers in the list", repr(bad)) from None
        items: list[object] = []
        while self.peek() != "]":
            t = self.peek()
            if t is None:
                raise ScanFormatError(self.path, self._where(start), "']' closing the list", "end of file")
            if t.startswith('"'):
                items.append(self.next())
            else:
                items.append(self.parse_node())
        self.next()
        return items


def fan_triangulate(index: np.ndarray) -> np.ndarray:
    """Polygons given as one index list with -1 separators → (F, 3) triangles (fan per polygon)."""
    idx = np.asarray(index, dtype=np.int64)
    if idx.size == 0:
        return np.zeros((0, 3), np.int64)
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


def _collect_shapes(nodes: list[Node], mat: np.ndarray, out: list[tuple[Node, np.ndarray]], path: str):
    for node in nodes:
        if not isinstance(node, Node):
            continue
        if node.type == "Shape":
            out.append((node, mat))
        elif node.type in ("Transform", "Group", "Collision", "Anchor", "Billboard", "LOD", "Switch"):
            m = mat @ _transform(node, path) if node.type == "Transform" else mat
            kids = node.fields.get("children", node.fields.get("level", node.fields.get("choice", [])))
            _collect_shapes(kids if isinstance(kids, list) else [kids], m, out, path)


def _texture_url(shape: Node) -> str | None:
    app = shape.fields.get("appearance")
    tex = app.fields.get("texture") if isinstance(app, Node) else None
    if isinstance(tex, Node) and tex.type == "ImageTexture":
        url = tex.fields.get("url")
        if isinstance(url, list) and url:
            return str(url[0]).strip('"')
    return None


def _strip_comments(text: str) -> str:
    """Remove ``#`` comments outside strings; only lines holding a '#' pay for the regex."""
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        if "#" in ln:
            lines[i] = _COMMENT_OR_STRING.sub(lambda m: m.group(1) or "", ln)
    return "\n".join(lines)


def read_wrl(path: str | Path) -> Mesh:
    """Read every IndexedFaceSet of a VRML 2.0 file into one triangle Mesh (mm, as stored)."""
    path = Path(path)
    p = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ScanFormatError(p, "file", "a readable file", str(e)) from None
    text = raw.decode("utf-8", errors="replace")
    if not text.startswith("#VRML V2.0"):
        raise ScanFormatError(p, "header", "'#VRML V2.0 utf8'", repr(text[:20]))
    text = _strip_comments(text).replace(",", " ")
    parser = _Parser(text, p)
    shapes: list[tuple[Node, np.ndarray]] = []
    _collect_shapes(parser.parse_file(), np.eye(4), shapes, p)

    verts, faces, uvs, cols = [], [], [], []
    texture: str | None = None
    offset = 0
    for shape, mat in shapes:
        geo = shape.fields.get("geometry")
        if not isinstance(geo, Node) or geo.type != "IndexedFaceSet":
            continue
        coord = geo.fields.get("coord")
        if not isinstance(coord, Node):
            raise ScanFormatError(p, "IndexedFaceSet.coord", "a Coordinate node")
        pts = _as_array(coord.fields.get("point", []), p, "Coordinate.point", 3)
        pts = pts @ mat[:3, :3].T + mat[:3, 3]
        if "coordIndex" not in geo.fields:
            raise ScanFormatError(p, "IndexedFaceSet", "a coordIndex field")
        cidx = np.asarray(geo.fields["coordIndex"], dtype=np.float64).ravel()
        if cidx.size and not np.all(cidx == np.round(cidx)):
            raise ScanFormatError(p, "coordIndex", "integer indices")
        cidx = cidx.astype(np.int64)
        bad = (cidx < -1) | (cidx >= len(pts))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScanFormatError(p, f"coordIndex[{i}]", f"an index in [0, {len(pts) - 1}] or -1", str(cidx[i]))
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
                tidx = np.asarray(tidx, dtype=np.float64).astype(np.int64).ravel()
                if tidx.shape != cidx.shape:
                    raise ScanFormatError(p, "texCoordIndex", f"{cidx.size} entries like coordIndex", str(tidx.size))
                if tidx.max(initial=-1) >= len(tpts):
                    raise ScanFormatError(p, "texCoordIndex", f"indices < {len(tpts)}", str(tidx.max()))
                corner = cidx >= 0
                # Per-corner UVs collapse to per-vertex ones (a seam vertex keeps its last UV).
                uv[cidx[corner]] = tpts[tidx[corner]]
            url = _texture_url(shape)
            texture = texture or url
        col = geo.fields.get("color")
        if isinstance(col, Node):
            c = _as_array(col.fields.get("color", []), p, "Color.color", 3)
            if len(c) == len(pts):
                cols.append(np.clip(c * 255 + 0.5, 0, 255).astype(np.uint8))
        verts.append(pts)
        faces.append(tris + offset)
        uvs.append(uv)
        offset += len(pts)

    if not verts:
        raise ScanFormatError(p, "scene", "at least one Shape with an IndexedFaceSet", "none")
    mesh = Mesh(
        vertices=np.concatenate(verts).astype(np.float32),
        faces=np.concatenate(faces).astype(np.int64),
        source=p,
    )
    if all(u is not None for u in uvs):
        mesh.uv = np.concatenate(uvs).astype(np.float32)
        mesh.texture_path = (path.parent / texture) if texture else None
    if len(cols) == len(verts):
        mesh.colors = np.concatenate(cols)
    bnd = path.with_suffix(".bnd")  # BU-3DFE keeps its 83 landmarks beside the scan
    if bnd.exists():
        from facet_lib.io.landmarks import read_bnd

        mesh.landmarks = read_bnd(bnd)
    return validate_mesh(mesh, p)


def _fmt(arr: np.ndarray, fmt: str) -> str:
    """One row per line, comma-separated rows (the style of the BU-3DFE files)."""
    line = " ".join([fmt] * arr.shape[1])
    return (",\n" + " " * 8).join(line % tuple(row) for row in arr.tolist())


def write_wrl(path: str | Path, mesh: Mesh, texture_url: str | None = None) -> None:
    """Write a BU-3DFE-style VRML 2.0 file (one Shape, triangle IndexedFaceSet, optional UV/texture)."""
    v = mesh.vertices
    f = np.concatenate([mesh.faces, -np.ones((mesh.n_faces, 1), np.int64)], axis=1)
    parts = [
        "#VRML V2.0 utf8\n\n",
        "# Produced by facet_lib (synthetic data)\n",
        "Transform {\n  children [\n  Shape {\n",
    ]
    if texture_url:
        parts.append(f'    appearance Appearance {{\n      texture ImageTexture {{ url "{texture_url}" }}\n    }}\n')
    parts.append("    geometry DEF FaceSet IndexedFaceSet {\n      creaseAngle 3.14\n      solid FALSE\n")
    parts.append("      coord DEF Coords Coordinate {\n        point [\n        ")
    parts.append(_fmt(v, "%.4f"))
    parts.append("\n        ]\n      }\n")
    if mesh.uv is not None:
        parts.append("      texCoord TextureCoordinate {\n        point [\n        ")
        parts.append(_fmt(mesh.uv, "%.5f"))
        parts.append("\n        ]\n      }\n")
    parts.append("      coordIndex [\n        ")
    parts.append(_fmt(f, "%d"))
    parts.append("\n      ]\n")
    if mesh.uv is not None:
        parts.append("      texCoordIndex [\n        ")
        parts.append(_fmt(f, "%d"))
        parts.append("\n      ]\n")
    parts.append("    }\n  }\n  ]\n}\n")
    Path(path).write_text("".join(parts))
