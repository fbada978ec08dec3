import hashlib

import numpy as np

from facet_lib.data.face_model import Identity, expression_aus, face_grid
from facet_lib.data.synthetic import SynthConfig, generate
from facet_lib.io import read_scan


def _digest(root):
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed_whatever_the_workers(tmp_path):
    cfg = dict(subjects=2, step=4.0, seed=5)
    a = generate("bosphorus", tmp_path / "a", SynthConfig(**cfg, workers=1))
    b = generate("bosphorus", tmp_path / "b", SynthConfig(**cfg, workers=2))
    c = generate("bosphorus", tmp_path / "c", SynthConfig(**{**cfg, "seed": 6}, workers=1))
    assert _digest(a) == _digest(b) != _digest(c)


def _clean(ident, expr, inten=1.0):
    pts, _ = face_grid(
        ident, expression_aus(expr, inten), np.random.default_rng(0), step=2.0, noise_mm=0, holes=0, pose_deg=0
    )
    return pts


def test_expressions_differ_measurably_identity_stays_fixed():
    ident = Identity.sample(np.random.default_rng(1))
    other = Identity.sample(np.random.default_rng(2))
    exprs = ["happy", "sad", "surprise", "fear", "anger", "disgust"]
    neutral = _clean(ident, "neutral")
    shapes = {e: _clean(ident, e) for e in exprs}
    valid = np.isfinite(neutral).all(-1)
    for e in exprs:
        for f in exprs:
            if e < f:
                d = np.linalg.norm(shapes[e] - shapes[f], axis=-1)[valid]
                assert d.max() > 3.0, (e, f, d.max())  # mm: a clearly different surface somewhere
    # identity: the forehead-top and outer cheeks barely move with expression but differ across people
    x = np.arange(-84, 84 + 1e-6, 2.0)
    y = np.arange(96, -116 - 1e-6, -2.0)
    X, Y = np.meshgrid(x, y)
    region = valid & (Y > 76)  # upper forehead
    within = max(np.abs(shapes[e] - neutral)[region].max() for e in exprs)
    between = np.nanmean(np.abs(_clean(other, "neutral") - neutral)[region])
    assert within < 0.5 < between


def test_intensity_scales_displacement():
    ident = Identity.sample(np.random.default_rng(3))
    n = _clean(ident, "neutral")
    d = [np.nanmax(np.linalg.norm(_clean(ident, "happy", i / 4) - n, axis=-1)) for i in (1, 2, 3, 4)]
    assert d[0] < d[1] < d[2] < d[3]


def test_bu3dfe_scan_is_bu3dfe_sized(tmp_path):
    root = generate("bu3dfe", tmp_path, SynthConfig(subjects=1, workers=1))
    m = read_scan(next(root.rglob("*_SU04*_F3D.wrl")))
    assert 15_000 < m.n_vertices < 60_000 and m.texture_path.exists()
