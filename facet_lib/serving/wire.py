"""HTTP bodies of the inference routes ↔ protocol objects, off the event loop (no kserve, no torch).

- ``Content-Encoding`` ``gzip`` / ``deflate`` (what tritonclient's ``request_compression_algorithm``
  sends) is decoded with the output bounded by the body limit (a gzip bomb stops at the limit: 413);
  any other encoding is refused with 415 naming ``Content-Encoding``.
- JSON bodies (V1, and V2 without the binary extension) have their own, far smaller limit
  (``Limits.max_json_bytes``) and an element count (``Limits.max_json_elements``, counted on the raw
  bytes before parsing); they are parsed with orjson.
- The V2 binary tensor extension (``Inference-Header-Content-Length``; KServe/Triton "binary tensor data"
  spec): the JSON header, then each input's ``binary_data_size`` bytes in order — little-endian,
  row-major; a BYTES element is a 4-byte little-endian length and the raw bytes (a scan is its file's
  bytes, no base64). Every size, length and count is checked against the body: a mistake is a 400 naming
  the field (``inputs[scan].parameters.binary_data_size`` …).
- Responses: only the requested outputs (``outputs[i].name``), each as binary data when its
  ``parameters.binary_data`` (else the request's ``binary_data_output``) is true.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import orjson

from facet_lib.config import Limits
from facet_lib.serving.decoding import RequestError, clip

# The protocol's tensor datatypes → little-endian numpy types (BYTES handled apart; FP16 as float16).
DTYPES = {
    "BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib window bits: gzip wrapper, zlib wrapper (RFC 9110)


@dataclass
class Tensor:
    """One V2 input as the decoders read it. ``data``: the JSON list, a numpy array (binary numeric),
    or a list of ``bytes`` (binary BYTES, ``raw`` True: the elements are the files themselves)."""

    name: str
    datatype: str
    shape: list
    parameters: dict = field(default_factory=dict)
    data: object = None
    raw: bool = False


@dataclass
class V2Body:
    """A V2 inference request body: inputs, request parameters, requested outputs (``None``: all)."""

    inputs: list[Tensor]
    parameters: dict
    id: str = ""
    outputs: list[tuple[str, dict]] | None = None


# -- body bytes ----------------------------------------------------------------------------------------
def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``Content-Encoding`` undone with the output bounded by ``limit`` bytes (413 beyond, 415 unknown)."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):  # applied in order → undone in reverse
        if coding == "identity":
            continue
        if coding not in ENCODINGS:
            raise RequestError(f"Content-Encoding: {clip(coding, 30)} is not supported (gzip, deflate, identity)", 415)
        body = _inflate(body, ENCODINGS[coding], coding, limit)
    return body


def _inflate(data: bytes, wbits: int, coding: str, limit: int) -> bytes:
    out, rest = [], data
    try:
        while rest:  # gzip allows several members back to back
            d = zlib.decompressobj(wbits)
            out.append(d.decompress(rest, limit + 1 - sum(map(len, out))))
            if sum(map(len, out)) > limit or d.unconsumed_tail:
                raise RequestError(
                    f"request body decompressed (Content-Encoding: {coding}) exceeds the limit of {limit} bytes", 413
                )
            if not d.eof:
                raise RequestError(f"body: truncated {coding} data (Content-Encoding: {coding})")
            rest = d.unused_data if wbits == 31 else b""
    except zlib.error:
        raise RequestError(f"body: not valid {coding} data (Content-Encoding: {coding})") from None
    return b"".join(out)


def load_json(text: bytes | memoryview, limits: Limits, where: str = "body") -> object:
    """JSON bytes → Python objects, refusing more than ``max_json_elements`` array elements first."""
    commas = bytes(text).count(b",") if isinstance(text, memoryview) else text.count(b",")
    if commas >= limits.max_json_elements:  # every element but the last of an array is followed by a comma
        raise RequestError(
            f"{where}: more than {limits.max_json_elements} JSON elements; send large tensors with the V2 binary "
            "tensor extension (Inference-Header-Content-Length)",
            413,
        )
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"{where}: not valid JSON ({clip(str(e), 80)})") from None


# -- V2 -----------------------------------------------------------------------------------------------
def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _input(obj: object, i: int) -> Tensor:
    if not isinstance(obj, dict):
        raise RequestError(f"inputs[{i}]: expected an object with name, shape, datatype and data")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(f"inputs[{i}].name: required (a string)")
    f = f"inputs[{name[:30]}]"
    datatype, shape, params = obj.get("datatype"), obj.get("shape"), obj.get("parameters", {})
    if not isinstance(datatype, str):
        raise RequestError(f"{f}.datatype: required (a string such as UINT8 or BYTES)")
    if not isinstance(shape, list):
        raise RequestError(f"{f}.shape: required (a list of integers)")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(f"{f}.parameters: expected an object")
    return Tensor(name, datatype, shape, params, obj.get("data"))


def parse_v2_header(head: object, binary: bool) -> V2Body:
    """The JSON object of a V2 request (the whole body, or the binary extension's header) → V2Body."""
    where = "binary body: JSON header" if binary else "body"
    if not isinstance(head, dict):
        raise RequestError(f"{where}: expected a JSON object with an 'inputs' list, got {type(head).__name__}")
    if "inputs" not in head:
        raise RequestError("inputs: required (a list of input tensors)")
    if not isinstance(head["inputs"], list):
        raise RequestError(f"inputs: expected a list of input tensors, got {type(head['inputs']).__name__}")
    params = head.get("parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise RequestError("parameters: expected an object")
    rid = head.get("id", "")
    if not isinstance(rid, str):
        raise RequestError("id: expected a string")
    outputs = None
    if head.get("outputs") is not None:
        if not isinstance(head["outputs"], list):
            raise RequestError("outputs: expected a list of requested outputs")
        outputs = []
        for k, o in enumerate(head["outputs"]):
            if not isinstance(o, dict) or not isinstance(o.get("name"), str):
                raise RequestError(f"outputs[{k}].name: required (a string)")
            op = {} if o.get("parameters") is None else o["parameters"]
            if not isinstance(op, dict):
                raise RequestError(f"outputs[{k}].parameters: expected an object")
            if "binary_data" in op and not isinstance(op["binary_data"], bool):
                raise RequestError(f"outputs[{k}].parameters.binary_data: expected true or false")
            outputs.append((o["name"], op))
    return V2Body([_input(x, i) for i, x in enumerate(head["inputs"])], params, rid, outputs)


def split_bytes(buf: memoryview, count: int, f: str) -> list[bytes]:
    """A binary BYTES tensor: ``count`` elements, each a 4-byte little-endian length and its bytes."""
    out, off, n = [], 0, len(buf)
    for k in range(count):
        if n - off < 4:
            got = "ends" if off == n else f"has {n - off} bytes left"
            raise RequestError(f"{f}: BYTES data {got} where element {k} of {count} needs its 4-byte length")
        (length,) = struct.unpack_from("<I", buf, off)
        off += 4
        if length > n - off:
            raise RequestError(f"{f}: BYTES element {k} declares {length} bytes, only {n - off} follow")
        out.append(bytes(buf[off : off + length]))
        off += length
    if off != n:
        raise RequestError(f"{f}: {n - off} bytes after the last of {count} BYTES elements")
    return out


def _binary_tensor(t: Tensor, buf: memoryview) -> None:
    f = f"inputs[{t.name[:30]}].parameters.binary_data_size"
    if not all(_is_int(d) and d >= 0 for d in t.shape):
        raise RequestError(f"inputs[{t.name[:30]}].shape: expected non-negative integers, got {clip(t.shape)}")
    count = math.prod(t.shape)
    if t.datatype == "BYTES":
        t.data, t.raw = split_bytes(buf, count, f), True
        return
    if t.datatype not in DTYPES:
        raise RequestError(f"inputs[{t.name[:30]}].datatype: unknown {clip(t.datatype, 20)}")
    dt = np.dtype(DTYPES[t.datatype])
    if len(buf) != count * dt.itemsize:
        raise RequestError(
            f"{f}: {len(buf)} bytes do not hold shape {t.shape} of {t.datatype} ({count * dt.itemsize} bytes)"
        )
    t.data = np.frombuffer(buf, dt)


def parse_v2_binary(body: bytes, header_len: int, limits: Limits) -> V2Body:
    """A binary-extension body: the JSON header (``header_len`` bytes, at most ``max_json_bytes`` like any
    JSON body), then the inputs' binary data."""
    if header_len > limits.max_json_bytes:
        raise RequestError(
            f"Inference-Header-Content-Length: a JSON header of {header_len} bytes exceeds the JSON limit of "
            f"{limits.max_json_bytes}; send large tensors and scans as binary data after the header",
            413,
        )
    if header_len > len(body):
        raise RequestError(
            f"Inference-Header-Content-Length: {header_len} bytes, but the body has {len(body)} (after decoding)"
        )
    view = memoryview(body)
    req = parse_v2_header(load_json(view[:header_len], limits, "binary body: JSON header"), binary=True)
    off = header_len
    for t in req.inputs:
        size = t.parameters.get("binary_data_size")
        f = f"inputs[{t.name[:30]}].parameters.binary_data_size"
        if size is None:
            continue
        if not _is_int(size) or size < 0:
            raise RequestError(f"{f}: expected a whole number of bytes, got {clip(size, 20)}")
        if t.data is not None:
            raise RequestError(f"inputs[{t.name[:30]}]: both 'data' and binary data given")
        if size > len(body) - off:
            raise RequestError(f"{f}: {size} bytes, but only {len(body) - off} follow in the body")
        _binary_tensor(t, view[off : off + size])
        off += size
    if off != len(body):
        raise RequestError(f"binary body: {len(body) - off} bytes after the inputs' binary data (binary_data_size)")
    return _with_data(req, "data (or parameters.binary_data_size)")


def parse_v2_json(body: bytes, limits: Limits) -> V2Body:
    return _with_data(parse_v2_header(load_json(body, limits), binary=False), "data")


def _with_data(req: V2Body, what: str) -> V2Body:
    for i, t in enumerate(req.inputs):
        if t.data is None:
            raise RequestError(f"inputs[{i}].data: required ({what})")
    return req


# -- responses ----------------------------------------------------------------------------------------
@dataclass
class Output:
    """One V2 output: ``data`` a list of str (BYTES) or a numpy array."""

    name: str
    shape: list[int]
    datatype: str
    data: object


def _as_binary(o: Output) -> bytes:
    if o.datatype == "BYTES":
        parts = []
        for s in o.data:
            b = s.encode() if isinstance(s, str) else bytes(s)
            parts += [struct.pack("<I", len(b)), b]
        return b"".join(parts)
    return np.ascontiguousarray(o.data, DTYPES[o.datatype]).tobytes()


def check_requested(outputs: list[tuple[str, dict]] | None, known: tuple[str, ...]) -> None:
    """Refuse unknown requested output names before any work is done."""
    for k, (name, _) in enumerate(outputs or []):
        if name not in known:
            raise RequestError(f"outputs[{k}].name: unknown output {clip(name, 30)} (one of {', '.join(known)})")


def encode_v2(outputs: list[Output], req: V2Body, binary_default: bool, head: dict) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: the requested outputs (all when none were named), binary or JSON."""
    by_name = {o.name: o for o in outputs}
    wanted = req.outputs if req.outputs is not None else [(o.name, {}) for o in outputs]
    entries, tail = [], []
    for k, (name, params) in enumerate(wanted):
        o = by_name.get(name)
        if o is None:
            raise RequestError(f"outputs[{k}].name: {clip(name, 30)} is not produced by this request")
        entry = {"name": o.name, "datatype": o.datatype, "shape": o.shape}
        if params.get("binary_data", binary_default):
            raw = _as_binary(o)
            entry["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            entry["data"] = o.data if isinstance(o.data, list) else np.asarray(o.data).reshape(-1)
        entries.append(entry)
    js = orjson.dumps({**head, "outputs": entries}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not tail:
        return js, {"content-type": "application/json"}
    return b"".join([js, *tail]), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(js)),
    }
