"""The last-resort handler and admission control (facet_lib/serving/guards.py), in-process."""

import asyncio
import logging

import httpx
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from facet_lib.serving.guards import Admission, LastResort
from tests.security.corpus import b64
from tests.security.crafted import wrl_files


def _raiser(module: str, exc: BaseException):
    """A function whose frame belongs to ``module`` (as if that module raised ``exc``)."""
    g = {"__name__": module, "exc": exc}
    exec("def boom():\n    raise exc\n", g)
    return g["boom"]


def _app(fn):
    async def app(scope, receive, send):
        fn()
        await JSONResponse({"ok": True})(scope, receive, send)

    return app


def _post(app, path="/v2/models/m/infer", headers=None):
    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post(path, content=b"{}", headers=headers or {})

    return asyncio.run(run())


def test_a_decoder_exception_is_a_400_naming_the_field():
    r = _post(LastResort(_app(_raiser("kserve.protocol.infer_type", KeyError("binary_data_size")))))
    assert r.status_code == 400 and "missing field 'binary_data_size'" in r.json()["error"], r.text
    r = _post(LastResort(_app(_raiser("facet_lib.serving.inputs", TypeError("unhashable type: 'list'")))))
    assert r.status_code == 400 and "TypeError: unhashable" in r.json()["error"], r.text
    r = _post(
        LastResort(_app(_raiser("kserve.protocol.infer_type", ValueError("x")))),
        headers={"Inference-Header-Content-Length": "2"},
    )
    assert r.status_code == 400 and r.json()["error"].startswith("binary body:"), r.text


def test_unimplemented_is_501_and_a_bug_elsewhere_stays_500(caplog):
    r = _post(LastResort(_app(_raiser("kserve.model", NotImplementedError("no explainer")))), "/v1/models/m:explain")
    assert r.status_code == 501 and "not implemented" in r.json()["error"], r.text
    with caplog.at_level(logging.ERROR, "facet_lib.serving"):
        r = _post(LastResort(_app(_raiser("facet_lib.serving.engine", RuntimeError("bug")))))
    assert r.status_code == 500 and r.json() == {"error": "internal error (RuntimeError)"}
    assert any(rec.exc_info for rec in caplog.records)  # a bug keeps its traceback in the log


def test_a_client_disconnect_is_one_warning_line(caplog):
    def gone():
        raise ClientDisconnect()

    sent = []

    async def run():
        async def receive():
            return {"type": "http.disconnect"}

        async def send(msg):
            sent.append(msg)

        scope = {"type": "http", "method": "POST", "path": "/v2/models/m/infer", "headers": []}
        await LastResort(_app(gone))(scope, receive, send)

    with caplog.at_level(logging.WARNING, "facet_lib.serving"):
        asyncio.run(run())
    assert not sent  # nobody to answer
    lines = [r for r in caplog.records if r.name == "facet_lib.serving"]
    assert len(lines) == 1 and "client disconnected" in lines[0].getMessage() and not lines[0].exc_info


def test_suspect_connection_gets_429_before_its_body_is_read(inproc):
    """A connection that was refused may have one request in flight; more get 429 (Retry-After) at once,
    and a valid request from it afterwards is served (and clears it)."""
    bomb = {
        "inputs": [
            {
                "name": "scan",
                "shape": [1],
                "datatype": "BYTES",
                "data": [b64(wrl_files()["def-use-cycle"])],
                "parameters": {"format": "wrl"},
            }
        ]
    }
    v2 = "/v2/models/facet-vlm/infer"
    assert inproc.request("POST", v2, json=bomb).status_code == 400  # the connection is suspect now
    rs = inproc.gather(*[("POST", v2, {"json": bomb})] * 4)
    codes = sorted(r.status_code for r in rs)
    assert codes.count(429) >= 2 and codes[0] == 400, codes
    r429 = next(r for r in rs if r.status_code == 429)
    assert r429.headers["retry-after"] == "1" and "retry later" in r429.json()["error"]
    ok = {"inputs": [{"name": "views", "shape": [1, 3, 8, 8, 3], "datatype": "UINT8", "data": [0] * 576}]}
    assert inproc.request("POST", v2, json=ok).status_code == 200
    rs = inproc.gather(*[("POST", v2, {"json": ok})] * 4)  # cleared: concurrent valid requests all served
    assert [r.status_code for r in rs] == [200] * 4


def test_admission_is_per_connection():
    adm = Admission(_app(lambda: None), penalty_s=10, slots=0)
    adm.suspects[("10.0.0.1", 5)] = float("inf")

    async def run(client):
        async def receive():
            return {"type": "http.request", "body": b"{}"}

        out = []

        async def send(msg):
            out.append(msg)

        scope = {"type": "http", "method": "POST", "path": "/v2/models/m/infer", "headers": [], "client": client}
        await adm(scope, receive, send)
        return out[0]["status"]

    assert asyncio.run(run(("10.0.0.1", 5))) == 429
    assert asyncio.run(run(("10.0.0.1", 6))) == 200  # another connection of the same address
