import struct

import numpy as np
import pytest

from facet_lib.errors import ScanFormatError
from facet_lib.io import read_scan
from facet_lib.io.bnt import read_bnt, read_bnt_grid, write_bnt
from facet_lib.io.landmarks import read_lm3

ZMIN = -1e9


def _raw_bnt(rows, cols, blocks, name=b"a.png", count=None):
    """Bytes laid out as the Bosphorus reference reader expects, built without our writer."""
    n = rows * cols * 5 if count is None else count
    head = struct.pack("<HHdH", rows, cols, ZMIN, len(name)) + name + struct.pack("<I", n)
    return head + np.asarray(blocks, "<f8").tobytes()


def _blocks_2x2():
    # stored bottom-up: first two values are the bottom row
    x = [0, 1, 0, 1]
    y = [0, 0, 1, 1]
    z = [5, 6, 7, ZMIN]  # top-right point is background
    u = [0, 1, 0, 1]
    v = [0, 0, 1, 1]
    return x + y + z + u + v


def test_reference_layout_bottom_up_rows_and_background(tmp_path):
    p = tmp_path / "s.bnt"
    p.write_bytes(_raw_bnt(2, 2, _blocks_2x2()))
    xyz, uv, imfile = read_bnt_grid(p)
    assert imfile == "a.png"
    assert xyz[1, 0, 2] == 5 and xyz[1, 1, 2] == 6  # bottom row is the last image row
    assert xyz[0, 0, 2] == 7 and np.isnan(xyz[0, 1]).all()  # background → NaN
    m = read_bnt(p)
    assert m.n_vertices == 3 and m.n_faces == 1


def test_write_read_round_trip_and_landmarks(synth_root):
    src = next((synth_root / "bosphorus").rglob("*_E_HAPPY_0.bnt"))
    xyz, uv, name = read_bnt_grid(src)
    out = src.parent / "copy.bnt"
    write_bnt(out, xyz, uv, name)
    xyz2, uv2, name2 = read_bnt_grid(out)
    np.testing.assert_array_equal(np.isnan(xyz), np.isnan(xyz2))
    np.testing.assert_allclose(xyz[~np.isnan(xyz)], xyz2[~np.isnan(xyz2)])
    assert name2 == name == src.with_suffix(".png").name
    m = read_scan(src)
    assert m.landmarks.shape == (22, 3) and "Nose tip" in m.landmark_names
    out.unlink()


@pytest.mark.parametrize(
    "data, where, expected",
    [
        (_raw_bnt(2, 2, _blocks_2x2())[:-8], "data", "160 data bytes"),
        (_raw_bnt(2, 2, _blocks_2x2(), count=19), "value count", "rows*cols*5 = 20"),
        (_raw_bnt(2, 2, _blocks_2x2())[:10], "header", "14 header bytes"),
        (_raw_bnt(0, 2, []), "nrows/ncols", "non-empty grid"),
        (_raw_bnt(2, 2, [float("nan")] + _blocks_2x2()[1:]), "point (row 1, col 0)", "finite"),
        (_raw_bnt(2, 2, [ZMIN] * 20), "data", "foreground point"),
    ],
)
def test_corrupt_bnt(tmp_path, data, where, expected):
    p = tmp_path / "bad.bnt"
    p.write_bytes(data)
    with pytest.raises(ScanFormatError) as e:
        read_bnt(p)
    assert str(p) in str(e.value) and where in str(e.value) and expected in str(e.value)


def test_lm3_errors(tmp_path):
    p = tmp_path / "x.lm3"
    p.write_text("# LANDMARKS 3D\n\n2 landmarks:\nNose tip\n1 2 3\nChin middle\n1 2\n")
    with pytest.raises(ScanFormatError, match=r"x.lm3: line 7: expected 3 finite coordinates"):
        read_lm3(p)
    p.write_text("# LANDMARKS 3D\n\n3 landmarks:\nNose tip\n1 2 3\n")
    with pytest.raises(ScanFormatError, match="3 label/coordinate pairs"):
        read_lm3(p)
