"""Render settings: one frozen dataclass, hashed into every rendered dataset's manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from facet_lib.config.codec import from_dict, setting
from facet_lib.errors import ConfigError

RENDER_MODES = ("shaded", "depth", "normal", "texture")
TEMPORAL = ("rankpool", "mean", "apex")


@dataclass(frozen=True)
class RenderConfig:
    """How a scan becomes views (4D sequences are sampled to ``frames`` frames and summarised per view)."""

    size: int = setting(224, "output side in pixels")
    yaws: tuple[float, ...] = setting((0.0, -30.0, 30.0), "view angles in degrees (0 front, -30 left, +30 right)")
    mode: str = setting(
        "shaded", "shaded (Lambertian, fixed light) | depth | normal (RGB-encoded) | texture", RENDER_MODES
    )
    projection: str = setting(
        "ortho", "ortho (as depth-map FER work uses) | perspective (camera at distance_mm)", ("ortho", "perspective")
    )
    fov_mm: float = setting(220.0, "width of the face window at the nose-tip plane (faces keep their real size)")
    distance_mm: float = setting(600.0, "camera distance for the perspective projection")
    center: str = setting(
        "nose", "nose (nose tip from landmarks, else the frontmost point) | centroid", ("nose", "centroid")
    )
    center_offset_mm: tuple[float, float] = setting((0.0, 8.0), "shift of the view centre from the chosen point (x, y)")
    frontalize: bool = setting(False, "rotate each scan to a frontal pose before rendering")
    depth_range_mm: float = setting(120.0, "depth covered by the depth/normal encodings")
    light: tuple[float, float, float] = setting((0.0, 0.3, 1.0), "light direction of the shaded mode")
    ambient: float = setting(0.15, "ambient light share of the shaded mode")
    cull_backfaces: bool = setting(True, "drop triangles facing away from the camera")
    backend: str = setting("fast", "fast (numpy rasteriser) | pyrender (OpenGL); same pixels", ("fast", "pyrender"))
    frames: int = setting(16, "frames sampled per 4D sequence")
    temporal: str = setting("rankpool", "how a sequence's frames become one image per view", TEMPORAL)

    def __post_init__(self) -> None:
        checks = [
            (self.mode in RENDER_MODES, f"mode must be one of {RENDER_MODES}, got {self.mode!r}"),
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
        return from_dict(cls, d)

    def digest(self) -> str:
        """Hash of every setting that changes pixels (the backend is excluded: both must agree)."""
        d = self.to_dict()
        d.pop("backend")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
