"""The page for people: ``/ui/`` on the model server (same origin as V1/V2, so it is reachable through the
InferenceService URL with nothing else to deploy). Plain HTML/JS/CSS shipped as package data, no build step,
no request to any other host; the page calls only ``GET /ui/model.json`` (below) and the server's V1
``:predict`` route with ``return_views``/``return_attention``.

The files are read once at import and served from memory (GET/HEAD only), with a strict
Content-Security-Policy: scripts from this origin only, no inline script or style, no eval; response data
reaches the page only as text nodes, numbers and ``data:`` images. ``ServeConfig.ui`` (``--no-ui``) turns
the page off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response

from facet_lib import storage
from facet_lib.bundle_format import BundleError
from facet_lib.bundle_format import bundle_digest as _bundle_digest
from facet_lib.io import SCAN_SUFFIXES

log = logging.getLogger("facet_lib.serving")

PREFIX = "/ui"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
# the whole page: a fixed set of files, read once (no path from a request ever reaches the file system)
ASSETS = {
    name: (files(__package__).joinpath("static", name).read_bytes(), _TYPES[name[name.rfind(".") :]])
    for name in ("index.html", "app.js", "app.css")
}
LIMIT_FIELDS = (
    "max_json_bytes",  # the page posts base64 JSON to V1: this is its request limit
    "max_body_bytes",
    "max_scan_bytes",
    "max_frames",
    "max_vertices",
    "max_image_side",
    "max_prompts",
    "max_prompt_chars",
)


# How long model.json reuses a successful registry lookup: the page notices an alias moved within this
# many seconds without a registry request per page load. A failed lookup is never reused (retried next time).
REGISTRY_TTL_S = 30.0


def bundle_digest(bundle_dir) -> str | None:
    """The loaded bundle's digest (``bundle_format.bundle_digest``: the rule the registry records)."""
    try:
        return _bundle_digest(bundle_dir)
    except (BundleError, OSError, TypeError):
        return None


def registered(model_uri: str, digest: str | None) -> dict | None:
    """For a registry reference: the version it names now, and whether that is the loaded bundle."""
    if not storage.is_s3(model_uri):
        return None
    from facet_lib import registry

    try:
        info = registry.lookup(model_uri)
    except Exception as e:  # a registry outage must not break the page: say so
        return {"ref": model_uri, "error": f"{type(e).__name__}: {e}"[:200]}
    keys = ("name", "version", "alias", "uri")
    return {"ref": model_uri, **{k: info.get(k) for k in keys}, "is_loaded": info.get("digest") == digest}


class RegistryView:
    """``registered()`` for one reference, a success reused for ``ttl`` seconds, an error never reused."""

    def __init__(self, model_uri: str, digest: str | None, ttl: float | None = None, clock=time.monotonic):
        self.uri, self.digest, self.ttl, self.clock = model_uri, digest, ttl, clock
        self._value: dict | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> dict | None:
        with self._lock:  # one lookup at a time; page loads meanwhile get its answer
            ttl = REGISTRY_TTL_S if self.ttl is None else self.ttl
            if self._value is not None and self.clock() - self._at < ttl:
                return self._value
            value = registered(self.uri, self.digest)
            if value is not None and "error" not in value:
                self._value, self._at = value, self.clock()
            return value


def model_info(predictor, lookup: RegistryView | None = None) -> dict:
    """What the page shows about the served model (everything comes from the loaded bundle and config);
    ``registered`` from ``lookup`` (default: a fresh lookup of the registry reference, if one)."""
    eng, cfg = predictor.engine, predictor.config
    bundle = eng.config
    digest = bundle_digest(predictor.bundle_dir)
    lookup = lookup or RegistryView(cfg.model, digest, ttl=0)
    m = eng.model.cfg
    return {
        "name": cfg.name,
        "v1_predict": f"v1/models/{cfg.name}:predict",
        "weights": bundle.get("weights"),
        "digest": digest,
        "registered": lookup.get(),
        "labels": eng.labels,
        "views": [["front", "left", "right"][v] for v in m.views],
        "mtgf": bool(m.head.mtgf),
        "clip_model": m.clip_model,
        "render": eng.render.to_dict(),
        "fold": bundle.get("fold"),
        "cv": bundle.get("metrics"),  # the CV summary the register step put in the bundle, if any
        "formats": [s[1:] for s in SCAN_SUFFIXES],
        "limits": {k: getattr(predictor.limits, k) for k in LIMIT_FIELDS},
        "device": eng.device,
    }


def mount_ui(app: FastAPI, predictor) -> None:
    """Add ``/ui/`` (the page, its script and style) and ``/ui/model.json`` to the server's app."""
    cache: dict = {}

    def asset(name: str):
        body, ctype = ASSETS[name]

        async def get() -> Response:
            return Response(body, media_type=ctype, headers=HEADERS)

        return get

    async def to_page() -> Response:
        return RedirectResponse("ui/", 307, headers=HEADERS)  # relative: works behind a path prefix too

    def static_info() -> dict:  # the loaded bundle's identity never changes: computed once
        info = model_info(predictor, lookup=RegistryView("", None))  # "": no registry reference, no lookup
        cache["lookup"] = RegistryView(predictor.config.model, info["digest"])
        return info

    def current() -> dict:  # (a thread) the cached identity, the registry's answer refreshed after the TTL
        if "info" not in cache:
            cache["info"] = static_info()
        return {**cache["info"], "registered": cache["lookup"].get()}

    async def info() -> Response:
        if predictor.engine is None:
            return JSONResponse({"error": "model not loaded yet"}, 503, headers=HEADERS)
        return JSONResponse(await asyncio.get_running_loop().run_in_executor(None, current), headers=HEADERS)

    get = ["GET", "HEAD"]
    app.add_api_route(PREFIX, to_page, methods=get, include_in_schema=False)
    app.add_api_route(f"{PREFIX}/", asset("index.html"), methods=get, include_in_schema=False)
    for name in ("app.js", "app.css"):
        app.add_api_route(f"{PREFIX}/{name}", asset(name), methods=get, include_in_schema=False)
    app.add_api_route(f"{PREFIX}/model.json", info, methods=get, include_in_schema=False)
