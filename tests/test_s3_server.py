"""scripts/s3_server.py: only the authenticated S3 gateway serves data (issue 13.5), and a data folder
keeps its credentials and ports across restarts, stored 0600 (issue 13.10)."""

from __future__ import annotations

import socket
import subprocess

import httpx
import pytest
import s3_server  # scripts/ is on sys.path (tests/conftest.py)
from botocore.exceptions import ClientError

from facet_lib import storage


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


@pytest.fixture()
def server(tmp_path, monkeypatch):
    d = tmp_path / "s3"
    info = s3_server.start(d)
    for k, v in info["env"].items():
        monkeypatch.setenv(k, v)
    yield d, info
    s3_server.stop(d)


def test_only_the_s3_gateway_serves_data(server):
    d, info = server
    storage.ensure_bucket("facet-sec")
    storage.put_bytes("s3://facet-sec/models/v0001/weights.safetensors", b"genuine")
    key = "/buckets/facet-sec/models/v0001/weights.safetensors"
    ports = info["ports"]
    filer = f"http://127.0.0.1:{ports['filer']}/buckets/facet-sec/models/v0001/weights.safetensors"
    assert httpx.get(filer).status_code == 401
    assert httpx.put(filer, content=b"evil").status_code == 401
    assert httpx.post(filer, files={"file": ("w", b"evil")}).status_code == 401
    assert httpx.delete(filer).status_code == 401
    assert httpx.get(f"http://127.0.0.1:{ports['filer']}/buckets/facet-sec/").status_code == 401
    assert httpx.get(f"http://127.0.0.1:{ports['volume']}/1,01").status_code == 401
    assert (
        storage.client().get_object(Bucket="facet-sec", Key="models/v0001/weights.safetensors")["Body"].read()
        == b"genuine"
    )
    # the gRPC ports need the server's own client certificate (mutual TLS): `weed shell` cannot delete
    shell = [str(s3_server._weed()), "shell", f"-master=127.0.0.1:{ports['master']}.{ports['master'] + 10000}"]
    shell.append(f"-filer=127.0.0.1:{ports['filer']}.{ports['filer'] + 10000}")
    try:
        subprocess.run(shell, input=f"fs.rm {key}\nexit\n", capture_output=True, text=True, timeout=8, cwd=d.parent)
    except subprocess.TimeoutExpired:  # it keeps retrying the TLS handshake
        pass
    assert (
        storage.client().get_object(Bucket="facet-sec", Key=key[len("/buckets/facet-sec/") :])["Body"].read()
        == b"genuine"
    )
    # every listener is on loopback only: the same ports on this machine's other address refuse connections
    other = _non_loopback_ip()
    if other:
        for p in ports.values():
            with pytest.raises(OSError):
                socket.create_connection((other, p), timeout=2).close()
    for name in ("config.json", "s3.json", "security.toml", "server.json", "tls/weed.key"):
        assert (d / name).stat().st_mode & 0o777 == 0o600, name
    assert d.stat().st_mode & 0o777 == 0o700


def test_restart_keeps_credentials_and_port(server):
    d, info = server
    storage.ensure_bucket("facet-keep")
    storage.put_bytes("s3://facet-keep/k", b"kept")
    client = storage.client()  # a running client, created before the restart
    s3_server.stop(d)
    again = s3_server.start(d)
    assert again["env"] == info["env"] and again["ports"] == info["ports"]
    assert client.get_object(Bucket="facet-keep", Key="k")["Body"].read() == b"kept"
    wrong = {**info["env"], "AWS_SECRET_ACCESS_KEY": "x" * 40}
    assert wrong != again["env"]
    with pytest.raises(ClientError):
        storage._client(tuple(wrong.get(k) for k in storage._ENV)).head_bucket(Bucket="facet-keep")
