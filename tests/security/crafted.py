"""Crafted scan files for the hostile corpus (tests/security/corpus.py): VRML bombs and cycles,
index and number faults, and broken OBJ/PLY/BNT files. Generated, never committed as files."""

from __future__ import annotations

import os
import struct

# -- crafted scan files ------------------------------------------------------------------------------
TRI = "Shape { geometry IndexedFaceSet { coord Coordinate { point [0 0 0, 1 0 0, 0 1 0] } coordIndex [0 1 2 -1] } }"
HEAD = "#VRML V2.0 utf8\n"


def _tex_tri(tidx: str) -> str:
    return HEAD + (
        "Shape { geometry IndexedFaceSet { coord Coordinate { point [0 0 0, 1 0 0, 0 1 0] } coordIndex [0 1 2 -1] "
        f"texCoord TextureCoordinate {{ point [0 0, 1 0, 0 1] }} texCoordIndex {tidx} }} }}"
    )


def wrl_files() -> dict[str, str]:
    bomb = [HEAD + f"DEF L0 Transform {{ children [ {TRI} ] }}"]
    bomb += [f"DEF L{i} Transform {{ children [ USE L{i - 1} USE L{i - 1} ] }}" for i in range(1, 30)]
    return {
        "billion-laughs": "\n".join(bomb),
        "def-use-cycle": HEAD + f"DEF A Transform {{ children [ {TRI} USE A ] }}",
        "deep-nesting": HEAD + "Transform { children [ " * 20000 + TRI + " ] }" * 20000,
        "200k-faces-3-vertices": HEAD + TRI.replace("[0 1 2 -1]", "[" + " ".join(["0 1 2 -1"] * 200_000) + "]"),
        "tex-index-negative": _tex_tri("[0 -5 2 -1]"),
        "tex-index-negative-wrap": _tex_tri("[-2 1 2 -1]"),
        "tex-index-too-large": _tex_tri("[0 1 9 -1]"),
        "tex-index-count": _tex_tri("[0 1 -1]"),
        "coord-index-too-large": HEAD + TRI.replace("[0 1 2 -1]", "[0 1 7 -1]"),
        "coord-index-negative": HEAD + TRI.replace("[0 1 2 -1]", "[0 -3 2 -1]"),
        "coords-nan": HEAD + TRI.replace("0 1 0]", "nan nan nan]"),
        "coords-inf": HEAD + TRI.replace("0 1 0]", "1e999 0 0]"),
        "coords-two-per-point": HEAD + TRI.replace("[0 0 0, 1 0 0, 0 1 0]", "[0 0, 1 0, 0 1, 1]"),
        "point-empty": HEAD + TRI.replace("[0 0 0, 1 0 0, 0 1 0]", "[]"),
        "no-coord-index": HEAD + TRI.replace("coordIndex [0 1 2 -1]", ""),
        "no-coord": HEAD + "Shape { geometry IndexedFaceSet { coordIndex [0 1 2 -1] } }",
        "header-only": HEAD,
        "not-vrml": "hello, this is not a scan\n" * 10,
        "vrml1-header": "#VRML V1.0 ascii\nSeparator { }",
        "unterminated": HEAD + "Transform { children [ Shape { geometry IndexedFaceSet { coord Coordinate { point [0",
        "unbalanced-close": HEAD + "] } ] }" * 100,
        "use-undefined": HEAD + "Transform { children [ USE NOPE ] }",
        "huge-number-token": HEAD + TRI.replace("0 1 0]", "0 1 " + "9" * 5000 + "]"),
        "letters-in-point": HEAD + TRI.replace("0 1 0]", "0 one 0]"),
        "binary-junk": HEAD + os.urandom(4000).decode("latin-1"),
        "nul-bytes": HEAD + "\x00" * 5000,
        "string-unterminated": HEAD + 'Shape { appearance Appearance { texture ImageTexture { url "face.bmp',
        "texture-missing-file": HEAD.replace("\n", "")
        + '\nShape { appearance Appearance { texture ImageTexture { url "/etc/passwd" } } '
        + TRI.split("Shape {", 1)[1],
        "field-not-node": HEAD + "Shape { geometry 5 }",
    }


def obj_files() -> dict[str, str]:
    v = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
    return {
        "face-index-zero": v + "f 0 1 2\n",
        "face-index-too-large": v + "f 1 2 9\n",
        "face-index-negative-beyond": v + "f -1 -2 -9\n",
        "vertex-nan": "v nan nan nan\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
        "vertices-only": v,
        "letters": "v a b c\nf x y z\n",
        "empty": "",
    }


def ply_files() -> dict[str, bytes]:
    head = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    faces = "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    return {
        "bad-magic": b"plx\nend_header\n",
        "count-mismatch": (head + faces + "0 0 0\n1 0 0\n3 0 1 2\n").encode(),
        "face-index-too-large": (head + faces + "0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n").encode(),
        "huge-count": b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000000000\nproperty float x\n"
        b"property float y\nproperty float z\nend_header\n\x00\x00",
        "binary-truncated": (head.replace("ascii", "binary_little_endian") + faces).encode() + b"\x00" * 7,
        "letters": (head + faces + "a b c\n").encode(),
        "no-end-header": head.encode(),
    }


def bnt_files() -> dict[str, bytes]:
    return {
        "garbage": os.urandom(5000),
        "truncated-header": b"\x00\x01",
        "huge-grid": struct.pack("<HHd", 65535, 65535, 1.0) + b"\x00" * 64,
        "empty": b"",
    }


def scan_files() -> list[tuple[str, str, bytes]]:
    """(id, format, bytes) for every crafted file."""
    out = [(f"wrl-{k}", "wrl", v.encode("utf-8", "surrogateescape")) for k, v in wrl_files().items()]
    out += [(f"obj-{k}", "obj", v.encode()) for k, v in obj_files().items()]
    out += [(f"ply-{k}", "ply", v) for k, v in ply_files().items()]
    out += [(f"bnt-{k}", "bnt", v) for k, v in bnt_files().items()]
    out.append(("garbage-2mb", "wrl", os.urandom(2 * 2**20)))
    return out
