"""A procedural 3D face with FACS action units: identity, expression, pose and scan noise.

The face is a height field z(x, y) on a regular grid (mm; x right, y up, z towards the camera),
the way a structured-light range scanner sees it: an ellipsoidal head front plus Gaussian
features (brows, eye sockets, nose, cheeks, lips, chin). Action units (AUs) are sets of Gaussian
displacement handles; an expression is a weighted AU combination (Ekman & Friesen's prototypes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# AU → handles (cx, cy, radius, dx, dy, dz, side) in mm at full intensity; side=+1 mirrors in x
# (a handle on each side, dx mirrored), 0 is a single midline handle; "jaw" handles move only the
# part below the mouth line.
AU_HANDLES: dict[int, list[tuple]] = {
    1: [(14, 48, 10, 0, 6, 1, 1)],  # inner brow raiser
    2: [(40, 48, 12, 0, 6, 0, 1)],  # outer brow raiser
    4: [(20, 45, 12, -4, -5, 2, 1)],  # brow lowerer
    5: [(32, 36, 9, 0, 3, 1, 1)],  # upper lid raiser
    6: [(38, 2, 16, 0, 5, 4, 1)],  # cheek raiser
    7: [(32, 26, 9, 0, 2, 1, 1)],  # lid tightener
    9: [(9, 12, 9, 0, 4, 3, 1)],  # nose wrinkler
    10: [(10, -36, 10, 0, 4, 1, 1)],  # upper lip raiser
    12: [(26, -46, 11, 8, 8, -2, 1)],  # lip corner puller
    14: [(26, -46, 8, -1, 0, -3, 1)],  # dimpler
    15: [(26, -46, 11, 0, -7, 0, 1)],  # lip corner depressor
    16: [(0, -57, 12, 0, -5, 2, 0)],  # lower lip depressor
    17: [(0, -74, 14, 0, 4, 3, 0)],  # chin raiser
    20: [(26, -46, 12, 8, -2, -1, 1)],  # lip stretcher
    23: [(12, -47, 9, -3, 0, 1, 1)],  # lip tightener
    24: [(0, -48, 12, 0, 0, -2, 0)],  # lip pressor
    26: [(0, -80, 38, 0, -13, 0, 0, "jaw"), (0, -57, 12, 0, -4, 0, 0, "jaw")],  # jaw drop
}

# Prototypical AU combinations with relative weights.
EXPRESSION_AUS: dict[str, dict[int, float]] = {
    "neutral": {},
    "happy": {6: 1.0, 12: 1.0},
    "sad": {1: 1.0, 4: 0.8, 15: 1.0},
    "surprise": {1: 1.0, 2: 1.0, 5: 1.0, 26: 1.0},
    "fear": {1: 1.0, 2: 0.8, 4: 0.7, 5: 1.0, 20: 1.0, 26: 0.6},
    "anger": {4: 1.0, 5: 0.7, 7: 1.0, 23: 1.0},
    "disgust": {9: 1.0, 15: 0.8, 16: 1.0, 10: 0.6},
    "embarrassment": {12: 0.5, 4: 0.3, 14: 0.5},
    "pain": {4: 1.0, 6: 0.8, 7: 1.0, 9: 0.8, 10: 0.8},
    # 4DME micro-expression classes (low amplitude is applied by the caller)
    "positive": {12: 1.0, 6: 0.5},
    "negative": {4: 1.0, 15: 0.7},
    "repression": {14: 1.0, 17: 0.8, 24: 1.0},
    "others": {9: 0.6, 2: 0.6},
}

LANDMARKS: list[tuple[str, float, float]] = [
    ("Outer left eyebrow", 50, 46),
    ("Middle left eyebrow", 32, 50),
    ("Inner left eyebrow", 14, 47),
    ("Inner right eyebrow", -14, 47),
    ("Middle right eyebrow", -32, 50),
    ("Outer right eyebrow", -50, 46),
    ("Outer left eye corner", 45, 30),
    ("Inner left eye corner", 17, 30),
    ("Inner right eye corner", -17, 30),
    ("Outer right eye corner", -45, 30),
    ("Nose saddle left", 8, 28),
    ("Nose saddle right", -8, 28),
    ("Left nose peak", 14, -20),
    ("Nose tip", 0, -18),
    ("Right nose peak", -14, -20),
    ("Left mouth corner", 26, -46),
    ("Upper lip outer middle", 0, -40),
    ("Right mouth corner", -26, -46),
    ("Upper lip inner middle", 0, -46),
    ("Lower lip inner middle", 0, -48),
    ("Lower lip outer middle", 0, -56),
    ("Chin middle", 0, -86),
]


@dataclass(frozen=True)
class Identity:
    """Per-subject shape and expression style."""

    width: float
    height: float
    depth: float
    nose_len: float
    nose_height: float
    eye_sep: float
    lip_full: float
    chin: float
    brow: float
    au_gain: tuple[tuple[int, float], ...]
    skin: tuple[int, int, int]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Identity:
        gains = tuple((au, float(rng.uniform(0.7, 1.3))) for au in sorted(AU_HANDLES))
        tone = rng.uniform(0.35, 0.95)
        skin = (int(90 + 150 * tone), int(60 + 130 * tone), int(45 + 110 * tone))
        return cls(
            width=float(rng.normal(74, 4)),
            height=float(rng.normal(102, 5)),
            depth=float(rng.normal(78, 5)),
            nose_len=float(rng.normal(48, 4)),
            nose_height=float(rng.normal(24, 3)),
            eye_sep=float(rng.normal(32, 2)),
            lip_full=float(rng.normal(4.5, 0.8)),
            chin=float(rng.normal(6, 1.5)),
            brow=float(rng.normal(5, 1)),
            au_gain=gains,
            skin=skin,
        )


def _g(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float | None = None):
    sy = sx if sy is None else sy
    return np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2) / 2)


def grid(step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Image-ordered (rows top-down) x, y coordinates of the scan grid in mm."""
    xs = np.arange(-84, 84 + 1e-6, step)
    ys = np.arange(96, -116 - 1e-6, -step)
    return np.meshgrid(xs, ys)


def neutral_surface(ident: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z(x, y) of the subject's neutral face (NaN outside the face outline)."""
    W, H, D = ident.width, ident.height, ident.depth
    r2 = (x / W) ** 2 + ((y + 10) / H) ** 2
    z = D * np.sqrt(np.clip(1 - r2, 0, None)) - D * 0.35
    e = ident.eye_sep
    for s in (1, -1):
        z += ident.brow * _g(x, y, s * e, 45, 14, 5)  # brow ridge
        z -= 9 * _g(x, y, s * e, 31, 11, 7)  # eye socket
        z += 3.5 * _g(x, y, s * e, 31, 6, 4)  # eyeball bulge
        z += 5 * _g(x, y, s * 40, -8, 14, 12)  # cheek
        z += 3 * _g(x, y, s * 13, -20, 6, 5)  # ala
    # nose: a ridge growing from the bridge to the tip
    t = np.clip((30 - y) / ident.nose_len, 0, 1.1)
    ridge = ident.nose_height * t**1.5 * np.exp(-((x / (6 + 5 * t)) ** 2) / 2)
    ridge *= 1 / (1 + np.exp((-(30 - ident.nose_len) - y - 6) / 2.5))  # tip falls off into the lip
    z += ridge
    z -= 3 * _g(x, y, 0, -26, 10, 3)  # subnasal groove
    z += ident.lip_full * (_g(x, y, 0, -41, 16, 3.5) + _g(x, y, 0, -53, 15, 4))
    z -= 2.5 * _g(x, y, 0, -47, 20, 1.2)  # mouth line
    z += ident.chin * _g(x, y, 0, -84, 16, 10)
    z[r2 > 0.93] = np.nan
    return z


def au_displacement(ident: Identity, aus: dict[int, float], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(rows, cols, 3) displacement in mm of an AU activation pattern for this subject."""
    disp = np.zeros(x.shape + (3,))
    gain = dict(ident.au_gain)
    for au, w in aus.items():
        if w == 0:
            continue
        for h in AU_HANDLES[au]:
            cx, cy, rad, dx, dy, dz, side = h[:7]
            jaw = len(h) > 7 and h[7] == "jaw"
            for s in (1, -1) if side else (1,):
                wgt = _g(x, y, s * cx, cy, rad) * (w * gain[au])
                if jaw:
                    wgt = wgt * (1 / (1 + np.exp((y + 48) / 1.5)))  # below the mouth line only
                disp[..., 0] += wgt * dx * s
                disp[..., 1] += wgt * dy
                disp[..., 2] += wgt * dz
    return disp


def expression_aus(expression: str, intensity: float) -> dict[int, float]:
    return {au: w * intensity for au, w in EXPRESSION_AUS[expression].items()}


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix from angles in degrees (yaw about y, pitch about x, roll about z)."""
    a, b, c = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def face_grid(
    ident: Identity,
    aus: dict[int, float],
    rng: np.random.Generator,
    step: float = 1.0,
    noise_mm: float = 0.12,
    holes: int | list[tuple[float, float, float]] = 2,
    pose_deg: float | tuple[float, float, float] = 4.0,
    shift_mm: tuple[float, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One scan as a (rows, cols, 3) xyz grid with NaN background, plus its 22 landmarks (22, 3).

    ``holes`` is a count (random drop-outs) or explicit (cx, cy, r) discs; ``pose_deg`` a jitter
    range or explicit (yaw, pitch, roll); ``shift_mm`` None for a random ±3 mm shift. Sequences pass
    explicit values so that the head moves smoothly from frame to frame."""
    x, y = grid(step)
    z = neutral_surface(ident, x, y)
    pts = np.stack([x, y, z], -1) + au_displacement(ident, aus, x, y)
    pts[..., 2] += rng.normal(0, noise_mm, z.shape)
    if isinstance(holes, int):  # scanner drop-outs (eyes, hair, specularities)
        holes = [random_hole(rng) for _ in range(int(rng.integers(0, holes + 1)))]
    for cx, cy, r in holes:
        pts[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = np.nan
    angles = rng.uniform(-pose_deg, pose_deg, 3) if np.isscalar(pose_deg) else np.asarray(pose_deg)
    rot = rotation(*angles)
    shift = rng.uniform(-3, 3, 3) if shift_mm is None else np.asarray(shift_mm)
    flat = pts.reshape(-1, 3) @ rot.T + shift
    pts = flat.reshape(pts.shape)
    # landmarks: nearest grid node of each named position, moved like the surface
    lm = []
    for _, lx, ly in LANDMARKS:
        i = int(np.argmin(np.abs(y[:, 0] - ly)))
        j = int(np.argmin(np.abs(x[0] - lx)))
        p = pts[i, j]
        if not np.isfinite(p).all():  # a hole at a landmark: use the noiseless neutral point
            z0 = neutral_surface(ident, x[i : i + 1, j : j + 1], y[i : i + 1, j : j + 1])[0, 0]
            p = np.array([x[i, j], y[i, j], z0]) @ rot.T + shift
        lm.append(p)
    return pts, np.asarray(lm)


def random_hole(rng: np.random.Generator) -> tuple[float, float, float]:
    return float(rng.uniform(-50, 50)), float(rng.uniform(-70, 50)), float(rng.uniform(2, 6))


def expression_profile(n_frames: int, micro: bool = False) -> np.ndarray:
    """Intensity over a sequence: neutral → onset → apex → offset (BU-4DFE style), in [0, 1].

    Micro-expressions rise and fall within a short window (about a third of the clip)."""
    t = np.linspace(0, 1, n_frames)
    if micro:
        return np.exp(-(((t - 0.45) / 0.12) ** 2) / 2)
    onset = np.clip((t - 0.1) / 0.3, 0, 1)
    offset = np.clip((0.95 - t) / 0.25, 0, 1)
    return np.minimum(onset, offset) ** 1.2
