"""A real server process on 127.0.0.1, real HTTP: endpoints, caller errors, slow clients, start-up."""

import concurrent.futures
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import png_b64

PY = sys.executable


def test_bound_to_loopback_only(server):
    port = int(server["url"].rsplit(":", 1)[1])
    addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None) if a[0] == socket.AF_INET}
    for addr in addrs - {"127.0.0.1"}:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((addr, port)) != 0, f"server answers on {addr}"


def test_health_liveness_metadata_v1_v2(server, views):
    url = server["url"]
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}  # the livenessProbe path
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    meta = httpx.get(f"{url}/v2/models/facet-vlm").json()
    assert meta["inputs"][0] == {"name": "views", "datatype": "UINT8", "shape": [-1, 3, 64, 64, 3]}
    assert {i["name"] for i in meta["inputs"]} == {"views", "scan", "sequence", "prompts"}
    r = httpx.post(
        f"{url}/v1/models/facet-vlm:predict", json={"instances": [{"views": [png_b64(v) for v in views[0]]}]}
    )
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1
    t = {"name": "views", "datatype": "UINT8", "shape": list(views.shape), "data": views.flatten().tolist()}
    r = httpx.post(f"{url}/v2/models/facet-vlm/infer", json={"inputs": [t]})
    assert r.status_code == 200
    assert {o["name"]: o for o in r.json()["outputs"]}["probabilities"]["shape"] == [2, 6]


def test_model_repository_routes_are_off(server):
    url = server["url"]
    for verb in ("unload", "load"):
        r = httpx.post(f"{url}/v2/repository/models/facet-vlm/{verb}")
        assert r.status_code == 404 and "--model_repository" in r.json()["error"]
    assert httpx.get(f"{url}/v2/models/facet-vlm/ready").status_code == 200


def test_caller_errors_are_4xx_with_error_and_one_log_line(server, views):
    url, log = server["url"], server["log"]
    before = log.read_text()
    v1, v2 = f"{url}/v1/models/facet-vlm:predict", f"{url}/v2/models/facet-vlm/infer"
    cases = [
        (v1, b"{not json", 400, "body: not valid JSON"),
        (v1, b'{"instances": [{"views": ["x"]}]}', 400, "instances[0].views"),
        (v1, b'{"instances": [{"scan": "QUJD", "format": "stl"}]}', 400, "format: expected one of"),
        (v2, b"{bad", 400, "body: not valid JSON"),
        (v2, b'{"inputs": [{"name": "views", "shape": [1], "datatype": "UINT8"}]}', 400, "inputs[0].data"),
        (v2, b'{"inputs": "x"}', 400, "inputs"),
        (v1, b"x" * (65 * 2**20), 413, "exceeds the limit"),
    ]
    for endpoint, body, status, text in cases:
        r = httpx.post(endpoint, content=body, headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == status, (r.status_code, r.text[:200])
        assert text in r.json()["error"], r.text[:300]
        assert "detail" not in r.json()
    assert httpx.get(f"{url}/v2/models/facet-vlm/ready").status_code == 200
    time.sleep(0.3)
    new = log.read_text()[len(before) :]
    assert "Traceback" not in new
    assert sum(" -> 4" in line for line in new.splitlines()) == len(cases), new[-2000:]


def test_oversize_json_refused_before_its_body_is_read(server):
    """Issue 18.2: a JSON body over ``max_json_bytes`` gets 413 on its headers alone (the binary limit is
    far larger); one streamed without a length is cut off at the limit."""
    port = int(server["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            b"POST /v2/models/facet-vlm/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 62914560\r\n\r\n{"
        )
        s.settimeout(10)
        t = time.monotonic()
        reply = s.recv(1000)
        while b"JSON inference body" not in reply and (more := s.recv(1000)):  # headers, body: maybe 2 segments
            reply += more
    assert reply.startswith(b"HTTP/1.1 413") and b"JSON inference body" in reply, reply[:300]
    assert time.monotonic() - t < 5

    def chunks():
        yield b'{"instances": ["'
        for _ in range(20):
            yield b"A" * 2**20

    r = httpx.post(f"{server['url']}/v1/models/facet-vlm:predict", content=chunks(), timeout=60)
    assert r.status_code == 413 and "JSON inference body exceeds the limit of 16777216 bytes" in r.json()["error"]
    assert httpx.get(f"{server['url']}/v2/models/facet-vlm/ready").status_code == 200


def test_concurrent_callers_get_the_same_answer(server, views):
    body = {"instances": [{"views": [png_b64(v) for v in views[1]]}]}
    url = f"{server['url']}/v1/models/facet-vlm:predict"
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda _: httpx.post(url, json=body, timeout=60), range(16)))
    assert [r.status_code for r in rs] == [200] * 16
    assert len({r.json()["predictions"][0]["label"] for r in rs}) == 1


def test_slow_headers_are_cut_off(server):
    port = int(server["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        s.settimeout(10)
        t = time.monotonic()
        assert s.recv(100) == b""  # closed by the server
        assert time.monotonic() - t < 8


def test_slow_body_gets_408(server):
    port = int(server["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            b"POST /v1/models/facet-vlm:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"instances": '
        )
        s.settimeout(10)
        reply = s.recv(1000)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]


def test_connection_cap_answers_503_and_recovers(server):
    port = int(server["url"].rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]  # idle, over the cap of 24
    try:
        r = httpx.get(f"{server['url']}/v2/health/live")
        assert r.status_code == 503
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    assert httpx.get(f"{server['url']}/v2/health/live").status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_url_printed_only_after_binding(bundle):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [PY, "-m", "facet_lib.serving", "--model", str(bundle), "--port", str(port), "--render_workers", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in p.stdout:
            if "serving facet-vlm" in line:
                assert line.strip().endswith(f"http://127.0.0.1:{port}")
                assert "(backbone weights: random (untrained))" in line  # the bundle says what it holds
                assert httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5).status_code == 200
                break
        else:
            pytest.fail("no URL printed")
    finally:
        p.terminate()
        p.wait(30)
    with socket.socket() as busy:  # a port in use: no URL, an error, non-zero exit
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cmd[cmd.index("--port") + 1] = str(busy.getsockname()[1])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode != 0 and "serving facet-vlm" not in out.stdout


def test_not_a_bundle_is_one_line(tmp_path):
    (tmp_path / "x.txt").write_text("not a bundle")
    cli = str(Path(PY).parent / "facet-vlm")
    for cmd in ([PY, "-m", "facet_lib.serving"], [cli, "serve"]):
        out = subprocess.run([*cmd, "--model", str(tmp_path)], capture_output=True, text=True, timeout=300)
        assert out.returncode != 0
        assert "no CHECKSUMS.json: not a FACET-VLM bundle" in out.stderr
        assert "Traceback" not in out.stderr


def test_both_front_doors_take_the_same_options():
    import argparse

    from facet_lib.cli import build_parser
    from facet_lib.config.options import add_serve_options

    p = argparse.ArgumentParser()
    add_serve_options(p)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve = sub.choices["serve"]

    def opts(parser):
        return {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}

    assert opts(serve) == opts(p)
    assert all(a.help for a in p._actions)
    a = serve.parse_args(["--model", "m", "--max-batch", "4", "--http_port", "9", "--render_timeout_s", "2.5"])
    from facet_lib.config.options import config_from_args

    cfg = config_from_args(a)
    assert (cfg.model, cfg.max_batch, cfg.port, cfg.limits.render_timeout_s) == ("m", 4, 9, 2.5)


def test_oversized_headers_are_refused(server):
    port = int(server["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + b"X-Junk: " + b"a" * 200_000 + b"\r\n\r\n")
        s.settimeout(10)
        reply = s.recv(100)
    assert reply.startswith(b"HTTP/1.1 400") or reply == b"", reply[:100]
