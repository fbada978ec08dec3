"""Request decoding for the predictor, V1 and V2 side by side: a request → ``Job`` list + options.

Every caller mistake raises ``RequestError`` naming the field (in the protocol's own terms: V1
``instances[i].…``, V2 ``inputs[name].…``), what was expected and the limit; the server answers
400 (413 for a size limit) with ``{"error": ...}``. Echoed values are clipped. All inputs of one
request count against one budget (``Limits.max_instances`` samples, ``Limits.max_frames`` frames).
Nothing here imports kserve or torch (V2 requests are read through their attributes).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import reprlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from facet_lib.config import Limits
from facet_lib.errors import FacetError
from facet_lib.io import SCAN_SUFFIXES

MODES = ("class_conditional", "label_free")
FORMATS = tuple(s[1:] for s in SCAN_SUFFIXES)


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


@dataclass
class Job:
    """One sample to classify: its views, or the files that produce them (rendered server-side)."""

    field: str
    views: np.ndarray | None = None
    scan: tuple[bytes | Path, str] | None = None  # a file's bytes (or, in a render worker, the spooled file)
    sequence: tuple[list[bytes] | list[Path], str] | None = None


@dataclass
class Request:
    """A decoded request: the samples and the options that apply to all of them."""

    jobs: list[Job]
    prompts: list[str] | None = None
    mode: str = "class_conditional"
    attention: bool = False
    binary_output: bool = False
    return_views: bool = False


class _Budget:
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


def decode_image(data: bytes, field: str, size: int, limits: Limits, budget: _Budget | None = None) -> np.ndarray:
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


def check_format(fmt: object, field: str) -> str:
    if not isinstance(fmt, str):
        raise RequestError(f"{field}: required with a scan or sequence (one of {', '.join(FORMATS)})")
    f = fmt.lower().lstrip(".")
    if f not in FORMATS:
        raise RequestError(f"{field}: expected one of {', '.join(FORMATS)}, got {clip(fmt, 20)}")
    return f


def _scan_bytes(value: object, field: str, limits: Limits, raw: bool = False) -> bytes:
    """A scan file: base64 text (V1, V2 JSON) or, from the V2 binary extension (``raw``), the file's bytes."""
    data = value if raw else b64decode(value, field)
    if len(data) > limits.max_scan_bytes:
        raise RequestError(f"{field}: scan of {len(data)} bytes exceeds the limit of {limits.max_scan_bytes}", 413)
    return data


# -- options shared by V1 and V2 ---------------------------------------------------------------------
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


def _options(req: Request, params: object, where: str, limits: Limits) -> Request:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(f"{where}: expected an object")
    if "prompts" in params:
        req.prompts = parse_prompts(params["prompts"], f"{where}.prompts", limits)
    mode = params.get("mode", "class_conditional")
    if mode not in MODES:
        raise RequestError(f"{where}.mode: expected one of {', '.join(MODES)}, got {clip(mode, 30)}")
    req.mode = mode
    flags = (
        ("return_attention", "attention"),
        ("binary_data_output", "binary_output"),
        ("return_views", "return_views"),
    )
    for key, attr in flags:
        v = params.get(key, False)
        if not isinstance(v, bool):
            raise RequestError(f"{where}.{key}: expected true or false, got {clip(v, 20)}")
        setattr(req, attr, v)
    return req


# -- V1 ----------------------------------------------------------------------------------------------
def parse_v1_instance(inst: object, i: int, size: int, limits: Limits, budget: _Budget) -> Job:
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
            got = len(v) if isinstance(v, list) else type(v).__name__
            raise RequestError(f"{field}.views: expected 3 base64 images (front, left, right), got {got}")
        imgs = [
            decode_image(b64decode(x, f"{field}.views[{k}]"), f"{field}.views[{k}]", size, limits, budget)
            for k, x in enumerate(v)
        ]
        return Job(field, views=np.stack(imgs))
    fmt = check_format(inst.get("format"), f"{field}.format")
    if kind == "scan":
        return Job(field, scan=(_scan_bytes(inst["scan"], f"{field}.scan", limits), fmt))
    seq = inst["sequence"]
    if not isinstance(seq, list) or len(seq) < 2:
        raise RequestError(f"{field}.sequence: expected a list of at least 2 base64 frame files")
    budget.add(f"{field}.sequence", frames=len(seq))
    return Job(field, sequence=([_scan_bytes(x, f"{field}.sequence[{k}]", limits) for k, x in enumerate(seq)], fmt))


def parse_v1(payload: object, size: int, limits: Limits) -> Request:
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise RequestError("body: expected a JSON object with an 'instances' list")
    inst = payload["instances"]
    if not inst:
        raise RequestError("instances: expected at least one instance")
    budget = _Budget(limits)
    budget.add("instances", samples=len(inst))
    req = _options(Request([]), payload.get("parameters"), "parameters", limits)  # cheap checks first
    req.jobs = [parse_v1_instance(x, i, size, limits, budget) for i, x in enumerate(inst)]
    return req


# -- V2 ----------------------------------------------------------------------------------------------
def _v2_shape(inp, field: str) -> list[int]:
    shape = list(inp.shape or [])
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise RequestError(f"{field}.shape: expected positive integer dimensions, got {clip(shape, 40)}")
    return shape


def _v2_views(inp, field: str, size: int, limits: Limits, budget: _Budget) -> np.ndarray:
    if inp.datatype != "UINT8":
        raise RequestError(f"{field}.datatype: expected UINT8, got {clip(inp.datatype, 20)}")
    shape = _v2_shape(inp, field)
    if len(shape) != 5 or shape[1] != 3 or shape[-1] not in (1, 3):
        raise RequestError(f"{field}.shape: expected [B, 3, H, W, 3] (front, left, right views), got {shape}")
    budget.add(f"{field}.shape[0]", samples=shape[0])
    if max(shape[2:4]) > limits.max_image_side:
        raise RequestError(f"{field}.shape: views of {shape[2]}x{shape[3]} exceed {limits.max_image_side} px", 413)
    budget.add(f"{field}.shape", pixels=math.prod(shape[:4]))
    try:
        arr = np.asarray(inp.data if inp.data is not None else [])
    except (ValueError, TypeError):
        raise RequestError(f"{field}.data: expected a flat (or regularly nested) list of integers") from None
    if arr.size != math.prod(shape):
        raise RequestError(f"{field}.data: {arr.size} values do not match shape {shape} ({math.prod(shape)} values)")
    if arr.dtype.kind not in "iu":
        raise RequestError(f"{field}.data: expected integers 0-255 (UINT8), got {arr.dtype.name} values")
    if arr.dtype != np.uint8:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise RequestError(f"{field}.data: values {lo}..{hi} are outside the UINT8 range 0-255")
    return check_views_array(arr.astype(np.uint8).reshape(shape), field, size)


def _v2_bytes(inp, field: str) -> list:
    if inp.datatype != "BYTES":
        raise RequestError(f"{field}.datatype: expected BYTES, got {clip(inp.datatype, 20)}")
    shape = _v2_shape(inp, field)
    if isinstance(inp.data, list) and any(isinstance(x, (list, dict)) for x in inp.data):
        raise RequestError(f"{field}.data: expected a flat list of strings (one per element), got a nested list")
    items = list(np.asarray(inp.data, dtype=object).reshape(-1)) if inp.data is not None else []
    if len(items) != math.prod(shape):
        raise RequestError(f"{field}.data: {len(items)} elements do not match shape {shape}")
    return items


def parse_v2(req, size: int, limits: Limits) -> Request:
    """A kserve ``InferRequest`` (read by attribute) → Request."""
    if not req.inputs:
        raise RequestError("inputs: expected at least one input named views, scan, sequence (and optional prompts)")
    params = req.parameters if req.parameters is not None else {}
    if not isinstance(params, dict):
        raise RequestError("parameters: expected an object")
    budget = _Budget(limits)
    out = _options(Request([]), params, "parameters", limits)  # cheap checks first
    for inp in req.inputs:
        field = f"inputs[{str(inp.name)[:30]}]"
        ip = inp.parameters if isinstance(inp.parameters, dict) else {}
        raw = getattr(inp, "raw", False)  # binary-extension BYTES: the files themselves
        if inp.name == "views":
            views = _v2_views(inp, field, size, limits, budget)
            out.jobs += [Job(f"{field}[{b}]", views=v) for b, v in enumerate(views)]
        elif inp.name in ("scan", "sequence"):
            items = _v2_bytes(inp, field)
            if "format" in ip:
                fmt = check_format(ip["format"], f"{field}.parameters.format")
            else:
                fmt = check_format(params.get("format"), "parameters.format")
            if inp.name == "scan":
                budget.add(f"{field}.shape[0]", samples=len(items))
                out.jobs += [
                    Job(f"{field}[{k}]", scan=(_scan_bytes(x, f"{field}.data[{k}]", limits, raw), fmt))
                    for k, x in enumerate(items)
                ]
            else:
                if len(items) < 2:
                    raise RequestError(f"{field}.shape: expected at least 2 frames, got {len(items)}")
                budget.add(f"{field}.shape", samples=1, frames=len(items))
                files = [_scan_bytes(x, f"{field}.data[{k}]", limits, raw) for k, x in enumerate(items)]
                out.jobs.append(Job(field, sequence=(files, fmt)))
        elif inp.name == "prompts":
            items = _v2_bytes(inp, field)
            if out.prompts is not None:
                raise RequestError(f"{field}: prompts given both as an input and as parameters.prompts")
            prompts = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in items]
            out.prompts = parse_prompts(prompts, field, limits)
        else:
            raise RequestError(f"{field}: unknown input (expected views, scan, sequence or prompts)")
    if not out.jobs:
        raise RequestError("inputs: expected an input named views, scan or sequence")
    return out
