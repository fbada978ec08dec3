"""Index-time structural checks: every damaged file the full reader refuses is caught from its two ends,
and every valid file (synthetic data, trimesh's writers) passes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh

from facet_lib.data.scan_checks import BLOCK, scan_problem
from facet_lib.errors import ScanFormatError
from facet_lib.io import read_scan


def _first(root: Path, pattern: str) -> Path:
    return sorted(root.rglob(pattern))[0]


@pytest.fixture(scope="module")
def plys(tmp_path_factory):
    d = tmp_path_factory.mktemp("ply")
    mesh = trimesh.creation.icosphere(subdivisions=4)  # 2,562 vertices: bigger than BLOCK in every encoding
    out = {}
    for enc in ("ascii", "binary"):
        out[enc] = d / f"sphere_{enc}.ply"
        out[enc].write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding=enc))
    return out


def _corrupt(src: Path, dst: Path, how: str) -> Path:
    data = src.read_bytes()
    dst = dst.with_suffix(src.suffix)
    if how == "half":
        dst.write_bytes(data[: len(data) // 2])
    elif how == "cut_end":
        dst.write_bytes(data[:-7])
    elif how == "cut_90":  # a copy interrupted at 90 %
        dst.write_bytes(data[: len(data) * 9 // 10])
    elif how == "nul_tail":
        dst.write_bytes(data[:-200] + b"\x00" * 200)
    elif how == "empty":
        dst.write_bytes(b"")
    elif how == "header_only":
        dst.write_bytes(data[:64])
    return dst


CASES = [  # (synthetic tree, file pattern, damage)
    ("bu3dfe", "*_F3D.wrl", "half"),
    ("bu3dfe", "*_F3D.wrl", "cut_90"),
    ("bu3dfe", "*_F3D.wrl", "nul_tail"),
    ("bu3dfe", "*_F3D.wrl", "empty"),
    ("bu3dfe", "*_F3D.wrl", "header_only"),
    ("bosphorus", "*.bnt", "half"),
    ("bosphorus", "*.bnt", "cut_end"),
    ("bosphorus", "*.bnt", "header_only"),
]


@pytest.mark.parametrize("ds,pattern,how", CASES)
def test_damaged_scans_are_caught(synth_root, tmp_path, ds, pattern, how):
    bad = _corrupt(_first(synth_root / ds, pattern), tmp_path / "bad", how)
    why = scan_problem(bad)
    assert why, f"{how} {ds} file passed the index-time check"
    with pytest.raises(ScanFormatError):  # and the full reader agrees it is unusable
        read_scan(bad)


@pytest.mark.parametrize(
    "how,why", [("cut_end", "truncated: the last 'f' statement has 2 values"), ("nul_tail", "binary data")]
)
def test_damaged_obj_is_caught_though_trimesh_reads_it(synth_root, tmp_path, how, why):
    """trimesh silently drops a cut-off last face or a NUL-filled tail; the index refuses such files."""
    bad = _corrupt(_first(synth_root / "bp4d", "*.obj"), tmp_path / "bad", how)
    assert why in scan_problem(bad)


@pytest.mark.parametrize("how", ["half", "cut_end"])
def test_damaged_binary_ply_is_caught(plys, tmp_path, how):
    bad = _corrupt(plys["binary"], tmp_path / "bad", how)
    assert "truncated" in scan_problem(bad)


def test_damaged_ascii_ply_and_bad_headers(plys, tmp_path):
    assert "truncated" in scan_problem(_corrupt(plys["ascii"], tmp_path / "a", "cut_end"))
    (tmp_path / "x.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\n" + b"1 2 3\n" * 2000)
    assert "no 'end_header'" in scan_problem(tmp_path / "x.ply")
    (tmp_path / "y.ply").write_bytes(b"PK\x03\x04 a zip file")
    assert "not a PLY file" in scan_problem(tmp_path / "y.ply")


def test_limit_a_cut_between_closing_brackets_passes(synth_root, tmp_path):
    """Documented limit: only the two ends are read, so a VRML file cut exactly after a closing bracket
    looks complete here; the full parse (at render) refuses it and the render step records it."""
    src = _first(synth_root / "bu3dfe", "*_F3D.wrl")
    bad = _corrupt(src, tmp_path / "bad", "cut_end")
    assert bad.read_bytes().rstrip().endswith(b"}") and scan_problem(bad) is None
    with pytest.raises(ScanFormatError):
        read_scan(bad)


def test_other_bad_files(tmp_path):
    (tmp_path / "page.obj").write_text("<html><body>404 not found</body></html>\n")
    assert "unknown statement '<html><body>404'" in scan_problem(tmp_path / "page.obj")
    (tmp_path / "novertex.obj").write_text("# only a comment\no face\n")
    assert "no vertices or no faces" in scan_problem(tmp_path / "novertex.obj")
    head = struct.pack("<HHdH", 4, 5, -1e9, 3) + b"a.p" + struct.pack("<I", 99)
    (tmp_path / "count.bnt").write_bytes(head + b"\x00" * 800)
    assert "value count 99, expected rows*cols*5 = 100" in scan_problem(tmp_path / "count.bnt")
    (tmp_path / "nan.bnt").write_bytes(struct.pack("<HHdH", 4, 5, float("nan"), 0) + struct.pack("<I", 100))
    assert "not finite" in scan_problem(tmp_path / "nan.bnt")
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a scan file (suffix '.txt'" in scan_problem(tmp_path / "notes.txt")
    assert "unreadable" in scan_problem(tmp_path / "missing.wrl")
    (tmp_path / "comments.wrl").write_text("#VRML V2.0 utf8\n# nothing else\n")
    assert "no VRML nodes" in scan_problem(tmp_path / "comments.wrl")
    (tmp_path / "open.wrl").write_text("#VRML V2.0 utf8\nTransform { children [ Shape { } ] }\n} }\n")
    assert "unbalanced braces" in scan_problem(tmp_path / "open.wrl")


def test_every_valid_file_passes(synth_root, plys):
    files = [f for f in synth_root.rglob("*") if f.suffix in (".wrl", ".bnt", ".obj")] + list(plys.values())
    assert len(files) > 100 and any(f.stat().st_size > 2 * BLOCK for f in files)
    problems = {str(f): scan_problem(f) for f in files if scan_problem(f)}
    assert not problems
    for enc, p in plys.items():  # the checks read PLY the way trimesh writes it
        assert len(read_scan(p).vertices) == 2562, enc
    assert np.isfinite(read_scan(_first(synth_root / "bp4d", "*.obj")).vertices).all()
