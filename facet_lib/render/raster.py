"""Fast CPU backend: a z-buffer triangle rasteriser compiled with numba.

Why hand-written: pyrender (OpenGL on Mesa llvmpipe) pays scene set-up, mesh upload and a GPU-style
pipeline per render; a scan of ~35k vertices is ~70k triangles of about one pixel each at 224×224,
which a direct loop rasterises in about a millisecond. ``benchmarks/bench_render.py`` measures both.
The rasteriser samples pixel centres, keeps the nearest surface per pixel and interpolates the same
per-vertex attributes (``geometry.vertex_attributes``) that the pyrender backend draws.
"""

from __future__ import annotations

import numba
import numpy as np
from PIL import Image

from facet_lib.config import RenderConfig
from facet_lib.errors import ScanFormatError
from facet_lib.mesh import Mesh
from facet_lib.render.geometry import prepare_views, require_texture

MAX_RASTER_WORK = 64  # pixel tests per output pixel and view; a scan needs about 1 (one-pixel triangles)


@numba.njit(cache=True, nogil=True)
def rasterize(pix: np.ndarray, faces: np.ndarray, size: int, cull: bool, max_work: int):
    """Rasterise triangles given in pixel coordinates (x, y down, depth; larger depth = nearer).

    Returns the face index per pixel (-1 background), the barycentric weights of vertices 0 and 1,
    and the work done (pixel tests: clipped bounding-box areas). Stops as soon as the work would
    exceed ``max_work`` (then the returned work is above it and the image is incomplete).
    """
    work = 0
    zbuf = np.full((size, size), -np.inf)
    tri = np.full((size, size), -1, np.int64)
    b0 = np.zeros((size, size))
    b1 = np.zeros((size, size))
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        x0, y0, z0 = pix[i0, 0], pix[i0, 1], pix[i0, 2]
        x1, y1, z1 = pix[i1, 0], pix[i1, 1], pix[i1, 2]
        x2, y2, z2 = pix[i2, 0], pix[i2, 1], pix[i2, 2]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        # y points down, so a counter-clockwise (front-facing) triangle has negative area here
        if area == 0.0 or (cull and area > 0.0):
            continue
        xmin = max(int(np.ceil(min(x0, x1, x2) - 0.5)), 0)
        xmax = min(int(np.floor(max(x0, x1, x2) - 0.5)), size - 1)
        ymin = max(int(np.ceil(min(y0, y1, y2) - 0.5)), 0)
        ymax = min(int(np.floor(max(y0, y1, y2) - 0.5)), size - 1)
        if xmax >= xmin and ymax >= ymin:
            work += (xmax - xmin + 1) * (ymax - ymin + 1)
            if work > max_work:
                return tri, b0, b1, work
        inv = 1.0 / area
        for yy in range(ymin, ymax + 1):
            cy = yy + 0.5
            for xx in range(xmin, xmax + 1):
                cx = xx + 0.5
                w0 = ((x1 - cx) * (y2 - cy) - (x2 - cx) * (y1 - cy)) * inv
                w1 = ((x2 - cx) * (y0 - cy) - (x0 - cx) * (y2 - cy)) * inv
                w2 = 1.0 - w0 - w1
                if w0 < -1e-9 or w1 < -1e-9 or w2 < -1e-9:
                    continue
                z = w0 * z0 + w1 * z1 + w2 * z2
                if z > zbuf[yy, xx]:
                    zbuf[yy, xx] = z
                    tri[yy, xx] = f
                    b0[yy, xx] = w0
                    b1[yy, xx] = w1
    return tri, b0, b1, work


def _texture(mesh: Mesh) -> np.ndarray:
    require_texture(mesh)
    with Image.open(mesh.texture_path) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


@numba.njit(cache=True, nogil=True)
def interpolate(attr, faces, tri, b0, b1, out, scale, offset):
    """out[y, x] = clamp(scale · (barycentric mix of the face's per-vertex ``attr``) + offset, 0, 255).

    With a uint8 ``out``, scale=255 and offset=0.5 this is the final image; background stays 0."""
    h, w = tri.shape
    na, nout = attr.shape[1], out.shape[2]
    for y in range(h):
        for x in range(w):
            f = tri[y, x]
            if f < 0:
                continue
            w0, w1 = b0[y, x], b1[y, x]
            w2 = 1.0 - w0 - w1
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            for c in range(nout):
                a = c if c < na else na - 1  # a single grey attribute fills every channel
                val = scale * (w0 * attr[i0, a] + w1 * attr[i1, a] + w2 * attr[i2, a]) + offset
                out[y, x, c] = min(max(val, 0.0), 255.0)
    return out


def render_fast(mesh: Mesh, cfg: RenderConfig, center: np.ndarray | None = None) -> np.ndarray:
    """(views, size, size, 3) uint8 images of ``mesh`` with the fast rasteriser."""
    faces = np.ascontiguousarray(mesh.faces, np.int64)
    tex = _texture(mesh) if cfg.mode == "texture" else None
    out = np.zeros((len(cfg.yaws), cfg.size, cfg.size, 3), np.uint8)
    for k, (pix, attr) in enumerate(prepare_views(mesh, cfg, center)):
        budget = MAX_RASTER_WORK * cfg.size**2
        tri, b0, b1, work = rasterize(pix, faces, cfg.size, cfg.cull_backfaces, budget)
        if work > budget:  # e.g. thousands of full-frame triangles: refuse instead of stalling a worker
            raise ScanFormatError(
                mesh.source or "<mesh>",
                f"view {k}",
                f"at most {MAX_RASTER_WORK} pixel tests per output pixel to rasterise (limit)",
                f"more, from {mesh.n_faces} triangles covering the frame many times over",
            )
        attr = np.ascontiguousarray(attr)
        if tex is None:
            interpolate(attr, faces, tri, b0, b1, out[k], 255.0, 0.5)
            continue
        uv = interpolate(attr, faces, tri, b0, b1, np.zeros((cfg.size, cfg.size, 2)), 1.0, 0.0)
        h, w = tex.shape[:2]  # nearest texel at the interpolated (u, v); v = 0 is the image bottom
        u = np.clip((uv[..., 0] * (w - 1)).round().astype(int), 0, w - 1)
        v = np.clip(((1 - uv[..., 1]) * (h - 1)).round().astype(int), 0, h - 1)
        out[k] = np.where((tri >= 0)[..., None], tex[v, u], 0)
    return out
