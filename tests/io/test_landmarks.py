"""Garbled or binary landmark files are a ScanFormatError naming the file, never UnicodeDecodeError."""

import numpy as np
import pytest

from facet_lib.errors import FacetError, ScanFormatError
from facet_lib.io.landmarks import read_bnd, read_lm2, read_lm3, write_bnd, write_lm3
from facet_lib.io.wrl import read_wrl, write_wrl
from facet_lib.mesh import Mesh

GARBAGE = [
    bytes(range(256)) * 4,  # binary with NUL bytes
    b"\xff\xfe\x00\x00garbage",
    "12\t1.0\t2.0\t3.0\n".encode("utf-16"),
    "83 landmarks:\né\n1 2 3\n".encode("latin-1"),  # not UTF-8
    b"index x y z\nnot numbers here\n",
]


@pytest.mark.parametrize("data", GARBAGE)
@pytest.mark.parametrize("reader, suffix", [(read_bnd, ".bnd"), (read_lm3, ".lm3"), (read_lm2, ".lm2")])
def test_garbled_landmark_files_name_the_file(tmp_path, data, reader, suffix):
    p = tmp_path / f"x{suffix}"
    p.write_bytes(data)
    with pytest.raises(ScanFormatError) as e:
        reader(p)
    assert str(p) in str(e.value)


def test_valid_landmark_files_still_read(tmp_path):
    pts = np.arange(12, dtype=np.float32).reshape(4, 3)
    write_bnd(tmp_path / "a.bnd", np.arange(4), pts)
    np.testing.assert_allclose(read_bnd(tmp_path / "a.bnd"), pts)
    write_lm3(tmp_path / "a.lm3", pts, ["a", "b", "c", "d"])
    got, names = read_lm3(tmp_path / "a.lm3")
    np.testing.assert_allclose(got, pts)
    assert names == ["a", "b", "c", "d"]


def test_scan_with_a_binary_bnd_beside_it_names_the_bnd(tmp_path):
    m = Mesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), np.array([[0, 1, 2]]))
    write_wrl(tmp_path / "s_F3D.wrl", m)
    (tmp_path / "s_F3D.bnd").write_bytes(bytes(range(256)))
    with pytest.raises(FacetError, match="s_F3D.bnd"):
        read_wrl(tmp_path / "s_F3D.wrl")
