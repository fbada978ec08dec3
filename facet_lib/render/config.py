"""Render settings: one frozen dataclass, hashed into every rendered dataset's manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from facet_lib.errors import ConfigError

MODES = ("shaded", "depth", "normal", "texture")
TEMPORAL = ("rankpool", "mean", "apex")


@dataclass(frozen=True)
class RenderConfig:
    """How a scan becomes views.

    size: output side in pixels. yaws: view angles in degrees (0 front, −30 left, +30 right).
    mode: shaded (Lambertian, fixed light) | depth | normal (RGB-encoded) | texture.
    projection: ortho (default, as depth-map FER work uses) | perspective (camera ``distance_mm``).
    fov_mm: width of the face window at the nose-tip plane, fixed so faces keep their real size.
    center: nose (nose tip from landmarks, else the robust frontmost point) | centroid.
    frames/temporal: 4D sequences are sampled to ``frames`` frames and summarised per view.
    """

    size: int = 224
    yaws: tuple[float, ...] = (0.0, -30.0, 30.0)
    mode: str = "shaded"
    projection: str = "ortho"
    fov_mm: float = 220.0
    distance_mm: float = 600.0
    center: str = "nose"
    center_offset_mm: tuple[float, float] = (0.0, 8.0)
    frontalize: bool = False
    depth_range_mm: float = 120.0
    light: tuple[float, float, float] = (0.0, 0.3, 1.0)
    ambient: float = 0.15
    cull_backfaces: bool = True
    backend: str = "fast"
    frames: int = 16
    temporal: str = "rankpool"

    def __post_init__(self) -> None:
        checks = [
            (self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}"),
            (self.temporal in TEMPORAL, f"temporal must be one of {TEMPORAL}, got {self.temporal!r}"),
            (
                self.projection in ("ortho", "perspective"),
                f"projection must be ortho|perspective, got {self.projection!r}",
            ),
            (self.center in ("nose", "centroid"), f"center must be nose|centroid, got {self.center!r}"),
            (self.backend in ("fast", "pyrender"), f"backend must be fast|pyrender, got {self.backend!r}"),
            (16 <= self.size <= 2048, f"size must be in [16, 2048], got {self.size}"),
            (len(self.yaws) >= 1, "yaws needs at least one view"),
            (self.frames >= 2, f"frames must be >= 2, got {self.frames}"),
            (self.fov_mm > 0 and self.depth_range_mm > 0, "fov_mm and depth_range_mm must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"RenderConfig: {msg}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RenderConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"RenderConfig: unknown setting(s) {sorted(unknown)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)

    def digest(self) -> str:
        """Hash of every setting that changes pixels (the backend is excluded: both must agree)."""
        d = self.to_dict()
        d.pop("backend")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
