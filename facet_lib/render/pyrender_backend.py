"""Reference backend: pyrender offscreen (EGL + Mesa on a headless machine; PYOPENGL_PLATFORM=egl).

Draws the same per-vertex attributes as the fast backend with lighting off (RenderFlags.FLAT), so
the two differ only by rasterisation rules and pyrender's multisample edge blending.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from facet_lib.config import RenderConfig
from facet_lib.mesh import Mesh
from facet_lib.render.geometry import normalized_vertices, prepare_views, vertex_normals, yaw_matrix

_local = threading.local()


def _renderer(size: int):
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    r = getattr(_local, "renderer", None)
    if r is None or r.viewport_width != size:
        if r is not None:
            r.delete()
        r = _local.renderer = pyrender.OffscreenRenderer(size, size)
    return r


def render_pyrender(mesh: Mesh, cfg: RenderConfig, center: np.ndarray | None = None) -> np.ndarray:
    import pyrender
    import trimesh

    renderer = _renderer(cfg.size)
    out = np.zeros((len(cfg.yaws), cfg.size, cfg.size, 3), np.uint8)
    half = cfg.fov_mm / 2
    v = normalized_vertices(mesh, cfg, center)
    n = vertex_normals(v, np.ascontiguousarray(mesh.faces, np.int64))
    for k, (yaw, (_, attr)) in enumerate(zip(cfg.yaws, prepare_views(mesh, cfg, center))):
        vc = v @ yaw_matrix(yaw).T
        if cfg.mode == "texture":
            from PIL import Image

            # A PBR material with a white factor: FLAT rendering then shows the texture as stored.
            material = trimesh.visual.material.PBRMaterial(
                baseColorTexture=Image.open(mesh.texture_path).convert("RGB"), baseColorFactor=[255, 255, 255, 255]
            )
            visual = trimesh.visual.TextureVisuals(uv=mesh.uv, material=material)
            tm = trimesh.Trimesh(vc, mesh.faces, visual=visual, process=False)
        else:
            colors = np.clip(np.broadcast_to(attr, (len(attr), 3)) * 255 + 0.5, 0, 255).astype(np.uint8)
            tm = trimesh.Trimesh(vc, mesh.faces, vertex_colors=colors, vertex_normals=n, process=False)
        pm = pyrender.Mesh.from_trimesh(tm, smooth=True)
        for p in pm.primitives:
            p.material.doubleSided = not cfg.cull_backfaces
        scene = pyrender.Scene(bg_color=[0, 0, 0, 0], ambient_light=[1, 1, 1])
        scene.add(pm)
        pose = np.eye(4)
        if cfg.projection == "ortho":
            cam = pyrender.OrthographicCamera(xmag=half, ymag=half, znear=1.0, zfar=2000.0)
            pose[2, 3] = 1000.0
        else:
            cam = pyrender.PerspectiveCamera(yfov=2 * np.arctan(half / cfg.distance_mm), znear=1.0, zfar=5000.0)
            pose[2, 3] = cfg.distance_mm
        scene.add(cam, pose=pose)
        color, _ = renderer.render(scene, flags=pyrender.RenderFlags.FLAT)
        out[k] = color[..., :3]
    return out
