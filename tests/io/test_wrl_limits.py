"""Hostile VRML files (issue 13 item 2) are refused quickly with ScanFormatError naming the file and the limit."""

import numpy as np
import pytest

from facet_lib.errors import ConfigError, ScanFormatError
from facet_lib.io import ParseLimits, read_scan
from facet_lib.io.wrl import read_wrl, write_wrl
from facet_lib.mesh import Mesh

TRIANGLE = (
    "Shape { geometry IndexedFaceSet { coord Coordinate { point [ 0 0 0 1 0 0 0 1 0 ] } coordIndex [ 0 1 2 -1 ] } }"
)


def _write(tmp_path, text: str, name: str = "hostile.wrl"):
    p = tmp_path / name
    p.write_text("#VRML V2.0 utf8\n" + text)
    return p


def _refused(p, match: str, limits: ParseLimits | None = None) -> ScanFormatError:
    with pytest.raises(ScanFormatError) as e:
        read_wrl(p) if limits is None else read_wrl(p, limits)
    assert str(p) in str(e.value) and match in str(e.value), str(e.value)
    return e.value


def test_billion_laughs_def_use_doubling_chain_is_refused_before_expansion(tmp_path):
    lines = [f"DEF L0 {TRIANGLE}"]
    lines += [f"DEF L{i} Group {{ children [ USE L{i - 1} USE L{i - 1} ] }}" for i in range(1, 41)]
    p = _write(tmp_path, "\n".join(lines))
    assert p.stat().st_size < 2500  # 2**40 triangles described in about 2 KB
    err = _refused(p, "Shape instances after DEF/USE (limit)")
    assert err.got == str(2**41 - 1)  # every top-level DEF is drawn too: 1 + 2 + … + 2**40


def test_expansion_within_instance_limit_but_over_vertex_limit(tmp_path):
    lines = [f"DEF L0 {TRIANGLE}"]
    lines += [f"DEF L{i} Group {{ children [ USE L{i - 1} USE L{i - 1} ] }}" for i in range(1, 11)]
    p = _write(tmp_path, "\n".join(lines))
    _refused(p, "at most 1000 vertices (limit)", ParseLimits(max_vertices=1000))
    m = read_wrl(p)  # 1024 instances is within the default limits and reads as 1024 copies
    assert m.n_vertices == 3 * 2047 and m.n_faces == 2047


def test_use_inside_its_own_def_is_a_cycle(tmp_path):
    p = _write(tmp_path, "DEF A Group { children [ USE A ] }")
    assert p.stat().st_size < 166
    _refused(p, "no USE A inside its own DEF")


@pytest.mark.parametrize("depth", [65, 5000])
def test_deep_nesting_is_refused_not_recursion_error(tmp_path, depth):
    p = _write(tmp_path, "Group { children [ " * depth + TRIANGLE + " ] }" * depth)
    _refused(p, "nested at most 64 deep (limit)")


def test_deep_nesting_through_use_chains_is_refused(tmp_path):
    lines = [f"DEF L0 {TRIANGLE}"] + [f"DEF L{i} Group {{ children [ USE L{i - 1} ] }}" for i in range(1, 3000)]
    p = _write(tmp_path, "\n".join(lines))
    _refused(p, "nested at most 64 deep (limit)")


def test_nesting_at_the_limit_is_read(tmp_path):
    # 61 Groups + Shape + IndexedFaceSet + Coordinate = 64 levels
    p = _write(tmp_path, "Group { children [ " * 61 + TRIANGLE + " ] }" * 61)
    assert read_wrl(p).n_faces == 1
    _refused(_write(tmp_path, "Group { children [ " * 62 + TRIANGLE + " ] }" * 62, "deeper.wrl"), "64 deep")


def test_three_vertices_and_200k_triangles_are_refused(tmp_path):
    idx = " ".join(["0 1 2 -1"] * 200_000)
    p = _write(
        tmp_path,
        f"Shape {{ geometry IndexedFaceSet {{ coord Coordinate {{ point [ 0 0 0 1 0 0 0 1 0 ] }} "
        f"coordIndex [ {idx} ] }} }}",
    )
    err = _refused(p, "triangles per used vertex (limit)")
    assert err.got == "200000 triangles over 3 vertices"


def test_a_flood_of_small_nodes_is_refused_by_the_token_limit(tmp_path):
    p = _write(tmp_path, "Group { } " * 20_000 + TRIANGLE)
    _refused(p, "at most 50000 tokens outside numeric lists (limit)")


def test_face_limit_applies_to_every_format(tmp_path):
    rng = np.random.default_rng(0)
    m = Mesh(rng.normal(size=(100, 3)).astype(np.float32), rng.integers(0, 100, (150, 3)))
    write_wrl(tmp_path / "m.wrl", m)
    import trimesh

    trimesh.Trimesh(m.vertices, m.faces, process=False).export(tmp_path / "m.obj")
    small = ParseLimits(max_faces=100)
    for f in ("m.wrl", "m.obj"):
        with pytest.raises(ScanFormatError, match="at most 100 faces"):
            read_scan(tmp_path / f, small)
        assert read_scan(tmp_path / f).n_faces == 150


def test_limits_must_be_positive():
    with pytest.raises(ConfigError, match="max_depth"):
        ParseLimits(max_depth=0)
