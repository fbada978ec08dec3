"""A model server on this machine: ``python -m facet_lib.serving`` started detached on ServeConfig's
default host (127.0.0.1), with its pid/url file in ``serve_dir()``; stopped by name."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from facet_lib.config.serve import READINESS_PATH, ServeConfig
from facet_lib.serving.manifest import DeployError

HOST = ServeConfig().host  # 127.0.0.1: a local server is not reachable from other machines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def serve_dir() -> Path:
    """Where local servers keep their pid/url files (FACET_SERVE_DIR, default runs/serve)."""
    return Path(os.environ.get("FACET_SERVE_DIR", "runs/serve")).resolve()


def start_local(
    model_uri: str,
    name: str,
    port: int = 0,
    state_dir: str | Path | None = None,
    timeout_s: float = 180,
    extra_args: list[str] | None = None,
) -> dict:
    """Start ``python -m facet_lib.serving`` on 127.0.0.1 (detached) and wait for readiness."""
    import httpx

    port = port or _free_port()
    state = Path(state_dir) if state_dir else serve_dir()
    state.mkdir(parents=True, exist_ok=True)
    log = open(state / f"{name}.log", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facet_lib.serving",
            "--model",
            model_uri,
            "--model_name",
            name,
            "--host",
            HOST,
            "--http_port",
            str(port),
            *(extra_args or []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )
    url = f"http://{HOST}:{port}"
    end = time.time() + timeout_s
    while time.time() < end:
        if proc.poll() is not None:
            raise DeployError(f"local server exited with {proc.returncode}; see {state / (name + '.log')}")
        try:
            if httpx.get(url + READINESS_PATH.format(name=name), timeout=2).status_code == 200:
                info = {"pid": proc.pid, "url": url, "name": name, "model_uri": model_uri}
                (state / f"{name}.json").write_text(json.dumps(info))
                return info
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise DeployError(f"local server not ready after {timeout_s} s; see {state / (name + '.log')}")


def stop_local(name: str, state_dir: str | Path | None = None) -> bool:
    import signal

    f = (Path(state_dir) if state_dir else serve_dir()) / f"{name}.json"
    if not f.exists():
        return False
    try:
        os.killpg(json.loads(f.read_text())["pid"], signal.SIGTERM)
    except OSError:
        pass
    f.unlink()
    return True
