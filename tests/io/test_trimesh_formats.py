import numpy as np
import pytest
import trimesh

from facet_lib.errors import ScanFormatError
from facet_lib.io import read_scan


def test_obj_frame_from_generator(synth_root):
    f = next((synth_root / "bp4d").rglob("*.obj"))
    m = read_scan(f)
    assert m.n_vertices > 100 and m.faces.max() < m.n_vertices


def test_ply_round_trip(tmp_path):
    box = trimesh.creation.box()
    p = tmp_path / "b.ply"
    box.export(p)
    m = read_scan(p)
    np.testing.assert_allclose(m.vertices, box.vertices, atol=1e-6)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "non-empty"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "expected a valid .obj mesh.*out of bounds"),
        ("v 0 0 nan\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "vertex 0: expected finite coordinates"),
    ],
)
def test_broken_obj(tmp_path, text, expected):
    p = tmp_path / "x.obj"
    p.write_text(text)
    with pytest.raises(ScanFormatError, match=expected):
        read_scan(p)


def test_unknown_suffix(tmp_path):
    with pytest.raises(ScanFormatError, match=r"expected one of \.wrl, \.bnt, \.obj, \.ply"):
        read_scan(tmp_path / "x.stl")
