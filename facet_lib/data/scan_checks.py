"""Cheap structural checks of scan files at index time.

A corrupt file should be quarantined when the dataset is indexed, not fail later in the render step.
Parsing every scan at index time would cost as much as reading the dataset, so each check reads at most
the first and the last ``BLOCK`` bytes (and the file size): the header, the binary layout's size
arithmetic, and whether the text ends where its grammar says it must end. A file that passes can still
fail the full parse (a bad number in the middle); the render step records that.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from facet_lib.io import SCAN_SUFFIXES

BLOCK = 4096  # bytes read from each end of a file


def scan_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a usable scan file, or None; never raises for a bad file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        return f"not a scan file (suffix '{p.suffix}', expected one of {', '.join(SCAN_SUFFIXES)})"
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(BLOCK)
            if size > BLOCK:
                f.seek(max(BLOCK, size - BLOCK))
                tail = f.read(BLOCK)
            else:
                tail = head
    except (OSError, ValueError) as e:  # ValueError: embedded NUL in the path
        return f"unreadable: {e}"
    if not head:
        return "empty file"
    check = {".wrl": _wrl, ".bnt": _bnt, ".obj": _obj, ".ply": _ply}[suffix]
    return check(head, tail, size)


def _text(head: bytes, tail: bytes, what: str) -> str | None:
    for name, block in (("start", head), ("end", tail)):
        if b"\x00" in block:
            return f"binary data (NUL bytes) near the {name} of a {what} text file"
    return None


def _last_words(block: bytes) -> list[bytes]:
    return next((ln.split() for ln in reversed(block.splitlines()) if ln.split()), [])


def _wrl(head: bytes, tail: bytes, size: int) -> str | None:
    if not head.startswith(b"#VRML V2.0"):
        return "not a VRML 2.0 file (header must start with '#VRML V2.0')"
    if why := _text(head, tail, "VRML"):
        return why
    # the scene ends with the closing bracket of its last node: anything else is a cut-off file
    lines = [ln.split(b"#", 1)[0].strip() for ln in tail.splitlines()]
    body = [ln for ln in lines if ln]
    if not body:
        return "no VRML nodes (only a header and comments)" if size <= BLOCK else "ends in comments only"
    if not body[-1].endswith((b"}", b"]")):
        return f"truncated: the file ends inside a node (last text {body[-1][-40:].decode('latin-1')!r})"
    if size <= BLOCK and head.count(b"{") != head.count(b"}"):
        return f"unbalanced braces ({head.count(b'{')} '{{' against {head.count(b'}')} '}}')"
    return None


def _bnt(head: bytes, tail: bytes, size: int) -> str | None:
    # layout in facet_lib.io.bnt: uint16 rows, uint16 cols, float64 zmin, uint16 len, name, uint32 n, n float64
    if size < 14:
        return f"truncated .bnt header ({size} of 14 bytes)"
    rows, cols, zmin, nlen = struct.unpack_from("<HHdH", head, 0)
    if rows == 0 or cols == 0:
        return f"empty .bnt grid ({rows}x{cols})"
    if zmin != zmin or zmin in (float("inf"), float("-inf")):
        return f".bnt background value is not finite ({zmin})"
    off = 14 + nlen
    if off + 4 > min(size, BLOCK):
        return f".bnt image name of {nlen} bytes runs past the header"
    (n,) = struct.unpack_from("<I", head, off)
    if n != rows * cols * 5:
        return f".bnt value count {n}, expected rows*cols*5 = {rows * cols * 5}"
    need = off + 4 + 8 * n
    if size < need:  # trailing bytes are tolerated, as by the reader
        return f"truncated: a {rows}x{cols} .bnt needs {need} bytes, the file has {size}"
    return None


_OBJ_KEYWORDS = {
    b"v", b"vt", b"vn", b"vp", b"f", b"l", b"p", b"o", b"g", b"s", b"usemtl", b"mtllib",
    b"cstype", b"deg", b"curv", b"curv2", b"surf", b"parm", b"end", b"mg", b"lod", b"bevel",
}  # fmt: skip
_MIN_ARGS = {b"v": 3, b"vn": 3, b"vt": 1, b"f": 3}


def _obj(head: bytes, tail: bytes, size: int) -> str | None:
    if why := _text(head, tail, "OBJ"):
        return why
    blocks = [head] if size <= BLOCK else [head, tail]
    seen = set()
    for k, block in enumerate(blocks):
        lines = block.splitlines()
        if size > BLOCK:  # a block's cut line is partial: skip it
            lines = lines[:-1] if k == 0 else lines[1:]
        for ln in lines:
            words = ln.split()
            if not words or words[0].startswith(b"#"):
                continue
            if words[0] not in _OBJ_KEYWORDS:
                return f"not an OBJ mesh: unknown statement {words[0][:20].decode('latin-1')!r}"
            seen.add(words[0])
    last = _last_words(tail)
    if last and len(last) - 1 < _MIN_ARGS.get(last[0], 0):
        return f"truncated: the last {last[0].decode('latin-1')!r} statement has {len(last) - 1} values"
    if size <= BLOCK and not {b"v", b"f"} <= seen:
        return "no vertices or no faces ('v' and 'f' statements)"
    return None


_PLY_SIZES = {
    "char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8,
}  # fmt: skip


def _ply(head: bytes, tail: bytes, size: int) -> str | None:
    if not re.match(rb"ply\r?\n", head):
        return "not a PLY file (must start with 'ply')"
    end = head.find(b"end_header")
    if end < 0:
        return f"PLY header has no 'end_header' in its first {BLOCK} bytes"
    header = head[:end].decode("latin-1").splitlines()
    fmt = next((ln.split()[1] for ln in header if ln.startswith("format ") and len(ln.split()) > 1), None)
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        return f"PLY format {fmt!r}, expected ascii or binary_little/big_endian"
    elements: list[list] = []  # [name, count, fixed bytes per item or None, min bytes per item]
    for ln in header:
        w = ln.split()
        if w[:1] == ["element"] and len(w) == 3 and w[2].isdigit():
            elements.append([w[1], int(w[2]), 0, 0])
        elif w[:1] == ["property"] and elements:
            el = elements[-1]
            if len(w) == 5 and w[1] == "list" and w[2] in _PLY_SIZES and w[3] in _PLY_SIZES:
                least = 3 if w[4] in ("vertex_indices", "vertex_index") else 0  # a polygon has ≥ 3 corners
                el[2], el[3] = None, el[3] + _PLY_SIZES[w[2]] + least * _PLY_SIZES[w[3]]
            elif len(w) == 3 and w[1] in _PLY_SIZES:
                el[2] = None if el[2] is None else el[2] + _PLY_SIZES[w[1]]
                el[3] += _PLY_SIZES[w[1]]
            else:
                return f"PLY header: cannot read '{ln.strip()}'"
    counts = {e[0]: e[1] for e in elements}
    if not counts.get("vertex") or not counts.get("face"):
        return f"PLY header declares no vertices or no faces (elements {counts})"
    if fmt != "ascii":
        body = end + len(b"end_header") + (2 if head[end + 10 : end + 12] == b"\r\n" else 1)
        need = body + sum(e[1] * e[3] for e in elements)
        if size < need:
            return f"truncated: binary PLY needs at least {need} bytes for its declared elements, the file has {size}"
    elif why := _text(head, tail, "PLY"):
        return why
    elif elements[-1][2] is None and (
        last := next((ln.split() for ln in reversed(tail.splitlines()) if ln.split()), [])
    ):
        # ascii, a list element last (faces): its last line is "<count> i1 … i<count>"
        if not last[0].isdigit() or len(last) < int(last[0]) + 1:
            return f"truncated: the last face line has {len(last)} values"
    return None
