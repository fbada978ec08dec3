"""The corpus over real sockets against a real server process on 127.0.0.1 (the in-process run in
test_corpus.py covers every case; here: the cases that need a socket, one case of each group through
uvicorn's own parser, and the server's log stays one short line per refusal, without tracebacks)."""

import socket
import time

import httpx
import pytest

from tests.security.corpus import GROUPS, cases

SOCKET_CASES = [c for c in cases() if c.socket]
# the first case of each group, and the issue-18 regressions
REGRESSIONS = (
    "explain-v1",
    "v2-versioned-infer-other-version",
    "v2-versioned-infer-bad-datatype",
    "v2-versioned-ready",
    "binary-header-over-json-limit",
    "openapi-json",
)
SAMPLE = [g()[0] for g in GROUPS] + [c for c in cases() if c.id in REGRESSIONS]


def raw_request(port: int, case, timeout: float = 30) -> int:
    """Send the case's head and (possibly short) body over a raw socket; the reply's status (0: none)."""
    head = f"{case.method} {case.path.format(m='facet-vlm')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in case.headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head.encode() + case.content())
        s.settimeout(timeout)
        reply = s.recv(200)
    return int(reply.split()[1]) if reply.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("case", SOCKET_CASES, ids=[c.id for c in SOCKET_CASES])
def test_socket_case(server, case):
    port = int(server["url"].rsplit(":", 1)[1])
    status = raw_request(port, case)
    assert case.allows(status), (case.id, status)


@pytest.mark.parametrize("case", SAMPLE, ids=[c.id for c in SAMPLE])
def test_sample_over_http(server, case):
    r = httpx.request(
        case.method,
        server["url"] + case.path.format(m="facet-vlm"),
        content=case.content(),
        headers=case.headers,
        timeout=120,
    )
    assert case.allows(r.status_code), (case.id, r.status_code, r.text[:300])
    assert r.status_code < 500 or r.status_code == 501


def test_client_disconnect_mid_body_is_one_log_line(server):
    port = int(server["url"].rsplit(":", 1)[1])
    head = "POST /v1/models/facet-vlm:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall((head + "Content-Length: 5000\r\n\r\n" + '{"instances": [').encode())
        time.sleep(0.3)
    deadline = time.time() + 10
    while time.time() < deadline and "client disconnected" not in server["log"].read_text():
        time.sleep(0.2)
    log = server["log"].read_text()
    assert "client disconnected" in log and "Traceback" not in log, log[-3000:]


def test_server_still_serves_after_the_corpus(server, views):
    t = {"name": "views", "datatype": "UINT8", "shape": list(views.shape), "data": views.flatten().tolist()}
    assert httpx.post(server["url"] + "/v2/models/facet-vlm/infer", json={"inputs": [t]}, timeout=60).status_code == 200
    assert httpx.get(server["url"] + "/v2/models/facet-vlm/ready").status_code == 200
    log = server["log"].read_text()
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
    assert max(len(line) for line in log.splitlines()) < 2000  # 4xx logged in one short line
