"""Request decoding for the predictor, V1 and V2 side by side: a request → ``Job`` list + options.

Every caller mistake raises ``RequestError`` (``decoding.py``, with the decoders of single values) naming
the field (in the protocol's own terms: V1 ``instances[i].…``, V2 ``inputs[name].…``), what was expected and
the limit. All inputs of one request count against one budget (``Limits.max_instances`` samples,
``Limits.max_frames`` frames).

The kinds of sample a request carries (views, a scan, a sequence) are one table, ``REQUEST_KINDS``: per
kind its V1 and V2 decoders, its V2 datatype and shape (the model metadata, ``v2_inputs``) and, for files
rendered server-side, how they become views (run by ``render_pool.render_job``). A new kind is one entry.
Nothing here imports kserve or torch (V2 requests are read through their attributes).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facet_lib.config import INFERENCE_MODES, Limits, RenderConfig
from facet_lib.io import SCAN_SUFFIXES
from facet_lib.serving.decoding import (
    Budget,
    RequestError,
    b64decode,
    bytes_elements,
    check_views_array,
    clip,
    decode_image,
    parse_prompts,
    scan_bytes,
    tensor_shape,
)

FORMATS = tuple(s[1:] for s in SCAN_SUFFIXES)


def _either(names: list[str]) -> str:
    """``a, b or c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass
class Job:
    """One sample to classify, of the kind ``REQUEST_KINDS[kind]``: its views, or the files that produce
    them (rendered server-side) — each file's bytes (in a render worker, the spooled file) — and their format."""

    field: str
    kind: str
    views: np.ndarray | None = None
    files: list[bytes | Path] = dataclasses.field(default_factory=list)
    fmt: str = ""

    @property
    def needs_render(self) -> bool:
        return REQUEST_KINDS[self.kind].needs_render


@dataclass
class Request:
    """A decoded request: the samples and the options that apply to all of them."""

    jobs: list[Job]
    prompts: list[str] | None = None
    mode: str = "class_conditional"
    attention: bool = False
    binary_output: bool = False
    return_views: bool = False


def check_format(fmt: object, field: str) -> str:
    if not isinstance(fmt, str):
        rendered = _either([k for k, v in REQUEST_KINDS.items() if v.needs_render])
        raise RequestError(f"{field}: required with a {rendered} (one of {', '.join(FORMATS)})")
    f = fmt.lower().lstrip(".")
    if f not in FORMATS:
        raise RequestError(f"{field}: expected one of {', '.join(FORMATS)}, got {clip(fmt, 20)}")
    return f


def _options(req: Request, params: object, where: str, limits: Limits) -> Request:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(f"{where}: expected an object")
    if "prompts" in params:
        req.prompts = parse_prompts(params["prompts"], f"{where}.prompts", limits)
    mode = params.get("mode", "class_conditional")
    if mode not in INFERENCE_MODES:
        raise RequestError(f"{where}.mode: expected one of {', '.join(INFERENCE_MODES)}, got {clip(mode, 30)}")
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


# -- the request kinds -------------------------------------------------------------------------------
@dataclass
class _Ctx:
    """What a kind's decoders read besides the value: the model's view side, the limits, the request's
    budget and (V2) the request's parameters."""

    size: int
    limits: Limits
    budget: Budget
    params: dict = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class RequestKind:
    """One kind of sample. ``v1_decoder(instance, field, ctx)`` → a Job (the instance holds the kind's key);
    ``v2_decoder(input, field, ctx)`` → Jobs (the input is named after the kind; its datatype, checked first,
    is ``v2_datatype``). ``v2_shape``: the model metadata's shape (``"size"``: the model's view side).
    ``render(job, render_config, read)`` → the (3, H, W, 3) views of a job's files, ``read(file, field)``
    giving a scan's Mesh; None: the decoder gives the views."""

    name: str
    v1_decoder: Callable[[dict, str, _Ctx], Job]
    v2_decoder: Callable[[object, str, _Ctx], list[Job]]
    v2_datatype: str
    v2_shape: tuple[int | str, ...]
    render: Callable[[Job, RenderConfig, Callable], np.ndarray] | None = None

    @property
    def needs_render(self) -> bool:
        return self.render is not None

    def v2_metadata(self, size: int) -> dict:
        return {
            "name": self.name,
            "datatype": self.v2_datatype,
            "shape": [size if d == "size" else d for d in self.v2_shape],
        }


def _v1_views(inst: dict, field: str, ctx: _Ctx) -> Job:
    v = inst["views"]
    if not isinstance(v, list) or len(v) != 3:
        got = len(v) if isinstance(v, list) else type(v).__name__
        raise RequestError(f"{field}.views: expected 3 base64 images (front, left, right), got {got}")
    imgs = [
        decode_image(b64decode(x, f"{field}.views[{k}]"), f"{field}.views[{k}]", ctx.size, ctx.limits, ctx.budget)
        for k, x in enumerate(v)
    ]
    return Job(field, "views", views=np.stack(imgs))


def _v1_scan(inst: dict, field: str, ctx: _Ctx) -> Job:
    fmt = check_format(inst.get("format"), f"{field}.format")
    return Job(field, "scan", files=[scan_bytes(inst["scan"], f"{field}.scan", ctx.limits)], fmt=fmt)


def _v1_sequence(inst: dict, field: str, ctx: _Ctx) -> Job:
    fmt = check_format(inst.get("format"), f"{field}.format")
    seq = inst["sequence"]
    if not isinstance(seq, list) or len(seq) < 2:
        raise RequestError(f"{field}.sequence: expected a list of at least 2 base64 frame files")
    ctx.budget.add(f"{field}.sequence", frames=len(seq))
    files = [scan_bytes(x, f"{field}.sequence[{k}]", ctx.limits) for k, x in enumerate(seq)]
    return Job(field, "sequence", files=files, fmt=fmt)


def _v2_views(inp, field: str, ctx: _Ctx) -> list[Job]:
    shape, limits = tensor_shape(inp, field), ctx.limits
    if len(shape) != 5 or shape[1] != 3 or shape[-1] not in (1, 3):
        raise RequestError(f"{field}.shape: expected [B, 3, H, W, 3] (front, left, right views), got {shape}")
    ctx.budget.add(f"{field}.shape[0]", samples=shape[0])
    if max(shape[2:4]) > limits.max_image_side:
        raise RequestError(f"{field}.shape: views of {shape[2]}x{shape[3]} exceed {limits.max_image_side} px", 413)
    ctx.budget.add(f"{field}.shape", pixels=math.prod(shape[:4]))
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
    views = check_views_array(arr.astype(np.uint8).reshape(shape), field, ctx.size)
    return [Job(f"{field}[{b}]", "views", views=v) for b, v in enumerate(views)]


def _v2_files(inp, field: str, ctx: _Ctx) -> tuple[list, str, bool]:
    """A BYTES input of files: its elements, their format (the input's or the request's parameters.format)
    and whether they are the files themselves (binary extension) rather than base64 text."""
    items = bytes_elements(inp, field)
    ip = inp.parameters if isinstance(inp.parameters, dict) else {}
    if "format" in ip:
        fmt = check_format(ip["format"], f"{field}.parameters.format")
    else:
        fmt = check_format(ctx.params.get("format"), "parameters.format")
    return items, fmt, getattr(inp, "raw", False)


def _v2_scan(inp, field: str, ctx: _Ctx) -> list[Job]:
    items, fmt, raw = _v2_files(inp, field, ctx)
    ctx.budget.add(f"{field}.shape[0]", samples=len(items))
    return [
        Job(f"{field}[{k}]", "scan", files=[scan_bytes(x, f"{field}.data[{k}]", ctx.limits, raw)], fmt=fmt)
        for k, x in enumerate(items)
    ]


def _v2_sequence(inp, field: str, ctx: _Ctx) -> list[Job]:
    items, fmt, raw = _v2_files(inp, field, ctx)
    if len(items) < 2:
        raise RequestError(f"{field}.shape: expected at least 2 frames, got {len(items)}")
    ctx.budget.add(f"{field}.shape", samples=1, frames=len(items))
    files = [scan_bytes(x, f"{field}.data[{k}]", ctx.limits, raw) for k, x in enumerate(items)]
    return [Job(field, "sequence", files=files, fmt=fmt)]


def _render_scan(job: Job, cfg: RenderConfig, read: Callable) -> np.ndarray:
    from facet_lib.render import render_views

    return render_views(read(job.files[0], job.field), cfg)


def _render_sequence(job: Job, cfg: RenderConfig, read: Callable) -> np.ndarray:
    from facet_lib.rankpool import sample_uniform
    from facet_lib.render.dataset import render_sequence

    picked = sample_uniform(len(job.files), cfg.frames)
    # lazily: one sampled frame in memory at a time, each parsed once
    return render_sequence((read(job.files[i], f"{job.field}[{i}]") for i in picked), cfg)


REQUEST_KINDS: dict[str, RequestKind] = {
    k.name: k
    for k in (
        RequestKind("views", _v1_views, _v2_views, "UINT8", (-1, 3, "size", "size", 3)),
        RequestKind("scan", _v1_scan, _v2_scan, "BYTES", (-1,), _render_scan),
        RequestKind("sequence", _v1_sequence, _v2_sequence, "BYTES", (-1,), _render_sequence),
    )
}
PROMPTS_INPUT = {"name": "prompts", "datatype": "BYTES", "shape": [-1]}  # V2: the prompts, not a sample


def v2_inputs(size: int) -> list[dict]:
    """The inputs of the V2 model metadata: one per request kind, and the prompts."""
    prompts = {**PROMPTS_INPUT, "shape": list(PROMPTS_INPUT["shape"])}
    return [k.v2_metadata(size) for k in REQUEST_KINDS.values()] + [prompts]


def _check_datatype(inp, field: str, datatype: str) -> None:
    if inp.datatype != datatype:
        raise RequestError(f"{field}.datatype: expected {datatype}, got {clip(inp.datatype, 20)}")


# -- V1 ----------------------------------------------------------------------------------------------
def parse_v1_instance(inst: object, i: int, size: int, limits: Limits, budget: Budget) -> Job:
    field, names = f"instances[{i}]", list(REQUEST_KINDS)
    if not isinstance(inst, dict):
        raise RequestError(f"{field}: expected an object with {_either([repr(k) for k in names])}")
    kinds = [k for k in names if k in inst]
    if len(kinds) != 1:
        raise RequestError(f"{field}: expected exactly one of {', '.join(map(repr, names))}, got {kinds or 'none'}")
    return REQUEST_KINDS[kinds[0]].v1_decoder(inst, field, _Ctx(size, limits, budget))


def parse_v1(payload: object, size: int, limits: Limits) -> Request:
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise RequestError("body: expected a JSON object with an 'instances' list")
    inst = payload["instances"]
    if not inst:
        raise RequestError("instances: expected at least one instance")
    budget = Budget(limits)
    budget.add("instances", samples=len(inst))
    req = _options(Request([]), payload.get("parameters"), "parameters", limits)  # cheap checks first
    req.jobs = [parse_v1_instance(x, i, size, limits, budget) for i, x in enumerate(inst)]
    return req


# -- V2 ----------------------------------------------------------------------------------------------
def parse_v2(req, size: int, limits: Limits) -> Request:
    """A kserve ``InferRequest`` (read by attribute) → Request."""
    names = list(REQUEST_KINDS)
    if not req.inputs:
        raise RequestError(f"inputs: expected at least one input named {', '.join(names)} (and optional prompts)")
    params = req.parameters if req.parameters is not None else {}
    if not isinstance(params, dict):
        raise RequestError("parameters: expected an object")
    ctx = _Ctx(size, limits, Budget(limits), params)
    out = _options(Request([]), params, "parameters", limits)  # cheap checks first
    for inp in req.inputs:
        field = f"inputs[{str(inp.name)[:30]}]"
        kind = REQUEST_KINDS.get(inp.name) if isinstance(inp.name, str) else None
        if kind is not None:
            _check_datatype(inp, field, kind.v2_datatype)
            out.jobs += kind.v2_decoder(inp, field, ctx)
        elif inp.name == PROMPTS_INPUT["name"]:
            _check_datatype(inp, field, PROMPTS_INPUT["datatype"])
            items = bytes_elements(inp, field)
            if out.prompts is not None:
                raise RequestError(f"{field}: prompts given both as an input and as parameters.prompts")
            prompts = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in items]
            out.prompts = parse_prompts(prompts, field, limits)
        else:
            raise RequestError(f"{field}: unknown input (expected {', '.join(names)} or prompts)")
    if not out.jobs:
        raise RequestError(f"inputs: expected an input named {_either(names)}")
    return out
