"""Deploy a registered model version: a KServe InferenceService on a cluster, or a local server.

The InferenceService is built here once (``inference_service``); ``manifests/`` holds the same shape
for kustomize users, and the tests validate both against KServe's CRD schema.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from facet_lib.errors import FacetError

SERVE_IMAGE = os.environ.get(
    "FACET_SERVE_IMAGE",
    f"{os.environ.get('FACET_IMAGE_PREFIX', 'ghcr.io/facet-vlm-ops')}/facet-serve:"
    f"{os.environ.get('FACET_IMAGE_TAG', '0.1.0')}",
)


class DeployError(FacetError):
    """Deployment failed or did not become ready in time."""


def inference_service(
    name: str,
    namespace: str,
    storage_uri: str,
    image: str = SERVE_IMAGE,
    service_account: str = "facet-s3",
    gpu: int = 1,
    canary_percent: int = 0,
    min_replicas: int = 1,
    max_replicas: int = 2,
) -> dict:
    """A KServe v1beta1 InferenceService running the custom FACET predictor on a GPU node."""
    resources = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "16Gi"}}
    if gpu:
        resources["requests"]["nvidia.com/gpu"] = str(gpu)
        resources["limits"]["nvidia.com/gpu"] = str(gpu)
    predictor: dict = {
        "serviceAccountName": service_account,
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "containers": [
            {
                "name": "kserve-container",
                "image": image,
                "args": [
                    "--model",
                    storage_uri,
                    "--model_name",
                    name,
                    "--host",
                    "0.0.0.0",
                    "--http_port",
                    "8080",
                    "--device",
                    "cuda" if gpu else "cpu",
                ],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": resources,
                "readinessProbe": {
                    "httpGet": {"path": f"/v2/models/{name}/ready", "port": 8080},
                    "initialDelaySeconds": 10,
                    "periodSeconds": 10,
                },
            }
        ],
    }
    if gpu:
        predictor["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
        predictor["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if canary_percent:
        predictor["canaryTrafficPercent"] = int(canary_percent)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
            "labels": {"app.kubernetes.io/part-of": "facet-vlm"},
        },
        "spec": {"predictor": predictor},
    }


def deploy_kserve(isvc: dict, timeout_s: int = 900, client=None) -> str:
    """Create or update the InferenceService and wait until it is ready; returns its URL."""
    from kserve import KServeClient

    client = client or KServeClient()
    name, ns = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
    try:
        client.get(name, namespace=ns)
        exists = True
    except Exception:
        exists = False
    (client.patch if exists else client.create)(*([name, isvc] if exists else [isvc]), namespace=ns)
    client.wait_isvc_ready(name, namespace=ns, timeout_seconds=timeout_s)
    return client.get(name, namespace=ns)["status"]["url"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
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
            "127.0.0.1",
            "--http_port",
            str(port),
            *(extra_args or []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    end = time.time() + timeout_s
    while time.time() < end:
        if proc.poll() is not None:
            raise DeployError(f"local server exited with {proc.returncode}; see {state / (name + '.log')}")
        try:
            if httpx.get(f"{url}/v2/models/{name}/ready", timeout=2).status_code == 200:
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


def deploy_step(model_uri: str, target: str, namespace: str, name: str, canary_percent: int = 0) -> dict:
    """``kserve``: InferenceService on the cluster; ``local``: a server on 127.0.0.1."""
    if target == "kserve":
        isvc = inference_service(name, namespace, model_uri, canary_percent=canary_percent)
        return {"url": deploy_kserve(isvc), "isvc": isvc}
    if target == "local":
        return start_local(model_uri, name)
    raise DeployError(f"deploy target must be kserve or local, got {target!r}")
