"""The fast rasteriser against pyrender (EGL/Mesa) on the same meshes, within a stated tolerance:
mean absolute difference < 1.5 grey levels and < 2.5 % of pixels off by more than 8 (silhouette
edges, where pyrender multisamples)."""

import numpy as np
import pytest

from facet_lib.io import read_scan
from facet_lib.render import RenderConfig, render_views


def _pyrender_available() -> bool:
    try:
        import pyrender

        r = pyrender.OffscreenRenderer(16, 16)
        r.delete()
        return True
    except Exception:
        return False


pytestmark = [
    pytest.mark.render,
    pytest.mark.skipif(not _pyrender_available(), reason="no OpenGL context (EGL) for pyrender"),
]


@pytest.mark.parametrize(
    "mode, projection",
    [("shaded", "ortho"), ("depth", "ortho"), ("normal", "ortho"), ("texture", "ortho"), ("shaded", "perspective")],
)
def test_fast_matches_pyrender(synth_root, mode, projection):
    scan = read_scan(next((synth_root / "bu3dfe").rglob("*_SU04*_F3D.wrl")))
    fast = render_views(scan, RenderConfig(mode=mode, projection=projection, size=128))
    ref = render_views(scan, RenderConfig(mode=mode, projection=projection, size=128, backend="pyrender"))
    d = np.abs(fast.astype(int) - ref.astype(int))
    assert ref.max() > 0
    assert d.mean() < 1.5 and (d.max(-1) > 8).mean() < 0.025, (d.mean(), (d.max(-1) > 8).mean())
