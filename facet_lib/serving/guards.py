"""ASGI middleware around the KServe routes: a last-resort error handler and admission control.

``LastResort`` (outermost): an exception no handler took never becomes uvicorn's 500 with a traceback.
One raised while the request was being decoded (KServe's V1/V2 decoders, FastAPI/pydantic, our
``inputs.py``) is the caller's mistake: 400 ``{"error": "<field>: ..."}``; a route KServe leaves
unimplemented (``NotImplementedError``) is 501; a client that went away is one log line. Anything else
is 500 with one ERROR line and the traceback (a bug). After a large body, freed heap memory is returned
to the OS (``malloc_trim``), so RSS falls back after heavy requests.

``Admission``: cheapest refusal first. A connection whose inference request was refused (any 4xx but
404/429) is *suspect* for ``Limits.suspect_penalty_s`` (until it gets a 200). At most
``Limits.suspect_slots`` requests of suspect connections are processed at once; beyond that they get
429 with ``Retry-After`` before their body is read, sent after ``Limits.suspect_hold_s`` (a client
looping without pause is slowed to one request per hold; the wait costs a sleeping coroutine). One
client looping hostile requests (each refused after some work) thus holds at most that many
decode/render slots, and valid callers keep the rest. The key is the connection (client address and
port): on HTTP/1.1 it is the unit a client loops on; behind one proxy address (Knative's queue-proxy)
a per-address key would lump every caller together.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from fastapi.responses import JSONResponse

from facet_lib.serving.decoding import clip
from facet_lib.serving.render_pool import malloc_trim

log = logging.getLogger("facet_lib.serving")

# Modules whose frames decode a request: an exception raised there (deepest kserve/facet_lib frame) is a 400.
_DECODERS = (
    "kserve.protocol.infer_type",
    "kserve.protocol.rest.v1_endpoints",
    "kserve.protocol.rest.v2_endpoints",
    "kserve.protocol.dataplane",
    "kserve.utils.utils",
    "kserve.model",
    "facet_lib.serving.inputs",
    "facet_lib.serving.decoding",
)


def _is_inference(path: str) -> bool:
    return path.endswith(":predict") or path.endswith(":explain") or path.endswith("/infer")


def _deepest_module(exc: BaseException) -> str:
    """The innermost kserve/facet_lib/fastapi/pydantic module on the exception's traceback."""
    found, tb = "", exc.__traceback__
    while tb is not None:
        mod = tb.tb_frame.f_globals.get("__name__", "")
        if mod.startswith(("kserve", "facet_lib", "fastapi", "pydantic", "starlette", "json", "orjson")):
            found = mod
        tb = tb.tb_next
    return found


def _field_hint(exc: BaseException) -> str:
    """The field an exception names, if any: a KeyError's key, else a clipped message."""
    if isinstance(exc, KeyError) and exc.args:
        return f"missing field {clip(exc.args[0], 40)}"
    text = str(exc) if len(str(exc)) <= 160 else str(exc)[:160] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def classify(exc: BaseException, binary: bool) -> tuple[int, str]:
    """(status, message) for an exception no handler took."""
    if isinstance(exc, NotImplementedError):
        return 501, f"not implemented by this server: {clip(str(exc), 120) or 'this route'}"
    mod = _deepest_module(exc)
    if mod.startswith(_DECODERS) or mod.startswith(("fastapi", "pydantic", "json", "orjson")):
        where = "binary body" if binary else "body"
        return 400, f"{where}: the request could not be decoded ({_field_hint(exc)})"
    return 500, f"internal error ({type(exc).__name__})"


class LastResort:
    """See the module docstring."""

    def __init__(self, app, trim_after_bytes: int = 4 * 2**20):
        self.app, self.trim_after = app, trim_after_bytes
        self._trimming = False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, seen = False, 0

        async def send_tracked(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        async def receive_counted():
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            return msg

        from starlette.requests import ClientDisconnect

        method, path = scope.get("method", ""), scope.get("path", "")
        try:
            await self.app(scope, receive_counted, send_tracked)
        except (ClientDisconnect, ConnectionError) as e:
            log.warning("%s %s: client disconnected (%s)", method, path, type(e).__name__)
        except Exception as e:  # noqa: BLE001 — the last resort: never uvicorn's bare 500 + traceback
            headers = dict(scope.get("headers") or [])
            status, msg = classify(e, b"inference-header-content-length" in headers)
            if status == 501 and path.endswith(":explain"):
                msg = f"{path.rsplit('/', 1)[-1]}: explanations are not implemented by this server (no explainer)"
            if status == 500:  # a bug: the traceback belongs in the log
                log.error("%s %s -> %d: %s", method, path, status, clip(str(e), 200), exc_info=e)
            else:
                log.warning("%s %s -> %d: %s", method, path, status, msg)
            if not started:
                await JSONResponse({"error": msg}, status)(scope, receive, send)
        finally:
            if seen >= self.trim_after and not self._trimming:
                self._trimming = True
                try:
                    await asyncio.get_running_loop().run_in_executor(None, malloc_trim)
                finally:
                    self._trimming = False


class Admission:
    """See the module docstring."""

    def __init__(self, app, penalty_s: float = 10.0, slots: int = 1, hold_s: float = 1.0):
        self.app, self.penalty_s, self.slots, self.hold_s = app, penalty_s, slots, hold_s
        self.suspects: dict[tuple, float] = {}  # connection → suspect until (monotonic s)
        self.in_flight = 0
        self.refused = 0
        self._last_log = 0.0

    def _suspect(self, key: tuple, now: float) -> bool:
        until = self.suspects.get(key)
        if until is not None and until <= now:
            del self.suspects[key]
            until = None
        if len(self.suspects) > 10_000:  # closed connections' entries expire
            self.suspects = {k: t for k, t in self.suspects.items() if t > now}
        return until is not None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not _is_inference(scope.get("path", "")):
            return await self.app(scope, receive, send)
        key, now = tuple(scope.get("client") or ("?", 0)), time.monotonic()
        suspect = self._suspect(key, now)
        if suspect and self.in_flight >= self.slots:
            self.refused += 1
            if now - self._last_log > 5:  # one line per 5 s, not one per refusal
                log.warning("429: %d requests of suspect connections refused so far (e.g. %s)", self.refused, key[0])
                self._last_log = now
            msg = "this connection's recent requests were refused; retry later with a valid request"
            resp = JSONResponse({"error": msg}, 429, headers={"Retry-After": str(max(1, math.ceil(self.hold_s)))})
            if self.hold_s > 0:  # costs a sleeping coroutine; uvicorn stops reading the unread body meanwhile
                await asyncio.sleep(self.hold_s)
            return await resp(scope, receive, send)
        status = 0

        async def send_tracked(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        if suspect:
            self.in_flight += 1
        try:
            await self.app(scope, receive, send_tracked)
        finally:
            if suspect:
                self.in_flight -= 1
            if status == 200:
                self.suspects.pop(key, None)
            elif 400 <= status < 500 and status not in (404, 429):
                self.suspects[key] = time.monotonic() + self.penalty_s
