"""A real server process on 127.0.0.1 (started by the deploy step's local path), real HTTP requests."""

import base64
import concurrent.futures
import io
import socket

import httpx
import numpy as np
import pytest
from PIL import Image

from facet_lib.serving.deploy import start_local, stop_local


@pytest.fixture(scope="module")
def server(bundle, tmp_path_factory, monkeypatch_module=None):
    state = tmp_path_factory.mktemp("servestate")
    info = start_local(str(bundle), "facet-vlm", state_dir=state)
    yield info["url"]
    stop_local("facet-vlm", state_dir=state)


def _png(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_bound_to_loopback_only(server):
    port = int(server.rsplit(":", 1)[1])
    addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None) if a[0] == socket.AF_INET}
    for addr in addrs - {"127.0.0.1"}:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((addr, port)) != 0, f"server answers on {addr}"


def test_health_metadata_v1_v2(server, views):
    assert httpx.get(f"{server}/v2/health/ready").status_code == 200
    meta = httpx.get(f"{server}/v2/models/facet-vlm").json()
    assert meta["inputs"][0] == {"name": "views", "datatype": "UINT8", "shape": [-1, 3, 64, 64, 3]}
    r = httpx.post(
        f"{server}/v1/models/facet-vlm:predict", json={"instances": [{"views": [_png(v) for v in views[0]]}]}
    )
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1
    r = httpx.post(
        f"{server}/v2/models/facet-vlm/infer",
        json={
            "inputs": [
                {"name": "views", "datatype": "UINT8", "shape": list(views.shape), "data": views.flatten().tolist()}
            ]
        },
    )
    assert r.status_code == 200
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["probabilities"]["shape"] == [2, 6]


def test_bad_inputs_get_4xx_and_the_server_keeps_answering(server, views):
    cases = [
        (b"{not json", 400),
        (b'{"instances": [{"views": ["x"]}]}', 400),
        (b'{"instances": [{"scan": "QUJD", "format": "stl"}]}', 400),
        (b"x" * (65 * 2**20), 413),
    ]
    for body, status in cases:
        r = httpx.post(
            f"{server}/v1/models/facet-vlm:predict",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        assert r.status_code == status, (r.status_code, r.text[:200])
    r = httpx.post(f"{server}/v2/models/facet-vlm/infer", content=b"{bad", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert httpx.get(f"{server}/v2/models/facet-vlm/ready").status_code == 200
    r = httpx.post(
        f"{server}/v1/models/facet-vlm:predict", json={"instances": [{"views": [_png(v) for v in views[0]]}]}
    )
    assert r.status_code == 200


def test_concurrent_callers(server, views):
    body = {"instances": [{"views": [_png(v) for v in views[1]]}]}
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(
            ex.map(
                lambda _: httpx.post(f"{server}/v1/models/facet-vlm:predict", json=body, timeout=60).status_code,
                range(16),
            )
        )
    assert codes == [200] * 16
    labels = {
        httpx.post(f"{server}/v1/models/facet-vlm:predict", json=body).json()["predictions"][0]["label"]
        for _ in range(3)
    }
    assert len(labels) == 1 and np.isfinite(len(labels))
