"""Pose normalisation, per-view camera transforms and the per-vertex attributes each image mode shows.

Both backends rasterise the same per-vertex attributes and interpolate them linearly across each
triangle (Gouraud), so the fast rasteriser and pyrender are comparable pixel for pixel.
"""

from __future__ import annotations

import numba
import numpy as np

from facet_lib.config import RenderConfig
from facet_lib.errors import ScanFormatError
from facet_lib.mesh import Mesh


def nose_tip(mesh: Mesh) -> np.ndarray:
    """Nose tip from a landmark named like 'nose tip', else the robust frontmost central point."""
    if mesh.landmarks is not None and mesh.landmark_names:
        for name, p in zip(mesh.landmark_names, mesh.landmarks):
            if "nose tip" in name.lower():
                return np.asarray(p, np.float64)
    v = mesh.vertices.astype(np.float64)
    med = np.median(v, axis=0)
    central = v[(np.abs(v[:, 0] - med[0]) < 30) & (np.abs(v[:, 1] - med[1]) < 50)]
    if len(central) < 10:
        central = v
    top = central[central[:, 2] >= np.percentile(central[:, 2], 99.5)]
    return np.median(top, axis=0)


def _frontal_rotation(mesh: Mesh) -> np.ndarray | None:
    if mesh.landmarks is None or not mesh.landmark_names:
        return None
    lm = {n.lower(): p for n, p in zip(mesh.landmark_names, mesh.landmarks.astype(np.float64))}
    need = ("outer left eye corner", "outer right eye corner", "left mouth corner", "right mouth corner")
    if not all(k in lm for k in need):
        return None
    ex = lm[need[0]] - lm[need[1]]
    ex /= np.linalg.norm(ex)
    up = (lm[need[0]] + lm[need[1]]) / 2 - (lm[need[2]] + lm[need[3]]) / 2
    up -= ex * (up @ ex)
    up /= np.linalg.norm(up)
    return np.stack([ex, up, np.cross(ex, up)])


def face_center(mesh: Mesh, cfg: RenderConfig) -> np.ndarray:
    return nose_tip(mesh) if cfg.center == "nose" else np.median(mesh.vertices.astype(np.float64), axis=0)


def normalized_vertices(mesh: Mesh, cfg: RenderConfig, center: np.ndarray | None = None) -> np.ndarray:
    """Vertices in mm with the face centre (or ``center``) at the origin, frontalised on request."""
    v = mesh.vertices.astype(np.float64)
    c = face_center(mesh, cfg) if center is None else center
    v = v - c
    if cfg.frontalize:
        rot = _frontal_rotation(mesh)
        if rot is not None:
            v = v @ rot.T
    v[:, 0] -= cfg.center_offset_mm[0]
    v[:, 1] -= cfg.center_offset_mm[1]
    return v


@numba.njit(cache=True, nogil=True)
def vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (counter-clockwise faces point outwards)."""
    n = np.zeros(v.shape)
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        ux, uy, uz = v[b, 0] - v[a, 0], v[b, 1] - v[a, 1], v[b, 2] - v[a, 2]
        wx, wy, wz = v[c, 0] - v[a, 0], v[c, 1] - v[a, 1], v[c, 2] - v[a, 2]
        nx, ny, nz = uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx
        for i in (a, b, c):
            n[i, 0] += nx
            n[i, 1] += ny
            n[i, 2] += nz
    for i in range(n.shape[0]):
        norm = np.sqrt(n[i, 0] ** 2 + n[i, 1] ** 2 + n[i, 2] ** 2)
        if norm > 1e-12:
            n[i, 0] /= norm
            n[i, 1] /= norm
            n[i, 2] /= norm
    return n


def yaw_matrix(yaw_deg: float) -> np.ndarray:
    """Rotation of the face for a camera at ``yaw_deg`` (positive: camera towards the face's left, +x)."""
    a = np.radians(yaw_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])


@numba.njit(cache=True, nogil=True)
def _camera(v, n, rot, half, size, perspective, distance):
    """Rotate vertices/normals into the camera frame (camera on +z looking at −z) and project:
    returns pixel coords (x, y down, depth) and camera-frame normals."""
    pix = np.empty(v.shape)
    nc = np.empty(n.shape)
    for i in range(v.shape[0]):
        x = rot[0, 0] * v[i, 0] + rot[0, 1] * v[i, 1] + rot[0, 2] * v[i, 2]
        y = rot[1, 0] * v[i, 0] + rot[1, 1] * v[i, 1] + rot[1, 2] * v[i, 2]
        z = rot[2, 0] * v[i, 0] + rot[2, 1] * v[i, 1] + rot[2, 2] * v[i, 2]
        for c in range(3):
            nc[i, c] = rot[c, 0] * n[i, 0] + rot[c, 1] * n[i, 1] + rot[c, 2] * n[i, 2]
        if perspective:  # scale so that the z = 0 plane spans the field of view
            k = distance / max(distance - z, 1e-3)
            x, y = x * k, y * k
        pix[i, 0] = (x / half + 1.0) * 0.5 * size
        pix[i, 1] = (1.0 - y / half) * 0.5 * size
        pix[i, 2] = z
    return pix, nc


def to_camera(v: np.ndarray, n: np.ndarray, yaw: float, cfg: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    return _camera(
        v, n, yaw_matrix(yaw), cfg.fov_mm / 2, float(cfg.size), cfg.projection == "perspective", cfg.distance_mm
    )


def require_texture(mesh: Mesh) -> None:
    if mesh.uv is None or mesh.texture_path is None or not mesh.texture_path.exists():
        where = f"texture {mesh.texture_path}" if mesh.texture_path else "texture"
        raise ScanFormatError(
            mesh.source or "<mesh>", where, "texture coordinates and an existing texture image for mode=texture"
        )


def vertex_attributes(pix: np.ndarray, nc: np.ndarray, mesh: Mesh, cfg: RenderConfig) -> np.ndarray:
    """Per-vertex values in [0, 1] that the mode shows: (V, 1) grey for shaded/depth, (V, 3) RGB
    for normal, (V, 2) uv for texture. ``pix[:, 2]`` is the camera-frame depth in mm."""
    if cfg.mode == "shaded":
        light = np.asarray(cfg.light, np.float64)
        light /= np.linalg.norm(light)
        return (cfg.ambient + (1 - cfg.ambient) * np.clip(nc @ light, 0, 1))[:, None]
    if cfg.mode == "depth":  # nearer is brighter; the face-centre plane maps to 120/140
        return np.clip((pix[:, 2:3] + cfg.depth_range_mm) / (cfg.depth_range_mm + 20.0), 0, 1)
    if cfg.mode == "normal":
        return (nc + 1) / 2
    require_texture(mesh)
    return mesh.uv.astype(np.float64)


def prepare_views(mesh: Mesh, cfg: RenderConfig, center: np.ndarray | None = None):
    """Yield, per view, (pixel coords (V, 3), attributes (V, 3)) in the camera frame."""
    v = normalized_vertices(mesh, cfg, center)
    n = vertex_normals(v, np.ascontiguousarray(mesh.faces, np.int64))
    for yaw in cfg.yaws:
        pix, nc = to_camera(v, n, yaw, cfg)
        yield pix, vertex_attributes(pix, nc, mesh, cfg)
