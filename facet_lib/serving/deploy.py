"""Deploy a registered model version: a KServe InferenceService on a cluster, or a local server.

``inference_service`` is the one builder of the InferenceService: the pipeline's deploy step calls it
and ``manifests/base/inferenceservice.yaml`` is generated from it (``python -m facet_lib.serving.deploy
manifests/base/inferenceservice.yaml``; a test checks that the committed file matches). It uses
KServe's own model download: the concrete version's prefix goes into ``STORAGE_URI``, KServe's storage
initializer downloads it into ``/mnt/models`` with the S3 credentials of the annotated service
account, and the predictor reads that folder. The deploy step pins the concrete version and its digest
(never an alias), so a promotion changes the spec (a new ReplicaSet in raw mode, a new revision in
Knative mode, where ``canaryTrafficPercent`` splits traffic).

The deployment mode is ``DeployConfig.mode`` (KServe's own values). Raw mode (``Standard``, the default)
places the pod on GPU nodes with a nodeSelector and a toleration; Knative mode (``Knative``) sets no
pod-level field that Knative's default ``config-features`` refuses (security settings at container level,
GPU placement by the resource request alone). Every object built is checked against the rules vendored
from KServe's and Knative's source (``facet_lib.serving.admission``) before it leaves this module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from facet_lib.config import from_dict
from facet_lib.config.deploy import DEPLOY, DeployConfig
from facet_lib.errors import FacetError
from facet_lib.serving import admission
from facet_lib.serving.options import LIVENESS_PATH, READINESS_PATH

CONTAINER = "kserve-container"
MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts STORAGE_URI's objects
PORT = 8080
UID = 1000  # the serve image's user
LIVE_PATH = LIVENESS_PATH  # 200 while the process serves, independent of model readiness
BASE_MODEL_URI = "s3://facet-models/registry/facet-vlm/v0001"  # the model reference of the base manifest


class DeployError(FacetError):
    """Deployment failed or did not become ready in time."""


def security_context(knative: bool) -> tuple[dict, dict]:
    """(pod, container) securityContext: non-root, read-only root filesystem, no capabilities, no
    privilege escalation, the runtime's default seccomp profile. Writable paths come from volumes.
    Everything that can be said per container is said there (Knative's container mask admits it); the pod
    level adds fsGroup in raw mode only, since Knative refuses a pod securityContext by default."""
    container = {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod = {} if knative else {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID}
    return pod, container


def _check_canary(canary_percent: int, config: DeployConfig) -> None:
    if canary_percent and not config.knative:
        raise DeployError(
            f"canary_percent={canary_percent}: KServe reads canaryTrafficPercent only in Knative mode; "
            f"deploy mode {config.mode} rolls out all at once (set the deploy mode to Knative for a canary)"
        )


def inference_service(
    name: str,
    namespace: str | None,
    storage_uri: str,
    image: str,
    digest: str = "",
    service_account: str = "facet-s3",
    gpu: int | None = None,
    canary_percent: int = 0,
    min_replicas: int = 1,
    max_replicas: int = 2,
    config: DeployConfig = DEPLOY,
) -> dict:
    """A KServe v1beta1 InferenceService running the FACET predictor on ``storage_uri`` (a concrete
    registered version's prefix, downloaded by KServe's storage initializer into /mnt/models), in
    ``config.mode``, with ``gpu`` (default ``config.gpus``) of ``config.accelerator`` per replica."""
    if "@" in storage_uri:
        raise DeployError(f"{storage_uri}: pin a concrete version (…/vNNNN), not an alias")
    gpu = config.gpus if gpu is None else gpu
    _check_canary(canary_percent, config)
    resources = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "16Gi"}}
    if gpu:
        resources["requests"][config.accelerator] = str(gpu)
        resources["limits"][config.accelerator] = str(gpu)
    pod_security, container_security = security_context(config.knative)
    container = {
        "name": CONTAINER,
        "image": image,
        # $(VAR) is expanded by Kubernetes from env, so an overlay patches the device by name; the server
        # refuses a bundle whose digest differs from FACET_MODEL_DIGEST (empty: no check)
        "args": ["--model", MODEL_DIR, "--model_name", name, "--host", "0.0.0.0", "--http_port", str(PORT)]
        + ["--device", "$(FACET_DEVICE)", "--digest", "$(FACET_MODEL_DIGEST)"],
        "env": [
            {"name": "STORAGE_URI", "value": storage_uri},  # KServe: storage initializer → /mnt/models
            {"name": "FACET_MODEL_DIGEST", "value": digest},  # the registry's digest of that version
            {"name": "FACET_DEVICE", "value": "cuda" if gpu else "cpu"},
            {"name": "HOME", "value": "/tmp"},  # the root filesystem is read-only
        ],
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "resources": resources,
        "readinessProbe": {
            "httpGet": {"path": READINESS_PATH.format(name=name), "port": PORT},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        # model loading happens before the server listens: allow up to 10 min, then restart a hung server
        "startupProbe": {"httpGet": {"path": LIVE_PATH, "port": PORT}, "periodSeconds": 10, "failureThreshold": 60},
        "livenessProbe": {
            "httpGet": {"path": LIVE_PATH, "port": PORT},
            "periodSeconds": 15,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": container_security,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    predictor: dict = {"serviceAccountName": service_account, "minReplicas": min_replicas, "maxReplicas": max_replicas}
    if pod_security:
        predictor["securityContext"] = pod_security
    if config.pull_secret:
        predictor["imagePullSecrets"] = [{"name": config.pull_secret}]  # admitted in both modes
    predictor["containers"] = [container]
    predictor["volumes"] = [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}]
    if gpu and not config.knative:  # Knative: placement by the resource request alone (nodeSelector is gated)
        if config.gpu_node_selector:
            key, value = config.gpu_node_selector.split("=", 1)
            predictor["nodeSelector"] = {key: value}
        predictor["tolerations"] = [{"key": config.gpu_taint, "operator": "Exists", "effect": "NoSchedule"}]
    if canary_percent:
        predictor["canaryTrafficPercent"] = int(canary_percent)
    metadata = {
        "name": name,
        "annotations": {admission.rules("kserve")["annotation"]: config.mode},
        "labels": {"app.kubernetes.io/part-of": "facet-vlm"},
    }
    if namespace:
        metadata["namespace"] = namespace
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }
    refused = admission.problems(isvc)
    if refused:  # a bug here, not a user error: the builder must only make what the cluster admits
        raise DeployError(f"InferenceService {name} ({config.mode}) would not be admitted: " + "; ".join(refused))
    return isvc


HEADER = """\
# GENERATED by facet_lib.serving.deploy.inference_service(), the builder the pipeline's deploy step uses:
#   python -m facet_lib.serving.deploy manifests/base/inferenceservice.yaml
# Do not edit by hand (a test compares this file with the generated one, apart from the model reference).
# The model reference: STORAGE_URI = a concrete registered version's prefix (…/vNNNN, never an alias) and
# FACET_MODEL_DIGEST = its digest (`facet-vlm registry show …/vNNNN`); set both with a kustomize patch.
# The image "facet-serve" is replaced by the kustomization's `images:` entry. Mode and GPU placement are
# DeployConfig's defaults (KServe raw mode "Standard"); overlays/knative is the Knative-mode variant.
"""


def base_manifest(config: DeployConfig = DEPLOY) -> str:
    """The YAML text of manifests/base/inferenceservice.yaml (the default DeployConfig)."""
    import yaml

    obj = inference_service("facet-vlm", None, BASE_MODEL_URI, "facet-serve", config=config)
    return HEADER + yaml.safe_dump(obj, sort_keys=False, width=120)


def _canonical(mode: str) -> str:
    """KServe's current name of a deployment mode (RawDeployment → Standard, Serverless → Knative)."""
    info = admission.rules("kserve")["modes"].get(mode) or {}
    return info.get("legacy_of") or mode


def deploy_kserve(isvc: dict, timeout_s: int = 900, client=None) -> str:
    """Create or update the InferenceService and wait until it is ready; returns its URL."""
    from kserve import KServeClient

    client = client or KServeClient()
    name, ns = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
    try:
        current = client.get(name, namespace=ns)
        exists = True
    except Exception:
        exists = False
    key = admission.rules("kserve")["annotation"]
    mode = isvc["metadata"]["annotations"][key]
    knative = admission.mode_kind(mode)
    if exists:
        # KServe refuses an update that changes the mode recorded in the status ("update rejected: deploymentMode
        # cannot be changed", inference_service_validation.go); say so before sending it
        was = (current or {}).get("status", {}).get("deploymentMode") or (
            (current or {}).get("metadata", {}).get("annotations") or {}
        ).get(key)
        if was and _canonical(was) != _canonical(mode):
            raise DeployError(
                f"InferenceService {ns}/{name} runs in deployment mode {was}; KServe does not change the mode of an "
                f"existing InferenceService: deploy with mode {was}, or delete it first to switch to {mode}"
            )
        pred = isvc["spec"]["predictor"]
        if knative == "knative" and "canaryTrafficPercent" not in pred:
            # a merge patch cannot remove a field: an earlier canary split would stay; 100 = all to the latest
            isvc = {**isvc, "spec": {**isvc["spec"], "predictor": {**pred, "canaryTrafficPercent": 100}}}
        client.patch(name, isvc, namespace=ns)
    else:
        client.create(isvc, namespace=ns)
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


def deploy_step(
    model_uri: str,
    target: str,
    namespace: str,
    name: str,
    canary_percent: int = 0,
    image: str | None = None,
    cluster: dict | None = None,
) -> dict:
    """``kserve``: InferenceService on the cluster; ``local``: a server on 127.0.0.1. A registry
    reference (``…@alias`` or ``…/vNNNN``) is pinned to its concrete version and digest first.
    ``cluster``: DeployConfig settings (mode, accelerator, gpu_node_selector, pull_secret, gpus) over the
    defaults; "" values mean the default."""
    from facet_lib import registry

    config = from_dict(DeployConfig, {k: v for k, v in (cluster or {}).items() if v != ""}, "deploy")
    if target == "kserve":
        _check_canary(canary_percent, config)  # before touching the registry
    info = registry.lookup(model_uri)
    if target == "kserve":
        if not image:
            raise DeployError("deploy target kserve needs the serve image (components.settings.SERVE_IMAGE)")
        isvc = inference_service(
            name, namespace, info["uri"], image, info["digest"], canary_percent=canary_percent, config=config
        )
        return {"url": deploy_kserve(isvc), "isvc": isvc, **info}
    if target == "local":
        return {**start_local(info["uri"], name), **info}
    raise DeployError(f"deploy target must be kserve or local, got {target!r}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(
            "usage: python -m facet_lib.serving.deploy OUT.yaml [key=value ...]   (the InferenceService of the"
            " default DeployConfig, or with overrides such as mode=Knative pull_secret=regcred)"
        )
    from facet_lib.config import apply_overrides

    Path(sys.argv[1]).write_text(base_manifest(apply_overrides(DEPLOY, sys.argv[2:])))
