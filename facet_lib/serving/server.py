"""Run the KServe model server for a bundle on a chosen host (127.0.0.1 by default), REST only.

KServe 0.21's RESTServer hard-codes host 0.0.0.0, so we let KServe build its FastAPI application
(endpoints, exception handlers, middlewares) and serve that application with our own uvicorn config.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from fastapi.responses import JSONResponse

from facet_lib.serving.inputs import Limits
from facet_lib.serving.predictor import FacetPredictor


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        too_big = JSONResponse({"error": f"request body exceeds the limit of {self.max_bytes} bytes"}, 413)
        if declared is not None and int(declared) > self.max_bytes:
            return await too_big(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return msg

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


def build_app(predictor: FacetPredictor, limits: Limits):
    import kserve.model_server
    from kserve import ModelServer
    from kserve.protocol.rest.server import RESTServer

    ms = ModelServer(http_port=0, enable_grpc=False, workers=1, enable_latency_logging=False)
    ms.register_model(predictor)
    rest = RESTServer("kserve.model_server:app", ms.dataplane, ms.model_repository_extension, 0)
    rest.create_application()
    app = kserve.model_server.app
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    return app


def serve(
    model_uri: str,
    name: str = "facet-vlm",
    host: str = "127.0.0.1",
    port: int = 8080,
    device: str = "auto",
    limits: Limits = Limits(),
    max_batch: int = 16,
    max_wait_ms: float = 5.0,
) -> None:
    predictor = FacetPredictor(name, model_uri, device, limits, max_batch, max_wait_ms)
    predictor.load()
    app = build_app(predictor, limits)
    logging.getLogger("kserve").setLevel(logging.WARNING)
    print(f"serving {name} ({predictor.engine.config['weights']}) on http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=65)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m facet_lib.serving")
    p.add_argument("--model", default="/mnt/models", help="bundle: s3://…/name@production, s3:// prefix, folder")
    p.add_argument("--model_name", "--name", dest="name", default="facet-vlm")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a cluster pod")
    p.add_argument("--http_port", "--port", dest="port", type=int, default=8080)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-body-mb", type=int, default=64)
    p.add_argument("--max-vertices", type=int, default=400_000)
    p.add_argument("--max-frames", type=int, default=120)
    a = p.parse_args(argv)
    limits = Limits(max_body_bytes=a.max_body_mb * 2**20, max_vertices=a.max_vertices, max_frames=a.max_frames)
    serve(a.model, a.name, a.host, a.port, a.device, limits, a.max_batch, a.max_wait_ms)
