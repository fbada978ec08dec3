"""pipelines/s3_server.py: only the authenticated S3 gateway serves data (issues 13.5, 18.1), and a data
folder keeps its credentials and ports across restarts, stored 0600 (issue 13.10).

Every admin route SeaweedFS registers (tests/s3_probe.py, taken from its source) is sent unauthenticated
to every TCP port the server's processes listen on, and the answers are compared with the README's list
of what stays open."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from facet_lib import storage
from pipelines import s3_server
from tests.s3_probe import answered, listening_ports, probe

# Isolated (the default where user namespaces exist): the S3 gateway's own health probes, empty 200s.
OPEN_ISOLATED = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/status")}
# Without a private network SeaweedFS registers these unguarded and no setting closes them (README).
OPEN_GUARDED = {
    "s3": OPEN_ISOLATED,
    "master": {
        ("GET", p) for p in ("/", "/ui/index.html", "/cluster/status", "/cluster/healthz", "/healthz", "/readyz")
    },
    "volume": {("GET", "/status"), ("GET", "/healthz"), ("GET", "/readyz")},
    "filer": set(),
    "admin": {("GET", "/health"), ("GET", "/metrics")},
}
REPO = Path(__file__).resolve().parents[1]
NO_NAMESPACES = (
    "this machine does not allow unprivileged user namespaces (e.g. inside a container, Ubuntu 24.04 AppArmor)"
)


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


@pytest.fixture(params=[True, False], ids=["isolated", "guarded"])
def server(request, tmp_path, monkeypatch):
    if request.param and not s3_server.isolation_available():
        pytest.skip(NO_NAMESPACES)
    d = tmp_path / "s3"
    info = s3_server.start(d, isolate=request.param)
    assert info["isolated"] is request.param
    for k, v in info["env"].items():
        monkeypatch.setenv(k, v)
    yield d, info
    s3_server.stop(d)


def _pids(info: dict) -> list[int]:
    return [info["pid"]] + ([info["proxy_pid"]] if info.get("proxy_pid") else [])


def test_every_admin_route_refused_without_credentials(server):
    d, info = server
    storage.ensure_bucket("facet-sec")
    storage.put_bytes("s3://facet-sec/models/v0001/weights.safetensors", b"genuine")
    ports = set().union(*(listening_ports(p) for p in _pids(info)))
    by_port = {v: k for k, v in info["ports"].items()}
    by_port.update({v + 10000: f"{k} gRPC" for k, v in info["ports"].items()})
    assert ports <= set(by_port), f"listening on ports outside the documented layout: {ports - set(by_port)}"
    opened = {p: answered(probe(p, "facet-sec")) for p in sorted(ports)}
    for p, routes in opened.items():
        name = by_port[p]
        want = (OPEN_ISOLATED if name == "s3" else set()) if info["isolated"] else OPEN_GUARDED.get(name, set())
        assert routes == want, f"{name} port {p}: {sorted(routes)}"
    if info["isolated"]:  # outside the private network only the proxy's S3 port exists
        assert listening_ports(info["proxy_pid"]) == {info["ports"]["s3"]}
    # the routes sent included /col/delete and /filer POST/DELETE: the data is untouched
    assert (
        storage.client().get_object(Bucket="facet-sec", Key="models/v0001/weights.safetensors")["Body"].read()
        == b"genuine"
    )
    anonymous = boto3.client(
        "s3",
        endpoint_url=info["env"]["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}),
    )
    for call in (
        lambda: anonymous.list_buckets(),
        lambda: anonymous.get_object(Bucket="facet-sec", Key="models/v0001/weights.safetensors"),
        lambda: anonymous.put_object(Bucket="facet-sec", Key="evil", Body=b"evil"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # every listener is on loopback only: the same ports on this machine's other address refuse connections
    other = _non_loopback_ip()
    if other:
        for p in ports:
            with pytest.raises(OSError):
                socket.create_connection((other, p), timeout=2).close()
    for name in ("config.json", "s3.json", "security.toml", "server.json", "tls/weed.key"):
        assert (d / name).stat().st_mode & 0o777 == 0o600, name
    assert d.stat().st_mode & 0o777 == 0o700


def test_grpc_needs_the_servers_certificate(server):
    """The gRPC ports need the server's own client certificate (mutual TLS): `weed shell` cannot delete
    (isolated: it cannot even reach them)."""
    d, info = server
    storage.ensure_bucket("facet-sec")
    storage.put_bytes("s3://facet-sec/k", b"genuine")
    ports = info["ports"]
    shell = [str(s3_server._weed()), "shell", f"-master=127.0.0.1:{ports['master']}.{ports['master'] + 10000}"]
    shell.append(f"-filer=127.0.0.1:{ports['filer']}.{ports['filer'] + 10000}")
    try:
        subprocess.run(
            shell, input="fs.rm /buckets/facet-sec/k\nexit\n", capture_output=True, text=True, timeout=8, cwd=d.parent
        )
    except subprocess.TimeoutExpired:  # it keeps retrying the TLS handshake / the connection
        pass
    assert storage.client().get_object(Bucket="facet-sec", Key="k")["Body"].read() == b"genuine"


def test_restart_keeps_credentials_and_port(server):
    d, info = server
    storage.ensure_bucket("facet-keep")
    storage.put_bytes("s3://facet-keep/k", b"kept")
    client = storage.client()  # a running client, created before the restart
    s3_server.stop(d)
    again = s3_server.start(d, isolate=info["isolated"])
    assert again["env"] == info["env"] and again["ports"] == info["ports"]
    assert client.get_object(Bucket="facet-keep", Key="k")["Body"].read() == b"kept"
    wrong = {**info["env"], "AWS_SECRET_ACCESS_KEY": "x" * 40}
    assert wrong != again["env"]
    with pytest.raises(ClientError):
        storage._client(tuple(wrong.get(k) for k in storage._ENV)).head_bucket(Bucket="facet-keep")


def test_demo_serve_again_line_gives_the_server_its_credentials(tmp_path):
    """The demo's last line is pasted into a fresh shell: its ``eval`` must leave the S3 variables set for
    ``facet-vlm serve`` (``start`` prints ``export`` lines; without the ``eval`` serve had no credentials)."""
    from pipelines.demo import serve_again

    line = serve_again(tmp_path)
    start, serve = line.split(" && ")
    assert serve.endswith("serve --model s3://facet-models/registry/facet-vlm-demo@production")
    code = 'import os; print(os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_ACCESS_KEY_ID"])'
    show = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no venv, no AWS_* of ours
    try:
        out = subprocess.run(
            ["bash", "-c", f"{start} && {show}"], env=env, cwd=REPO, text=True, capture_output=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        endpoint, key = out.stdout.split()
        info = s3_server.start(tmp_path / "s3")  # already running: the same server, the same credentials
        assert (endpoint, key) == (info["env"]["AWS_ENDPOINT_URL"], info["env"]["AWS_ACCESS_KEY_ID"])
    finally:
        s3_server.stop(tmp_path / "s3")
