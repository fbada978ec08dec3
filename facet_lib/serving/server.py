"""The model server: KServe's V1/V2 endpoints in our own FastAPI app, served by our own uvicorn config.

- Host: KServe 0.21's RESTServer hard-codes 0.0.0.0; we bind ``ServeConfig.host`` (127.0.0.1 by default).
- Clients that send no Content-Type (tritonclient's JSON ``infer()``, ``curl -d`` without ``-H``): an
  inference body is read as JSON unless it carries ``Inference-Header-Content-Length`` (the binary
  extension). Done in an ASGI middleware, not by patching KServe.
- Every caller error is a 4xx with ``{"error": "..."}`` and one log line (FastAPI's 422 for malformed V2
  JSON becomes 400 in V2 field names); the model-repository routes (load/unload) are off unless
  ``model_repository`` is set; ``/v2/health/live`` is the liveness path.
- Slow clients: request headers within ``header_timeout_s``, the body within ``body_timeout_s`` (408),
  at most ``max_connections`` connections (503 beyond), idle keep-alive closed after ``keep_alive_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException  # the router's own 404/405 too (FastAPI's is a subclass)

from facet_lib.config import ServeConfig
from facet_lib.config.options import add_serve_options, config_from_args
from facet_lib.errors import FacetError
from facet_lib.serving.decoding import RequestError, clip
from facet_lib.serving.guards import Admission, LastResort, classify
from facet_lib.serving.predictor import FacetPredictor
from facet_lib.serving.protocol import add_protocol_routes

log = logging.getLogger("facet_lib.serving")
_JSON = b"application/json"
_NOT_JSON_BY_DEFAULT = (b"application/octet-stream",)  # anything else unset/form/text is read as JSON


def _is_inference(path: str) -> bool:
    return path.endswith(":predict") or path.endswith(":explain") or path.endswith("/infer")


class RequestGuard:
    """ASGI middleware: JSON as the default body type of inference requests, 413 over ``max_bytes``
    (declared or streamed), 408 when the body is not complete within ``body_timeout_s``, and 404 for
    KServe's model-repository routes (load/unload) unless ``repository``: unauthenticated, they would
    let any caller take the model offline."""

    def __init__(self, app, max_bytes: int, body_timeout_s: float, repository: bool = False):
        self.app, self.max_bytes, self.body_timeout_s, self.repository = app, max_bytes, body_timeout_s, repository

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self.repository and "/repository/" in scope["path"]:
            msg = "model-repository routes are disabled (start the server with --model_repository to enable them)"
            return await _error(404, msg)(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        binary = b"inference-header-content-length" in headers
        if scope["method"] == "POST" and _is_inference(scope["path"]) and not binary:
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype not in (_JSON, *_NOT_JSON_BY_DEFAULT) and not ctype.endswith(b"+json"):
                kept = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = {**scope, "headers": [*kept, (b"content-type", _JSON)]}
        declared = headers.get(b"content-length")
        json_len = headers.get(b"inference-header-content-length")
        encoded = b"content-encoding" in headers  # then the header length counts decoded bytes (checked later)
        if json_len is not None and not (
            json_len.isdigit()
            and (encoded or declared is None or not declared.isdigit() or int(json_len) <= int(declared))
        ):
            msg = "Inference-Header-Content-Length: expected the JSON header's size in bytes, at most the body's"
            return await _error(400, msg)(scope, receive, send)
        if declared is not None:
            if not declared.isdigit():
                return await _error(400, "Content-Length: expected a number of bytes")(scope, receive, send)
            if int(declared) > self.max_bytes:
                msg = f"request body of {int(declared)} bytes exceeds the limit of {self.max_bytes}"
                log.warning("%s %s -> 413: %s", scope["method"], scope["path"], msg)
                return await _error(413, msg)(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline, seen, done = loop.time() + self.body_timeout_s, 0, False

        async def guarded():
            nonlocal seen, done
            if done:  # after the body: waiting for a disconnect is not a body read
                return await receive()
            try:
                msg = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except (asyncio.TimeoutError, TimeoutError):
                done = True
                raise HTTPException(408, f"request body not received within {self.body_timeout_s:g} s") from None
            if msg["type"] != "http.request" or not msg.get("more_body"):
                done = True
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                done = True
                raise HTTPException(413, f"request body exceeds the limit of {self.max_bytes} bytes")
            return msg

        await self.app(scope, guarded, send)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers)


def _v2_loc(loc: tuple) -> str:
    """FastAPI's error location ('body', 'inputs', 0, 'shape') → the protocol's 'inputs[0].shape'."""
    out = ""
    for part in loc:
        if part in ("body", "InferenceRequest", "bytes") and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


async def _caller_error(request, exc) -> JSONResponse:
    """One handler for every 4xx: ``{"error": ...}`` and one log line, no traceback."""
    extra = None
    if isinstance(exc, RequestValidationError):
        errs = [e for e in exc.errors() if "bytes" not in e.get("loc", ())] or exc.errors()  # the JSON branch
        first = errs[0] if errs else {}
        if first.get("type") == "json_invalid":
            msg = "body: not valid JSON"
        else:
            msg = f"{_v2_loc(tuple(first.get('loc', ())))}: {first.get('msg', 'invalid')}"
            if "input" in first:
                msg += f" (got {clip(first['input'], 60)})"
            if len(errs) > 1:
                msg += f" (+{len(errs) - 1} more)"
        status = 400
    elif isinstance(exc, RequestError):
        status, msg = exc.status, str(exc)
    elif isinstance(exc, HTTPException):
        status, msg, extra = exc.status_code, str(exc.detail), exc.headers  # 405 keeps its Allow header
        if status in (404, 405) and msg in ("Not Found", "Method Not Allowed"):  # the router's own
            msg = f"{msg}: {request.method} {clip(request.url.path, 80)}"
    else:  # kserve's InvalidInput / ModelNotFound / ModelNotReady / ServerNotReady
        status = {"InvalidInput": 400, "ModelNotFound": 404}.get(type(exc).__name__, 503)
        msg = str(getattr(exc, "reason", None) or exc)
    msg = msg if len(msg) <= 500 else msg[:500] + "…"
    log.warning("%s %s -> %d: %s", request.method, request.url.path, status, msg)
    return _error(status, msg, extra)


async def _decode_error(request, exc) -> JSONResponse:
    """KServe's binary-extension decoder raises ValueError/InferenceError on a body that does not match
    its JSON header (sizes, shapes, non-UTF-8 BYTES): the caller's mistake; so is any raised while a
    request is decoded (``guards.classify``). Elsewhere: a bug (500)."""
    if request.headers.get("inference-header-content-length") is not None:
        return await _caller_error(request, RequestError(f"binary body: {clip(str(exc), 200)}"))
    status, msg = classify(exc, binary=False)
    if status < 500:
        return await _caller_error(request, RequestError(msg, status))
    log.error("%s %s -> 500: %s", request.method, request.url.path, clip(str(exc), 200), exc_info=exc)
    return _error(500, msg)


def build_app(predictor: FacetPredictor, config: ServeConfig = ServeConfig()) -> FastAPI:
    """KServe's V1/V2 endpoints (and ``/``, ``/metrics``) for ``predictor`` in a fresh FastAPI app."""
    from kserve import ModelServer
    from kserve.errors import InferenceError, InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady
    from kserve.protocol.rest.server import metrics_handler
    from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    ms = ModelServer(http_port=0, enable_grpc=False, workers=1, enable_latency_logging=False)
    ms.register_model(predictor)
    app = FastAPI(title="FACET-VLM", docs_url=None, redoc_url=None, openapi_url=None)  # no docs, no schema
    app.add_api_route("/", ms.dataplane.live)
    app.add_api_route("/metrics", metrics_handler, methods=["GET"])
    add_protocol_routes(app, predictor, config)  # ahead of KServe's: decoded off the event loop (protocol.py)
    register_v1_endpoints(app, ms.dataplane, ms.model_repository_extension)
    register_v2_endpoints(app, ms.dataplane, ms.model_repository_extension)
    if config.ui:  # the page for people at /ui/ (static, CSP; calls only the V1 route)
        from facet_lib.serving.ui import mount_ui

        mount_ui(app, predictor)
    for exc in (RequestValidationError, RequestError, HTTPException, InvalidInput, ModelNotFound, ModelNotReady):
        app.add_exception_handler(exc, _caller_error)
    app.add_exception_handler(ServerNotReady, _caller_error)
    for exc in (ValueError, InferenceError):
        app.add_exception_handler(exc, _decode_error)
    app.add_middleware(
        RequestGuard,
        max_bytes=config.limits.max_body_bytes,
        body_timeout_s=config.body_timeout_s,
        repository=config.model_repository,
    )
    lim = config.limits  # the last resort inside admission, so that admission sees its 400s
    app.add_middleware(LastResort, trim_after_bytes=lim.trim_after_bytes)
    app.add_middleware(Admission, penalty_s=lim.suspect_penalty_s, slots=lim.suspect_slots, hold_s=lim.suspect_hold_s)
    return app


class HeaderDeadline:
    """Mixin for uvicorn's HTTP protocols: a connection with no request in progress ``header_timeout`` s
    after it opened (or after its last response) is closed — slow or never-finished request headers
    cannot hold a connection (idle keep-alive ones are closed sooner, by ``keep_alive_s``)."""

    header_timeout = ServeConfig().header_timeout_s
    max_header_bytes = 64 * 1024
    _gen = 0
    _header_bytes = 0

    def on_message_begin(self) -> None:  # httptools callbacks (h11 limits header size itself)
        self._header_bytes = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > self.max_header_bytes:
            if not self.transport.is_closing():
                self.send_400_response(f"request headers exceed {self.max_header_bytes} bytes")
            return
        super().on_header(name, value)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        self._gen += 1
        self.loop.call_later(self.header_timeout, self._headers_due, self._gen)

    def _headers_due(self, gen: int) -> None:
        busy = self.cycle is not None and not self.cycle.response_complete
        if gen == self._gen and not busy and not self.transport.is_closing():
            self.transport.close()


def _protocol_class(header_timeout: float) -> type:
    """httptools (C parser, much faster on multi-MB bodies) where installed, else h11; with the deadline."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    return type(f"Guarded{base.__name__}", (HeaderDeadline, base), {"header_timeout": header_timeout})


def uvicorn_config(app, config: ServeConfig) -> uvicorn.Config:
    protocol = _protocol_class(config.header_timeout_s)
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=protocol,
        # asyncio runs ready I/O before expired timers; uvloop (libuv) runs timers first, so after a stall
        # on a starved CPU a keep-alive timer could close a connection whose next request already arrived
        loop="asyncio",
        log_level="warning",
        access_log=False,
        limit_concurrency=config.max_connections,
        timeout_keep_alive=max(1, round(config.keep_alive_s)),
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers, as HeaderDeadline.max_header_bytes
        timeout_graceful_shutdown=10,
    )


class _Server(uvicorn.Server):
    """uvicorn's server that prints its URL once the socket is bound and listening."""

    def __init__(self, config: uvicorn.Config, banner: str):
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            print(self.banner.format(port=port), flush=True)


def serve(config: ServeConfig) -> None:
    """Load (fetch, verify, warm), bind, then print the URL; serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kserve").setLevel(logging.ERROR)
    if config.torch_threads > 0:  # the render workers take the other cores; no oversubscription
        import torch

        torch.set_num_threads(config.torch_threads)
    predictor = FacetPredictor(config)
    predictor.load()
    weights = predictor.engine.config.get("weights")
    banner = f"serving {config.name} (backbone weights: {weights}) on http://{config.host}:{{port}}"
    try:
        _Server(uvicorn_config(build_app(predictor, config), config), banner).run()
    finally:
        predictor.pool.close()


def run_from_args(a: argparse.Namespace) -> None:
    try:
        serve(config_from_args(a))
    except FacetError as e:  # a refused bundle, unreachable storage, bad configuration: one line, exit 2
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m facet_lib.serving",
        description="Serve a FACET-VLM bundle over KServe's V1/V2 REST protocols.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_serve_options(p)
    run_from_args(p.parse_args(argv))
