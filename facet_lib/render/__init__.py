"""Multiview rendering of scans: ``render_views(mesh, cfg)`` → (views, H, W, 3) uint8."""

from __future__ import annotations

import numpy as np

from facet_lib.config import RenderConfig
from facet_lib.mesh import Mesh


def render_views(mesh: Mesh, cfg: RenderConfig, center: np.ndarray | None = None) -> np.ndarray:
    """Render ``mesh`` at every yaw of ``cfg`` with the configured backend.

    ``center`` overrides the per-scan face centre (sequences use their first frame's for every frame).
    """
    if cfg.backend == "pyrender":
        from facet_lib.render.pyrender_backend import render_pyrender

        return render_pyrender(mesh, cfg, center)
    from facet_lib.render.raster import render_fast

    return render_fast(mesh, cfg, center)


__all__ = ["RenderConfig", "render_views"]
