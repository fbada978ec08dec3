"""The fast rasteriser refuses pathological geometry (issue 13 item 2: many full-frame triangles) before drawing."""

import numpy as np
import pytest

from facet_lib.data.face_model import Identity, expression_aus, face_grid
from facet_lib.data.synthetic import _mesh_from_grid
from facet_lib.errors import ScanFormatError
from facet_lib.mesh import Mesh
from facet_lib.render import RenderConfig, render_views
from facet_lib.render.geometry import prepare_views
from facet_lib.render.raster import MAX_RASTER_WORK, rasterize


def _full_frame_triangles(n_faces: int) -> Mesh:
    corners = np.array([[-300, -300, 0], [300, -300, 0], [0, 300, 0]], np.float32)
    n_copies = n_faces // 8  # distinct vertex indices (8 triangles per used vertex) at the same 3 positions
    verts = np.tile(corners, (n_copies, 1))
    base = np.arange(n_copies * 3).reshape(-1, 3)
    faces = np.concatenate([np.repeat(base, 4, axis=0), np.repeat(base[:, [0, 2, 1]], 4, axis=0)])
    return Mesh(verts, faces, source="hostile.wrl")


def test_thousands_of_full_frame_triangles_are_refused():
    m = _full_frame_triangles(40_000)
    with pytest.raises(ScanFormatError, match=r"hostile.wrl: view 0: expected at most 64 pixel tests per output pixel"):
        render_views(m, RenderConfig(size=64, center="centroid"))


def test_a_scan_needs_a_small_fraction_of_the_budget():
    rng = np.random.default_rng(0)
    mesh = _mesh_from_grid(face_grid(Identity.sample(rng), expression_aus("happy", 1.0), rng, step=1.0)[0])
    cfg = RenderConfig(size=224)
    faces = np.ascontiguousarray(mesh.faces, np.int64)
    for pix, _ in prepare_views(mesh, cfg):
        work = rasterize(pix, faces, cfg.size, cfg.cull_backfaces, 10**12)[3]
        assert 0 < work < MAX_RASTER_WORK / 8 * cfg.size**2  # about 1 pixel test per output pixel
    assert render_views(mesh, cfg).shape == (3, 224, 224, 3)
