"""The V1/V2 inference routes and the V2 server metadata, registered ahead of KServe's own.

KServe 0.21's routes parse and validate a body on the event loop (FastAPI's JSON and pydantic models of
every element: a 60 MB JSON tensor held every other request for seconds) and read binary-extension BYTES
as UTF-8 text. Here a body is read (JSON bodies refused over ``Limits.max_json_bytes`` as they arrive),
then decompressed, parsed and validated in a worker thread (``wire.py`` → ``inputs.py``); the predictor
renders and infers (``FacetPredictor.run``); the response holds the requested outputs only.
``GET /v2`` lists the protocol extensions that are on: ``binary_tensor_data`` always, KServe's
``model_repository_extension`` only when its routes are enabled.
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import metadata

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from facet_lib.config import ServeConfig
from facet_lib.serving.decoding import RequestError
from facet_lib.serving.inputs import parse_v1, parse_v2
from facet_lib.serving.predictor import OUTPUTS, FacetPredictor
from facet_lib.serving.wire import (
    V2Body,
    check_requested,
    decode_content,
    encode_v2,
    load_json,
    parse_v2_binary,
    parse_v2_json,
)

_HEADER_LEN = "inference-header-content-length"
# The one model version this server serves (a server loads one bundle; Triton numbers versions from 1).
# ``/v2/models/<m>/versions/1/infer`` is the same route as ``/v2/models/<m>/infer``; another version is 404.
MODEL_VERSION = "1"


async def read_body(request: Request, config: ServeConfig, v2: bool) -> tuple[bytes, int]:
    """The body as sent, with the limit that applies to it decoded (V2 binary extension, or JSON)."""
    lim = config.limits
    binary = v2 and _HEADER_LEN in request.headers
    limit = lim.max_body_bytes if binary else lim.max_json_bytes
    what = "request body" if binary else "JSON inference body"
    hint = "" if binary else "; send large tensors and scans with the V2 binary tensor extension"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(f"{what} of {int(declared)} bytes exceeds the limit of {limit}{hint}", 413)
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise RequestError(f"{what} exceeds the limit of {limit} bytes{hint}", 413)
        chunks.append(chunk)
    return b"".join(chunks), limit


def decode_v2(body: bytes, headers, limit: int, size: int, config: ServeConfig) -> tuple[V2Body, object]:
    """(runs in a thread) body bytes → the V2 body and the decoded ``inputs.Request``."""
    body = decode_content(body, headers.get("content-encoding"), limit)
    header_len = headers.get(_HEADER_LEN)
    if header_len is None:
        v2 = parse_v2_json(body, config.limits)
    else:
        if not header_len.strip().isdigit():
            raise RequestError("Inference-Header-Content-Length: expected the JSON header's size in bytes")
        v2 = parse_v2_binary(body, int(header_len), config.limits)
    check_requested(v2.outputs, OUTPUTS)
    return v2, parse_v2(v2, size, config.limits)


def decode_v1(body: bytes, headers, limit: int, size: int, config: ServeConfig):
    """(runs in a thread) body bytes → the decoded ``inputs.Request``."""
    body = decode_content(body, headers.get("content-encoding"), limit)
    return parse_v1(load_json(body, config.limits), size, config.limits)


def _server_timing(t: dict) -> dict[str, str]:
    """``Server-Timing`` (W3C): where this request's time went in the server, in ms — reading the body,
    decoding it (thread), rendering (worker processes), inference, and the rest (response, event loop)."""
    total = time.perf_counter() - t["start"]
    parts = {"body": t["body"] - t["start"], "decode": t["decode"] - t["body"], "render": t.get("render", 0.0)}
    parts["infer"] = t.get("infer", 0.0)
    parts["total"] = total
    return {"server-timing": ", ".join(f"{k};dur={v * 1000:.2f}" for k, v in parts.items())}


def add_protocol_routes(app: FastAPI, predictor: FacetPredictor, config: ServeConfig) -> None:
    """``POST /v1/models/<m>:predict``, ``POST /v2/models/<m>/infer`` (also as ``…/versions/1/infer``)
    and ``GET /v2`` on ``app``."""

    def check_model(name: str) -> int:
        if name != predictor.name:
            raise RequestError(f"model {name[:60]!r} not found (this server serves {predictor.name!r})", 404)
        if not predictor.ready:
            raise RequestError(f"model {predictor.name!r} is not ready", 503)
        return predictor.engine.render.size

    async def v1_predict(model_name: str, request: Request) -> Response:
        size, t = check_model(model_name), {"start": time.perf_counter()}
        body, limit = await read_body(request, config, v2=False)
        t["body"] = time.perf_counter()
        loop = asyncio.get_running_loop()
        req = await loop.run_in_executor(None, decode_v1, body, request.headers, limit, size, config)
        del body
        t["decode"] = time.perf_counter()
        results = await predictor.run(req, t)
        out = orjson.dumps({"predictions": results, "labels": predictor.engine.labels})
        return Response(out, media_type="application/json", headers=_server_timing(t))

    async def v2_infer_version(model_name: str, model_version: str, request: Request) -> Response:
        if model_version != MODEL_VERSION:
            check_model(model_name)  # an unknown model is named first
            raise RequestError(
                f"model {model_name[:60]!r} version {model_version[:20]!r} not found (this server serves version "
                f"{MODEL_VERSION})",
                404,
            )
        return await v2_infer(model_name, request)

    async def v2_infer(model_name: str, request: Request) -> Response:
        size, t = check_model(model_name), {"start": time.perf_counter()}
        body, limit = await read_body(request, config, v2=True)
        t["body"] = time.perf_counter()
        loop = asyncio.get_running_loop()
        v2, req = await loop.run_in_executor(None, decode_v2, body, request.headers, limit, size, config)
        del body
        t["decode"] = time.perf_counter()
        results = await predictor.run(req, t)
        labels = json.dumps(predictor.engine.labels)
        head = {"id": v2.id, "model_name": predictor.name, "parameters": {"labels": labels}}
        content, headers = encode_v2(predictor.v2_outputs(results), v2, req.binary_output, head)
        return Response(content, headers={**headers, **_server_timing(t)})

    extensions = ["binary_tensor_data"] + (["model_repository_extension"] if config.model_repository else [])
    server_meta = {"name": "kserve", "version": metadata.version("kserve"), "extensions": extensions}

    async def v2_metadata() -> Response:
        return Response(orjson.dumps(server_meta), media_type="application/json")

    app.add_api_route("/v1/models/{model_name}:predict", v1_predict, methods=["POST"])
    app.add_api_route("/v2/models/{model_name}/infer", v2_infer, methods=["POST"])
    app.add_api_route("/v2/models/{model_name}/versions/{model_version}/infer", v2_infer_version, methods=["POST"])
    app.add_api_route("/v2", v2_metadata, methods=["GET"])
