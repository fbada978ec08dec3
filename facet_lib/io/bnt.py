"""Bosphorus ``.bnt`` range-scan reader and writer.

Layout (little-endian), after A. Savran's reference reader ``read_bntfile.m`` (2008) distributed
with the Bosphorus database::

    uint16 nrows; uint16 ncols; float64 zmin
    uint16 len; char imfile[len]              # name of the matching 2D image (.png)
    uint32 n                                  # n == nrows * ncols * 5
    float64 data[n]                           # five column blocks of nrows*ncols: x, y, z, u, v

Points whose coordinates equal ``zmin`` are background. Rows are stored bottom-up (the first
``ncols`` values are the bottom image row). (u, v) are normalised 2D image coordinates in [0, 1].
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from facet_lib.errors import ScanFormatError
from facet_lib.mesh import Mesh, validate_mesh


def read_bnt_grid(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (xyz grid (rows, cols, 3) top-down with NaN background, uv grid (rows, cols, 2), imfile)."""
    p = str(path)
    try:
        buf = Path(path).read_bytes()
    except OSError as e:
        raise ScanFormatError(p, "file", "a readable file", str(e)) from None
    if len(buf) < 14:
        raise ScanFormatError(p, "header (byte 0)", "14 header bytes", f"{len(buf)} bytes")
    nrows, ncols, zmin, nlen = struct.unpack_from("<HHdH", buf, 0)
    off = 14
    if nrows == 0 or ncols == 0:
        raise ScanFormatError(p, "header nrows/ncols (byte 0)", "a non-empty grid", f"{nrows}x{ncols}")
    if not np.isfinite(zmin):
        raise ScanFormatError(p, "header zmin (byte 4)", "a finite background value", str(zmin))
    if off + nlen + 4 > len(buf):
        raise ScanFormatError(p, f"image name (byte {off})", f"{nlen} name bytes and a count", "end of file")
    imfile = buf[off : off + nlen].decode("latin-1")
    off += nlen
    (n,) = struct.unpack_from("<I", buf, off)
    off += 4
    if n != nrows * ncols * 5:
        raise ScanFormatError(p, f"value count (byte {off - 4})", f"rows*cols*5 = {nrows * ncols * 5}", str(n))
    need = off + 8 * n
    if len(buf) < need:
        raise ScanFormatError(p, f"data (byte {off})", f"{8 * n} data bytes", f"{len(buf) - off} (truncated)")
    data = np.frombuffer(buf, dtype="<f8", count=n, offset=off).reshape(5, nrows, ncols)
    data = data[:, ::-1, :]  # stored bottom-up → top-down image rows
    xyz = np.moveaxis(data[:3], 0, -1).copy()
    uv = np.moveaxis(data[3:], 0, -1).copy()
    background = (xyz == zmin).any(axis=-1)
    xyz[background] = np.nan
    bad = ~background & ~np.isfinite(xyz).all(axis=-1)
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise ScanFormatError(p, f"point (row {r}, col {c})", "finite x, y, z", str(xyz[r, c].tolist()))
    return xyz, uv, imfile


def grid_to_mesh(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate the valid cells of a (rows, cols, 3) grid with NaN holes.

    Each 2×2 cell gives two triangles when all four corners are valid, or one triangle when exactly
    three are. Returns (vertices, faces, kept grid indices).
    """
    rows, cols, _ = xyz.shape
    valid = np.isfinite(xyz).all(-1)
    ids = -np.ones((rows, cols), np.int64)
    ids[valid] = np.arange(valid.sum())
    a, b = ids[:-1, :-1], ids[:-1, 1:]
    c, d = ids[1:, :-1], ids[1:, 1:]
    # Counter-clockwise seen from +z with rows growing downwards (image y = -mesh y).
    cand = [
        np.stack([a, c, b], -1),
        np.stack([b, c, d], -1),
    ]
    tris = np.concatenate([t.reshape(-1, 3) for t in cand])
    # Cells with exactly one missing corner: the triangle of the three others.
    # (a, c, b) already covers a missing d, and (b, c, d) a missing a.
    missing_b = (a >= 0) & (b < 0) & (c >= 0) & (d >= 0)
    missing_c = (a >= 0) & (b >= 0) & (c < 0) & (d >= 0)
    extra = [
        np.stack([a[missing_b], c[missing_b], d[missing_b]], -1),
        np.stack([a[missing_c], d[missing_c], b[missing_c]], -1),
    ]
    tris = np.concatenate([tris[(tris >= 0).all(1)], *extra])
    return xyz[valid], tris, np.flatnonzero(valid.ravel())


def read_bnt(path: str | Path) -> Mesh:
    """Read a Bosphorus ``.bnt`` scan as a Mesh; ``.lm3`` landmarks beside it are attached."""
    path = Path(path)
    xyz, uv, imfile = read_bnt_grid(path)
    verts, faces, kept = grid_to_mesh(xyz)
    if len(verts) == 0:
        raise ScanFormatError(str(path), "data", "at least one foreground point", "only background")
    mesh = Mesh(
        vertices=verts.astype(np.float32),
        faces=faces.astype(np.int64),
        uv=uv.reshape(-1, 2)[kept].astype(np.float32),
        texture_path=(path.parent / imfile) if imfile else None,
        source=str(path),
        meta={"grid_shape": xyz.shape[:2], "imfile": imfile},
    )
    if faces.shape[0] == 0:
        raise ScanFormatError(str(path), "data", "a grid with at least one valid 2x2 cell", "none")
    lm3 = path.with_suffix(".lm3")
    if lm3.exists():
        from facet_lib.io.landmarks import read_lm3

        mesh.landmarks, mesh.landmark_names = read_lm3(lm3)
    return validate_mesh(mesh, path)


def write_bnt(path: str | Path, xyz: np.ndarray, uv: np.ndarray, imfile: str, zmin: float = -1e9) -> None:
    """Write a (rows, cols, 3) top-down grid (NaN = background) in the Bosphorus layout."""
    rows, cols, _ = xyz.shape
    data = np.concatenate([xyz, uv], axis=-1).astype("<f8")
    data[~np.isfinite(xyz).all(-1)] = zmin
    data = np.moveaxis(data[::-1], -1, 0)  # bottom-up rows, then five column blocks
    name = imfile.encode("latin-1")
    head = struct.pack("<HHdH", rows, cols, zmin, len(name)) + name + struct.pack("<I", rows * cols * 5)
    Path(path).write_bytes(head + np.ascontiguousarray(data).tobytes())
