import numpy as np
import pytest

from facet_lib.errors import ScanFormatError
from facet_lib.io import read_scan
from facet_lib.io.wrl import read_wrl, write_wrl
from facet_lib.mesh import Mesh

HAND_WRITTEN = """#VRML V2.0 utf8
# a comment, with a comma
DEF Root Transform {
  translation 10 0 0   # moves the first shape
  children [
    Shape {
      appearance Appearance { texture ImageTexture { url "face.bmp" } }
      geometry IndexedFaceSet {
        coord DEF C Coordinate { point [ 0 0 0, 1 0 0, 1 1 0, 0 1 0 ] }
        coordIndex [ 0, 1, 2, 3, -1 ]
        texCoord TextureCoordinate { point [ 0 0, 1 0, 1 1, 0 1 ] }
        texCoordIndex [ 0 1 2 3 -1 ]
      }
    }
  ]
}
Shape {
  geometry IndexedFaceSet {
    coord USE C
    coordIndex [ 0 1 2 -1 0 2 3 ]
  }
}
"""


def test_hand_written_vrml_with_comments_commas_def_use_quads_and_two_shapes(tmp_path):
    p = tmp_path / "scan.wrl"
    p.write_text(HAND_WRITTEN)
    m = read_wrl(p)
    assert m.n_vertices == 8 and m.n_faces == 4  # a quad → 2 triangles, + 2 triangles
    np.testing.assert_allclose(m.vertices[:4, 0], [10, 11, 11, 10])  # Transform applied
    np.testing.assert_allclose(m.vertices[4:, 0], [0, 1, 1, 0])  # USE C, no transform
    assert m.faces.max() == 7 and m.faces[2:].min() == 4  # second shape offset
    assert m.uv is None  # only one of two shapes has UVs: not mixed


def test_uv_and_texture_url(tmp_path):
    p = tmp_path / "scan.wrl"
    p.write_text(HAND_WRITTEN.split("Shape {\n  geometry")[0])
    m = read_wrl(p)
    assert m.texture_path == tmp_path / "face.bmp"
    np.testing.assert_allclose(m.uv, [[0, 0], [1, 0], [1, 1], [0, 1]])


def test_round_trip_generated_file(synth_root):
    src = next((synth_root / "bu3dfe").rglob("*_HA04*_F3D.wrl"))
    m = read_scan(src)
    assert m.n_vertices > 1000 and m.landmarks is not None and m.landmarks.shape[1] == 3
    out = src.parent / "copy_F3D.wrl"
    write_wrl(out, m, texture_url="x.bmp")
    m2 = read_wrl(out)
    np.testing.assert_allclose(m2.vertices, m.vertices, atol=1e-3)
    np.testing.assert_array_equal(m2.faces, m.faces)
    np.testing.assert_allclose(m2.uv, m.uv, atol=1e-4)
    out.unlink()


def _mesh():
    return Mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), np.array([[0, 1, 2]]))


@pytest.mark.parametrize(
    "mutate, where, expected",
    [
        (lambda s: s[: len(s) // 2], "line", "']' closing the list"),
        (lambda s: s.replace("#VRML V2.0 utf8", "#VRML V1.0 ascii"), "header", "#VRML V2.0"),
        (lambda s: s.replace("1.0000 0.0000 0.0000", "nan 0.0000 0.0000"), "vertex 1", "finite"),
        (lambda s: s.replace("0 1 2 -1", "0 1 7 -1"), "coordIndex[2]", "an index in [0, 2]"),
        (lambda s: s.replace("0.0000 1.0000", "0.0000 x1.0"), "line", "numbers"),
        (lambda s: s.split("Transform")[0], "scene", "at least one Shape"),
    ],
)
def test_corrupt_files_raise_clear_error(tmp_path, mutate, where, expected):
    p = tmp_path / "bad.wrl"
    write_wrl(p, _mesh())
    p.write_text(mutate(p.read_text()))
    with pytest.raises(ScanFormatError) as e:
        read_wrl(p)
    msg = str(e.value)
    assert str(p) in msg and where in msg and expected in msg


@pytest.mark.parametrize("tidx", ["[ 0 -5 2 3 -1 ]", "[ -2 1 2 3 -1 ]"])
def test_negative_tex_coord_index_names_the_file_and_field(tmp_path, tidx):
    """Issue 18: a negative texCoordIndex at a face corner raised a bare IndexError (or wrapped silently)."""
    p = tmp_path / "neg.wrl"
    p.write_text(
        HAND_WRITTEN.split("Shape {\n  geometry")[0].replace("texCoordIndex [ 0 1 2 3 -1 ]", f"texCoordIndex {tidx}")
    )
    with pytest.raises(ScanFormatError, match=r"neg\.wrl: texCoordIndex: expected indices >= 0"):
        read_wrl(p)
