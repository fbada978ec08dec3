import numpy as np
import pytest

from facet_lib.data.face_model import Identity, expression_aus, face_grid
from facet_lib.data.synthetic import _mesh_from_grid
from facet_lib.errors import ConfigError, ScanFormatError
from facet_lib.mesh import Mesh
from facet_lib.render import RenderConfig, render_views


@pytest.fixture(scope="module")
def symmetric_face() -> Mesh:
    """A mirror-symmetric face: identity features are placed at ±x and no noise, pose or holes."""
    pts, _ = face_grid(
        Identity.sample(np.random.default_rng(0)),
        expression_aus("happy", 1.0),
        np.random.default_rng(0),
        step=1.0,
        noise_mm=0,
        holes=[],
        pose_deg=(0, 0, 0),
        shift_mm=(0, 0, 0),
    )
    return _mesh_from_grid(pts)


@pytest.mark.parametrize("mode", ["shaded", "depth"])
def test_left_view_mirrors_right_view(symmetric_face, mode):
    cfg = RenderConfig(mode=mode, center="centroid", yaws=(0.0, -30.0, 30.0), size=128)
    front, left, right = render_views(symmetric_face, cfg).astype(int)
    assert np.abs(left - right[:, ::-1]).mean() < 1.0
    assert np.abs(front - front[:, ::-1]).mean() < 1.0  # yaw 0 is frontal
    assert np.abs(left - right).mean() > 5  # and the two side views really differ


def test_side_view_shows_the_correct_cheek(symmetric_face):
    cfg = RenderConfig(mode="depth", center="centroid", yaws=(30.0,), size=128)
    (img,) = render_views(symmetric_face, cfg)
    cols = np.flatnonzero(img[..., 0].max(axis=0) > 0)
    # camera at +30° (towards the face's +x side): the face's far (−x) side is hidden, so the
    # silhouette is narrower than the frontal one and shifted off-centre
    (front,) = render_views(symmetric_face, RenderConfig(mode="depth", center="centroid", yaws=(0.0,), size=128))
    fcols = np.flatnonzero(front[..., 0].max(axis=0) > 0)
    assert len(cols) < len(fcols)


def _plane(z: float = 0.0) -> Mesh:
    v = np.array([[-200, -200, z], [200, -200, z], [200, 200, z], [-200, 200, z]], np.float32)
    return Mesh(v, np.array([[0, 1, 2], [0, 2, 3]]))


def test_depth_and_normal_encodings():
    plane = _plane()
    for z, expected in [(0.0, 120 / 140), (-60.0, 60 / 140)]:
        cfg = RenderConfig(mode="depth", center="centroid", center_offset_mm=(0, 0), size=32)
        img = render_views(_plane(z), cfg)
        # centring moves the plane to z=0: depth is relative to the face centre, not absolute
        assert abs(img[0, 16, 16, 0] - round(255 * 120 / 140)) <= 1
        del expected
    cfg = RenderConfig(mode="normal", center="centroid", size=32, yaws=(0.0, 30.0))
    front, side = render_views(plane, cfg).astype(int)
    np.testing.assert_allclose(front[16, 16], [128, 128, 255], atol=1)
    n = np.array([-np.sin(np.radians(30)), 0, np.cos(np.radians(30))])  # the plane seen from +30°
    np.testing.assert_allclose(side[16, 16], np.round((n + 1) / 2 * 255), atol=1)


def test_backface_culling_and_empty_background():
    flipped = _plane()
    flipped.faces = flipped.faces[:, ::-1].copy()
    cfg = RenderConfig(mode="shaded", center="centroid", size=32, yaws=(0.0,))
    assert render_views(flipped, cfg).max() == 0
    assert (
        render_views(
            flipped, RenderConfig(mode="shaded", center="centroid", size=32, yaws=(0.0,), cull_backfaces=False)
        ).max()
        > 0
    )


def test_texture_mode_needs_a_texture():
    with pytest.raises(ScanFormatError, match="mode=texture"):
        render_views(_plane(), RenderConfig(mode="texture", size=32))


def test_config_validation():
    with pytest.raises(ConfigError, match="mode must be one of"):
        RenderConfig(mode="xray")
    a, b = RenderConfig(), RenderConfig(backend="pyrender")
    assert a.digest() == b.digest() != RenderConfig(size=112).digest()
    assert RenderConfig.from_dict(RenderConfig(yaws=(0.0, 15.0)).to_dict()).yaws == (0.0, 15.0)
