"""The bulk VRML reader against the previous token-by-token reader (``wrl_reference.py``, kept for this test).

Same meshes on every generated file; same error (file, field, expectation) on malformed input.
"""

import numpy as np
import pytest

from facet_lib.errors import ScanFormatError
from facet_lib.io.vrml_numbers import scan_numbers
from facet_lib.io.wrl import read_wrl, write_wrl
from facet_lib.mesh import Mesh

from . import wrl_reference
from .test_wrl import HAND_WRITTEN


def _same(a: Mesh, b: Mesh) -> None:
    np.testing.assert_array_equal(a.vertices, b.vertices)
    assert a.vertices.dtype == b.vertices.dtype and a.faces.dtype == b.faces.dtype
    np.testing.assert_array_equal(a.faces, b.faces)
    for k in ("uv", "colors", "landmarks"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None) == (y is None), k
        if x is not None:
            np.testing.assert_array_equal(x, y)
    assert a.texture_path == b.texture_path


def _random_mesh(rng, uv: bool, colors: bool) -> Mesh:
    v = rng.normal(scale=50, size=(200, 3)).astype(np.float32)
    f = rng.integers(0, 200, size=(390, 3))
    m = Mesh(v, f)
    if uv:
        m.uv = rng.random((200, 2)).astype(np.float32)
    if colors:
        m.colors = rng.integers(0, 256, (200, 3)).astype(np.uint8)
    return m


def test_same_meshes_on_every_generated_file(synth_root):
    files = sorted(synth_root.rglob("*.wrl"))
    assert len(files) > 20
    for f in files:
        _same(read_wrl(f), wrl_reference.read_wrl(f))


@pytest.mark.parametrize("seed", range(4))
def test_same_meshes_on_written_files(tmp_path, seed):
    rng = np.random.default_rng(seed)
    m = _random_mesh(rng, uv=seed % 2 == 0, colors=False)
    p = tmp_path / "m.wrl"
    write_wrl(p, m, texture_url="t.bmp" if m.uv is not None else None)
    _same(read_wrl(p), wrl_reference.read_wrl(p))


VARIANTS = {
    "hand-written": HAND_WRITTEN,
    "quads, colours, no texCoordIndex": """#VRML V2.0 utf8
Group { children [ Shape { geometry IndexedFaceSet {
  coord Coordinate { point [ 0 0 0, 1 0 0, 1 1 0, 0 1 0, 2 2 2 ] }
  color Color { color [ 1 0 0, 0 1 0, 0 0 1, 0.5 0.5 0.5, 0 0 0 ] }
  texCoord TextureCoordinate { point [ 0 0, 1 0, 1 1, 0 1, 0.5 0.5 ] }
  coordIndex [ 0 1 2 3 -1, 1 4 2 ]
} } ] }
""",
    "exponents, signs, comments inside lists": """#VRML V2.0 utf8
Transform { rotation 0 0 1 1.5707963 scale 2 2 2 children Shape { geometry IndexedFaceSet {
  coord Coordinate { point [ 1e0 -0 +0.5, # a comment ] with a bracket
    2.5E-1 .25 -7., 0.12345678901234567 1e2 3 ] }
  coordIndex [ 0 1 2 -1 ]
} } }
""",
}


@pytest.mark.parametrize("name", VARIANTS)
def test_same_meshes_on_hand_written_variants(tmp_path, name):
    p = tmp_path / "v.wrl"
    p.write_text(VARIANTS[name])
    _same(read_wrl(p), wrl_reference.read_wrl(p))


def _mutations(text: str) -> list[str]:
    return [
        text[: len(text) // 2],
        text[: len(text) - 30],
        text.replace("#VRML V2.0 utf8", "#VRML V1.0 ascii"),
        text.replace("1.0000 0.0000 0.0000", "nan 0.0000 0.0000"),
        text.replace("0 1 2 -1", "0 1 7 -1"),
        text.replace("0 1 2 -1", "0 1.5 2 -1"),
        text.replace("0.0000 1.0000", "0.0000 x1.0"),
        text.replace("coordIndex", "coordIndexx"),
        text.replace("Coordinate {", "Coordinate"),
        text.replace("point [", "point [ [", 1),
        text.split("Transform")[0],
        text.replace("0.0000 0.0000 0.0000,", "0.0000 0.0000,"),
        text.replace("geometry DEF FaceSet", "geometry USE Nope"),
        text.replace("creaseAngle 3.14", "creaseAngle {"),
    ]


def test_same_errors_on_malformed_files(tmp_path):
    m = Mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), np.array([[0, 1, 2]]))
    p = tmp_path / "bad.wrl"
    write_wrl(p, m)
    good = p.read_text()
    for k, text in enumerate(_mutations(good)):
        p.write_text(text)
        with pytest.raises(ScanFormatError) as new:
            read_wrl(p)
            pytest.fail(f"mutation {k} was accepted")
        with pytest.raises(ScanFormatError) as old:
            wrl_reference.read_wrl(p)
        assert new.value.path == old.value.path == str(p)
        assert new.value.expected == old.value.expected, (k, text)
        if new.value.expected == "numbers in the list":  # now the bad number's own line, not the list's
            assert new.value.where.startswith("line") and old.value.where.startswith("line")
            assert int(new.value.where.split()[1]) >= int(old.value.where.split()[1])
            assert new.value.got == old.value.got
        else:
            assert new.value.where == old.value.where, (k, text)


def test_random_mutations_raise_only_scan_format_errors_and_match_the_reference(tmp_path):
    """Seeded fuzzing (bounded): byte flips, deletions, insertions, truncations of a textured file."""
    import random
    import warnings

    rng = np.random.default_rng(1)
    m = Mesh(rng.normal(scale=50, size=(20, 3)).astype(np.float32), rng.integers(0, 20, (30, 3)))
    m.uv = rng.random((20, 2)).astype(np.float32)
    src, p = tmp_path / "f.wrl", tmp_path / "mut.wrl"
    write_wrl(src, m, texture_url="t.bmp")
    base, r = src.read_bytes(), random.Random(0)
    alphabet = b' \n,#[]{}"-+.eE0123456789xnaDEFUSE\x00\xff'
    accepted = 0
    for _ in range(150):
        b = bytearray(base)
        for _ in range(r.randint(1, 3)):
            i, op = r.randrange(len(b)), r.random()
            if op < 0.5:
                b[i] = r.choice(alphabet)
            elif op < 0.75:
                del b[i : i + r.randint(1, 20)]
            else:
                b[i:i] = bytes(r.choice(alphabet) for _ in range(r.randint(1, 5)))
        p.write_bytes(bytes(b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow → inf, refused as not finite
            try:
                read_wrl(p)
                new_ok = True
            except ScanFormatError:
                new_ok = False
            try:
                wrl_reference.read_wrl(p)
                old_ok = True
            except ScanFormatError:
                old_ok = False
        assert new_ok == old_ok, bytes(b)
        accepted += new_ok
    assert 0 < accepted < 150  # some mutations keep the file valid (e.g. a changed digit), most break it


@pytest.mark.parametrize("n_long", [5, 3000])  # a few long numbers, and a list made of them (exact fallback)
def test_long_mantissas_are_read_exactly(tmp_path, n_long):
    rng = np.random.default_rng(2)
    vals = rng.normal(scale=100, size=(n_long, 3))
    pts = ", ".join(" ".join("%.17g" % x for x in row) for row in vals)
    p = tmp_path / "long.wrl"
    p.write_text(
        "#VRML V2.0 utf8\nShape { geometry IndexedFaceSet { coord Coordinate { point [ "
        + pts
        + " ] } coordIndex [ 0 1 2 -1 ] } }\n"
    )
    m = read_wrl(p)
    np.testing.assert_array_equal(m.vertices, vals.astype(np.float32))
    _same(m, wrl_reference.read_wrl(p))
    raw = pts.encode() + b" ]"
    got, end = scan_numbers(raw, np.frombuffer(raw, np.uint8), 0, str(p), lambda pos: f"byte {pos}")
    assert end == len(raw) and got.tolist() == [float(t) for t in pts.replace(",", " ").split()]  # float64-exact
