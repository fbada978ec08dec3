"""One value of a request decoded and checked against the limits: base64, images, view arrays, scan files,
prompts, V2 tensor shapes and BYTES elements; the request's budget; the error every caller mistake raises.

``RequestError`` names the field (in the protocol's own terms: V1 ``instances[i].…``, V2 ``inputs[name].…``),
what was expected and the limit; the server answers 400 (413 for a size limit) with ``{"error": ...}``.
Echoed values are clipped. No kserve, no torch here.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import reprlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from facet_lib.config import Limits
from facet_lib.errors import FacetError


class RequestError(FacetError):
    """A request the caller got wrong. ``status`` is 400, or 413 when a size limit was exceeded."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


_REPR = reprlib.Repr()  # Python 3.10 has no keyword arguments here
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 6, 4, 2


def clip(value: object, n: int = 60) -> str:
    """A short ``repr`` of a caller's value (messages never echo a whole input)."""
    r = _REPR.repr(value)
    return r if len(r) <= n else f"{r[:n]}…"


class Budget:
    """All inputs of a request against one sample limit and one frame limit."""

    def __init__(self, limits: Limits):
        self.limits, self.samples, self.frames, self.pixels = limits, 0, 0, 0

    def add(self, field: str, samples: int = 0, frames: int = 0, pixels: int = 0) -> None:
        self.samples += samples
        self.frames += frames
        self.pixels += pixels
        if self.pixels > self.limits.max_pixels:  # decoded size, from image headers / V2 shapes (issue 18)
            raise RequestError(
                f"{field}: {self.pixels} view pixels in this request exceed the limit of {self.limits.max_pixels}", 413
            )
        if self.samples > self.limits.max_instances:
            raise RequestError(
                f"{field}: {self.samples} samples in this request exceed the limit of {self.limits.max_instances}", 413
            )
        if self.frames > self.limits.max_frames:
            raise RequestError(
                f"{field}: {self.frames} sequence frames in this request exceed the limit of {self.limits.max_frames}",
                413,
            )


def b64decode(value: object, field: str) -> bytes:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        raise RequestError(f"{field}: expected a base64 string, got {type(value).__name__}")
    try:
        return binascii.a2b_base64(value, strict_mode=True)  # = b64decode(validate=True), without a copy
    except (binascii.Error, ValueError):
        raise RequestError(f"{field}: not valid base64 ({clip(value, 40)})") from None


def decode_image(data: bytes, field: str, size: int, limits: Limits, budget: Budget | None = None) -> np.ndarray:
    """PNG/JPEG bytes → (size, size, 3) uint8; the header's pixel count goes against ``budget`` first."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) > limits.max_image_side:
                raise RequestError(
                    f"{field}: image {im.size[0]}x{im.size[1]} exceeds the limit of "
                    f"{limits.max_image_side} px per side",
                    413,
                )
            if budget is not None:
                budget.add(field, pixels=im.size[0] * im.size[1])
            if im.format not in ("PNG", "JPEG"):
                raise RequestError(f"{field}: expected a PNG or JPEG image, got {im.format}")
            rgb = im.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.BILINEAR)
            return np.asarray(rgb, np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as e:
        if isinstance(e, RequestError):
            raise
        raise RequestError(f"{field}: undecodable image ({type(e).__name__})") from None


def views_png_b64(views: np.ndarray) -> list[list[str]]:
    """(B, V, H, W, 3) uint8 → per sample, each view as a base64 PNG (``return_views``)."""
    out = []
    for sample in views:
        pngs = []
        for v in sample:
            buf = io.BytesIO()
            Image.fromarray(v).save(buf, format="PNG")
            pngs.append(base64.b64encode(buf.getvalue()).decode())
        out.append(pngs)
    return out


def check_views_array(arr: np.ndarray, field: str, size: int) -> np.ndarray:
    """[B, 3, H, W, C] uint8 → resized to the model's render size."""
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


def scan_bytes(value: object, field: str, limits: Limits, raw: bool = False) -> bytes:
    """A scan file: base64 text (V1, V2 JSON) or, from the V2 binary extension (``raw``), the file's bytes."""
    data = value if raw else b64decode(value, field)
    if len(data) > limits.max_scan_bytes:
        raise RequestError(f"{field}: scan of {len(data)} bytes exceeds the limit of {limits.max_scan_bytes}", 413)
    return data


def parse_prompts(value: object, field: str, limits: Limits) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):  # V2 parameters hold scalars: a JSON array in a string
        try:
            value = json.loads(value)
        except ValueError:
            raise RequestError(f"{field}: expected a JSON array of strings, got {clip(value, 40)}") from None
    if not isinstance(value, list) or not value or not all(isinstance(p, str) and p.strip() for p in value):
        raise RequestError(f"{field}: expected a non-empty list of non-empty strings")
    if len(value) > limits.max_prompts:
        raise RequestError(f"{field}: {len(value)} prompts exceed the limit of {limits.max_prompts}", 413)
    longest = max(len(p) for p in value)
    if longest > limits.max_prompt_chars:
        raise RequestError(
            f"{field}: a prompt of {longest} characters exceeds the limit of {limits.max_prompt_chars}", 413
        )
    return value


def tensor_shape(inp, field: str) -> list[int]:
    """A V2 input's shape: positive integer dimensions."""
    shape = list(inp.shape or [])
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise RequestError(f"{field}.shape: expected positive integer dimensions, got {clip(shape, 40)}")
    return shape


def bytes_elements(inp, field: str) -> list:
    """A V2 BYTES input's elements, as many as its shape says (its datatype is checked by the caller)."""
    shape = tensor_shape(inp, field)
    if isinstance(inp.data, list) and any(isinstance(x, (list, dict)) for x in inp.data):
        raise RequestError(f"{field}.data: expected a flat list of strings (one per element), got a nested list")
    items = list(np.asarray(inp.data, dtype=object).reshape(-1)) if inp.data is not None else []
    if len(items) != math.prod(shape):
        raise RequestError(f"{field}.data: {len(items)} elements do not match shape {shape}")
    return items
