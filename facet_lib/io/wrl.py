"""VRML 2.0 (``.wrl``) IndexedFaceSet reader and writer (BU-3DFE scans, BU-4DFE frames).

Format: ISO/IEC 14772-1:1997 (VRML97). The scans of BU-3DFE and BU-4DFE are VRML 2.0 files
(header ``#VRML V2.0 utf8``) holding ``Shape { geometry IndexedFaceSet { coord Coordinate
{ point [...] } coordIndex [...] texCoord TextureCoordinate { point [...] } texCoordIndex [...] } }``
with ``appearance Appearance { texture ImageTexture { url "<name>.bmp" } }`` — sometimes inside a
``Transform`` and sometimes several Shapes per file. Commas are white space and ``#`` starts a
comment (outside strings), as the standard says. ``DEF name``/``USE name`` share nodes.

How it reads: a small grammar parser walks the node structure token by token on the raw bytes;
every numeric list (``point``, ``coordIndex``, ``texCoordIndex``, ``color`` …) is handed to a
compiled scanner (``vrml_numbers``) that reads it in one pass. Before any DEF/USE copy is made,
the scene's expanded size (Shape instances, vertices, triangles, nesting depth) is counted once per
distinct node and checked against ``ParseLimits``; a USE inside its own DEF (a cycle) is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from facet_lib.errors import ScanFormatError
from facet_lib.io.limits import DEFAULT_LIMITS, ParseLimits
from facet_lib.io.vrml_numbers import scan_numbers
from facet_lib.io.vrml_scene import Node, Scene, shape_texture_url
from facet_lib.mesh import Mesh, validate_mesh

# white space, commas and comments, then one token: a string, a bracket/brace, or a word/number
_TOKEN = re.compile(rb'(?:[\s,]++|#[^\n]*+)*+("(?:[^"\\]|\\.)*"|[{}\[\]]|[^\s,{}\[\]"#]+)')
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|[-+]?(?:nan|inf)$", re.I)
_KEYWORD_VALUES = {"TRUE", "FALSE", "NULL"}


class _Parser:
    def __init__(self, raw: bytes, path: str, limits: ParseLimits):
        self.raw, self.buf, self.path, self.limits = raw, np.frombuffer(raw, np.uint8), path, limits
        self.pos, self.depth, self.tokens = 0, 0, 0
        self.defs: dict[str, Node] = {}
        self.open: set[int] = set()  # ids of DEF nodes whose body is being parsed

    # -- lexing -------------------------------------------------------------------------------
    def where(self, pos: int | None = None) -> str:
        lines = self.raw.count(b"\n", 0, self.pos if pos is None else pos)
        return f"line {lines + 1}"

    def peek(self) -> str | None:
        m = _TOKEN.match(self.raw, self.pos)
        return m.group(1).decode("utf-8", "replace") if m else None

    def next(self) -> str:
        m = _TOKEN.match(self.raw, self.pos)
        if not m:
            raise ScanFormatError(self.path, self.where(), "more VRML tokens", "end of file")
        self.tokens += 1
        if self.tokens > self.limits.max_tokens:
            lim = self.limits.max_tokens
            raise ScanFormatError(
                self.path, self.where(), f"at most {lim} tokens outside numeric lists (limit)", "more"
            )
        self.pos = m.end()
        return m.group(1).decode("utf-8", "replace")

    def expect(self, tok: str) -> None:
        start = self.pos
        got = self.next()
        if got != tok:
            raise ScanFormatError(self.path, self.where(start), f"'{tok}'", repr(got))

    # -- grammar ------------------------------------------------------------------------------
    def parse_file(self) -> list[Node]:
        nodes: list[Node] = []
        while self.peek() is not None:
            if self.peek() == "ROUTE":  # ROUTE a.b TO c.d
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
                raise ScanFormatError(self.path, self.where(start), f"a DEF for USE {name}")
            node = self.defs[name]
            if id(node) in self.open:
                raise ScanFormatError(self.path, self.where(start), f"no USE {name} inside its own DEF", "a cycle")
            if self.depth + node.height > self.limits.max_depth:
                lim = self.limits.max_depth
                raise ScanFormatError(
                    self.path, self.where(start), f"nodes nested at most {lim} deep (limit)", f"USE {name}"
                )
            return node
        name = None
        if tok == "DEF":
            name, tok = self.next(), self.next()
        if not re.match(r"[A-Za-z_]", tok):
            raise ScanFormatError(self.path, self.where(start), "a node type", repr(tok))
        if self.depth >= self.limits.max_depth:
            lim = self.limits.max_depth
            raise ScanFormatError(self.path, self.where(start), f"nodes nested at most {lim} deep (limit)", tok)
        node = Node(tok)
        if name:
            self.defs[name] = node
            self.open.add(id(node))
        self.depth += 1
        self.expect("{")
        while True:
            t = self.peek()
            if t is None:
                raise ScanFormatError(self.path, self.where(), f"'}}' closing {node.type}", "end of file")
            if t == "}":
                self.next()
                self.depth -= 1
                self.open.discard(id(node))
                return node
            fname = self.next()
            value = node.fields[fname] = self.parse_value()
            for kid in value if isinstance(value, list) else [value]:
                if isinstance(kid, Node):
                    node.height = max(node.height, kid.height + 1)

    def _is_node_start(self, tok: str) -> bool:
        if tok in ("DEF", "USE"):
            return True
        m = _TOKEN.match(self.raw, self.pos)
        after = _TOKEN.match(self.raw, m.end()) if m else None
        return bool(re.match(r"[A-Za-z_]", tok)) and after is not None and after.group(1) == b"{"

    def parse_value(self) -> object:
        tok = self.peek()
        if tok is None:
            raise ScanFormatError(self.path, self.where(), "a field value", "end of file")
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
            raise ScanFormatError(self.path, self.where(), "a field value", repr(tok))
        return values

    def parse_list(self) -> object:
        start = self.pos
        self.expect("[")
        first = self.peek()
        if first is None:
            raise ScanFormatError(self.path, self.where(start), "']' closing the list", "end of file")
        if not (first.startswith('"') or re.match(r"[A-Za-z_]", first)) or _NUMBER.match(first):
            # not strings or nodes: a numeric array, read in bulk by compiled code
            arr, self.pos = scan_numbers(self.raw, self.buf, self.pos, self.path, self.where)
            return arr
        if self.raw.find(b"]", self.pos) < 0:  # report the unclosed list, not the node cut inside it
            raise ScanFormatError(self.path, self.where(start), "']' closing the list", "end of file")
        items: list[object] = []
        while self.peek() != "]":
            t = self.peek()
            if t is None:
                raise ScanFormatError(self.path, self.where(start), "']' closing the list", "end of file")
            items.append(self.next() if t.startswith('"') else self.parse_node())
        self.next()
        return items


def read_wrl(path: str | Path, limits: ParseLimits = DEFAULT_LIMITS) -> Mesh:
    """Read every IndexedFaceSet of a VRML 2.0 file into one triangle Mesh (mm, as stored).

    ``limits`` bounds nesting depth, DEF/USE expansion, vertices and faces (``ScanFormatError``
    naming the file and the limit); servers reading untrusted files pass their own.
    """
    path = Path(path)
    p = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ScanFormatError(p, "file", "a readable file", str(e)) from None
    if not raw.startswith(b"#VRML V2.0"):
        raise ScanFormatError(p, "header", "'#VRML V2.0 utf8'", repr(raw[:20].decode("utf-8", "replace")))
    nodes = _Parser(raw, p, limits).parse_file()
    scene = Scene(p, limits)
    scene.check(nodes)  # refuses oversized expansions before any copy is made
    shapes: list[tuple[Node, np.ndarray | None]] = []
    scene.shapes(nodes, None, shapes)

    verts, faces, uvs, cols = [], [], [], []
    texture: str | None = None
    offset = 0
    for shape, mat in shapes:
        g = scene.geometry(shape)
        if g is None:
            continue
        pts = g.points if mat is None else g.points @ mat[:3, :3].T + mat[:3, 3]
        if g.uv is not None:
            texture = texture or shape_texture_url(shape)
        if g.colors is not None:
            cols.append(g.colors)
        verts.append(pts)
        faces.append(g.tris + offset if offset else g.tris)
        uvs.append(g.uv)
        offset += len(pts)

    if not verts:
        raise ScanFormatError(p, "scene", "at least one Shape with an IndexedFaceSet", "none")
    mesh = Mesh(
        vertices=np.concatenate(verts).astype(np.float32) if len(verts) > 1 else verts[0].astype(np.float32),
        faces=np.concatenate(faces) if len(faces) > 1 else faces[0],
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
