"""Landmark files: Bosphorus ``.lm3``/``.lm2`` and BU-3DFE ``.bnd``.

- ``.lm3`` / ``.lm2`` (Bosphorus): ``#`` comment lines, a count line (``22 landmarks:``), then
  alternating label lines and coordinate lines (x y z, or x y in image pixels for ``.lm2``).
  Layout as parsed by menpo's ``lm3_importer`` and shipped with the database.
- ``.bnd`` (BU-3DFE): 83 lines ``<vertex index> x y z``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facet_lib.errors import ScanFormatError


def _read_text(path: str | Path) -> str:
    """A landmark file's text; binary or non-UTF-8 content is a ScanFormatError naming the file and byte."""
    p = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ScanFormatError(p, "file", "a readable landmark file", str(e)) from None
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ScanFormatError(p, f"byte {nul}", "a text landmark file", "binary data (a NUL byte)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScanFormatError(
            p, f"byte {e.start}", "a UTF-8 text landmark file", f"byte 0x{raw[e.start]:02x}"
        ) from None


def _read_labelled(path: str | Path, dims: int) -> tuple[np.ndarray, list[str]]:
    p = str(path)
    lines = _read_text(path).splitlines()
    body = [(i + 1, ln.strip()) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        raise ScanFormatError(p, "line 1", "a landmark count line such as '22 landmarks:'", "empty file")
    lineno, first = body[0]
    try:
        count = int(first.split()[0])
    except ValueError:
        raise ScanFormatError(p, f"line {lineno}", "a landmark count", repr(first)) from None
    if len(body) - 1 < 2 * count:
        raise ScanFormatError(p, "end of file", f"{count} label/coordinate pairs", f"{(len(body) - 1) // 2}")
    names, pts = [], []
    for k in range(count):
        (_, name), (ln, coords) = body[1 + 2 * k], body[2 + 2 * k]
        try:
            vals = [float(t) for t in coords.split()]
        except ValueError:
            raise ScanFormatError(p, f"line {ln}", f"{dims} coordinates", repr(coords)) from None
        if len(vals) != dims or not np.isfinite(vals).all():
            raise ScanFormatError(p, f"line {ln}", f"{dims} finite coordinates", repr(coords))
        names.append(name)
        pts.append(vals)
    return np.asarray(pts, np.float32), names


def read_lm3(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """3D landmarks (L, 3) and their names from a Bosphorus ``.lm3`` file."""
    return _read_labelled(path, 3)


def read_lm2(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """2D image landmarks (L, 2) and their names from a Bosphorus ``.lm2`` file."""
    return _read_labelled(path, 2)


def write_lm3(path: str | Path, points: np.ndarray, names: list[str]) -> None:
    out = ["# LANDMARKS 3D", "", f"{len(names)} landmarks:"]
    for n, pt in zip(names, points):
        out += [n, " ".join(f"{x:.6f}" for x in pt)]
    Path(path).write_text("\n".join(out) + "\n")


def read_bnd(path: str | Path) -> np.ndarray:
    """BU-3DFE 83-point ``.bnd`` landmarks as (83, 3); the leading vertex index is dropped."""
    p = str(path)
    pts = []
    for i, ln in enumerate(_read_text(path).splitlines()):
        if not ln.strip():
            continue
        t = ln.split()
        try:
            vals = [float(x) for x in t[1:4]]
        except ValueError:
            raise ScanFormatError(p, f"line {i + 1}", "'index x y z'", repr(ln)) from None
        if len(t) < 4 or not np.isfinite(vals).all():
            raise ScanFormatError(p, f"line {i + 1}", "'index x y z' with finite values", repr(ln))
        pts.append(vals)
    if not pts:
        raise ScanFormatError(p, "line 1", "at least one landmark", "empty file")
    return np.asarray(pts, np.float32)


def write_bnd(path: str | Path, vertex_ids: np.ndarray, points: np.ndarray) -> None:
    rows = [f"{int(i)}\t\t{p[0]:.4f}\t\t{p[1]:.4f}\t\t{p[2]:.4f}" for i, p in zip(vertex_ids, points)]
    Path(path).write_text("\n".join(rows) + "\n")
