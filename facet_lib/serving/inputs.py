"""Request decoding and validation for the predictor: V1 instances and V2 tensors → view arrays.

Every caller mistake raises ``RequestError`` with the field, what was expected and the limit; the
server maps it to 400 (or 413 for size limits). Nothing here imports kserve.
"""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from facet_lib.errors import FacetError
from facet_lib.io import SCAN_SUFFIXES, read_scan
from facet_lib.rankpool import sample_uniform
from facet_lib.render import render_views
from facet_lib.render.config import RenderConfig
from facet_lib.render.dataset import render_sequence


class RequestError(FacetError):
    """A request the caller got wrong. ``status`` is 400, or 413 when a size limit was exceeded."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 64 * 2**20
    max_instances: int = 32
    max_scan_bytes: int = 32 * 2**20
    max_vertices: int = 400_000
    max_frames: int = 120
    max_image_side: int = 2048
    max_concurrent_renders: int = 2
    max_prompts: int = 64


def b64decode(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(f"{field}: expected a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{field}: not valid base64") from None


def decode_image(data: bytes, field: str, size: int, limits: Limits) -> np.ndarray:
    """PNG/JPEG bytes → (size, size, 3) uint8."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) > limits.max_image_side:
                raise RequestError(
                    f"{field}: image {im.size[0]}x{im.size[1]} exceeds the limit of "
                    f"{limits.max_image_side} px per side",
                    413,
                )
            if im.format not in ("PNG", "JPEG"):
                raise RequestError(f"{field}: expected a PNG or JPEG image, got {im.format}")
            rgb = im.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.BILINEAR)
            return np.asarray(rgb, np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        if isinstance(e, RequestError):
            raise
        raise RequestError(f"{field}: undecodable image ({e})") from None


def check_views_array(arr: np.ndarray, field: str, size: int) -> np.ndarray:
    """[B, 3, H, W, C] uint8 → resized to the model's render size."""
    if arr.dtype != np.uint8:
        raise RequestError(f"{field}: expected datatype UINT8, got {arr.dtype}")
    if arr.ndim != 5 or arr.shape[1] != 3 or arr.shape[-1] not in (1, 3):
        raise RequestError(f"{field}: expected shape [B, 3, H, W, 3] (front, left, right views), got {list(arr.shape)}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[2:4] != (size, size):
        out = np.empty(arr.shape[:2] + (size, size, 3), np.uint8)
        for b in range(arr.shape[0]):
            for v in range(3):
                out[b, v] = np.asarray(Image.fromarray(arr[b, v]).resize((size, size), Image.BILINEAR))
        arr = out
    return arr


def _scan_from_bytes(data: bytes, fmt: str, field: str, limits: Limits, tmp: Path):
    fmt = fmt.lower().lstrip(".")
    if f".{fmt}" not in SCAN_SUFFIXES:
        raise RequestError(f"{field}.format: expected one of {', '.join(s[1:] for s in SCAN_SUFFIXES)}, got '{fmt}'")
    if len(data) > limits.max_scan_bytes:
        raise RequestError(f"{field}: scan of {len(data)} bytes exceeds the limit of {limits.max_scan_bytes}", 413)
    path = tmp / f"scan_{len(list(tmp.iterdir()))}.{fmt}"
    path.write_bytes(data)
    try:
        mesh = read_scan(path)
    except FacetError as e:
        raise RequestError(f"{field}: {str(e).replace(str(path), 'scan')}") from None
    if mesh.n_vertices > limits.max_vertices:
        raise RequestError(f"{field}: {mesh.n_vertices} vertices exceed the limit of {limits.max_vertices}", 413)
    return path


def render_scan(data: bytes, fmt: str, field: str, cfg: RenderConfig, limits: Limits) -> np.ndarray:
    """One scan file's bytes → (3, H, W, 3) views, rendered exactly as in training."""
    with tempfile.TemporaryDirectory() as t:
        path = _scan_from_bytes(data, fmt, field, limits, Path(t))
        return render_views(read_scan(path), cfg)


def render_scan_sequence(frames: list[bytes], fmt: str, field: str, cfg: RenderConfig, limits: Limits) -> np.ndarray:
    """A 4D sequence's frame files → (3, H, W, 3) per-view dynamic images (the training summary)."""
    if not 2 <= len(frames) <= limits.max_frames:
        raise RequestError(
            f"{field}: expected 2 to {limits.max_frames} frames, got {len(frames)}",
            413 if len(frames) > limits.max_frames else 400,
        )
    with tempfile.TemporaryDirectory() as t:
        paths = [_scan_from_bytes(f, fmt, f"{field}[{i}]", limits, Path(t)) for i, f in enumerate(frames)]
        return render_sequence([paths[i] for i in sample_uniform(len(paths), cfg.frames)], cfg)


@dataclass
class Job:
    """One sample to classify: its views, or the work that produces them."""

    views: np.ndarray | None = None
    scan: tuple[bytes, str] | None = None
    sequence: tuple[list[bytes], str] | None = None


def parse_v1_instance(inst: object, i: int, size: int, limits: Limits) -> Job:
    field = f"instances[{i}]"
    if not isinstance(inst, dict):
        raise RequestError(f"{field}: expected an object with 'views', 'scan' or 'sequence'")
    kinds = [k for k in ("views", "scan", "sequence") if k in inst]
    if len(kinds) != 1:
        raise RequestError(f"{field}: expected exactly one of 'views', 'scan', 'sequence', got {kinds or 'none'}")
    kind = kinds[0]
    if kind == "views":
        v = inst["views"]
        if not isinstance(v, list) or len(v) != 3:
            raise RequestError(
                f"{field}.views: expected 3 base64 images (front, left, right), "
                f"got {len(v) if isinstance(v, list) else type(v).__name__}"
            )
        imgs = [
            decode_image(b64decode(x, f"{field}.views[{k}]"), f"{field}.views[{k}]", size, limits)
            for k, x in enumerate(v)
        ]
        return Job(views=np.stack(imgs))
    fmt = inst.get("format")
    if not isinstance(fmt, str):
        raise RequestError(f"{field}.format: required with '{kind}' (one of wrl, obj, ply, bnt)")
    if kind == "scan":
        return Job(scan=(b64decode(inst["scan"], f"{field}.scan"), fmt))
    seq = inst["sequence"]
    if not isinstance(seq, list):
        raise RequestError(f"{field}.sequence: expected a list of base64 frame files")
    if len(seq) > limits.max_frames:
        raise RequestError(f"{field}.sequence: {len(seq)} frames exceed the limit of {limits.max_frames}", 413)
    return Job(sequence=([b64decode(x, f"{field}.sequence[{k}]") for k, x in enumerate(seq)], fmt))


def parse_prompts(value: object, limits: Limits) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(p, str) and p.strip() for p in value):
        raise RequestError("prompts: expected a non-empty list of strings")
    if len(value) > limits.max_prompts:
        raise RequestError(f"prompts: {len(value)} prompts exceed the limit of {limits.max_prompts}", 413)
    return value
