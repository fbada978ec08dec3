"""The InferenceService of a registered model version: the one builder, and the base manifest made from it.

``inference_service`` is the one builder of the InferenceService: the pipeline's deploy step calls it
and ``manifests/base/inferenceservice.yaml`` is generated from it (``python -m facet_lib.serving.deploy
manifests/base/inferenceservice.yaml``, or ``python -m facet_lib.serving.manifest``; a test checks that the
committed file matches). It uses KServe's own model download: the concrete version's prefix goes into
``STORAGE_URI``, KServe's storage initializer downloads it into ``/mnt/models`` with the S3 credentials of the
annotated service account, and the predictor reads that folder. The deploy step pins the concrete version and
its digest (never an alias), so a promotion changes the spec (a new ReplicaSet in raw mode, a new revision in
Knative mode, where ``canaryTrafficPercent`` splits traffic).

The deployment mode is ``DeployConfig.mode`` (KServe's own values). Raw mode (``Standard``, the default)
places the pod on GPU nodes with a nodeSelector and a toleration; Knative mode (``Knative``) sets no
pod-level field that Knative's default ``config-features`` refuses (security settings at container level,
GPU placement by the resource request alone). Every object built is checked against the rules vendored
from KServe's and Knative's source (``facet_lib.serving.admission``) before it leaves this module.
No kserve, no torch here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from facet_lib.config.deploy import DEPLOY, DeployConfig
from facet_lib.config.serve import LIVENESS_PATH, READINESS_PATH, ServeConfig
from facet_lib.errors import FacetError
from facet_lib.serving import admission

_SERVE = ServeConfig()  # the server's defaults: its port and KServe's model folder
CONTAINER = "kserve-container"
MODEL_DIR = _SERVE.model  # /mnt/models: where KServe's storage initializer puts STORAGE_URI's objects
PORT = _SERVE.port
# A pod's server binds every interface: the kubelet's probes and the Service reach it on the pod's IP (a
# local server keeps ServeConfig's default, 127.0.0.1).
POD_HOST = "0.0.0.0"
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


def check_canary(canary_percent: int, config: DeployConfig) -> None:
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
    check_canary(canary_percent, config)
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
        "args": ["--model", MODEL_DIR, "--model_name", name, "--host", POD_HOST, "--http_port", str(PORT)]
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


# Word for word the header of the committed manifests/base/inferenceservice.yaml (the generated file equals it
# byte for byte): it names the deploy step's module, whose `python -m` entry point writes this file.
HEADER = """\
# GENERATED by facet_lib.serving.manifest.inference_service(), the builder the pipeline's deploy step uses:
#   python -m facet_lib.serving.manifest manifests/base/inferenceservice.yaml
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


def main(argv: list[str] | None = None) -> None:
    """``python -m facet_lib.serving.manifest OUT.yaml [key=value ...]`` (also as ``…serving.deploy``)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit(
            f"usage: python -m facet_lib.serving.{Path(sys.argv[0]).stem} OUT.yaml [key=value ...]   (the "
            "InferenceService of the default DeployConfig, or with overrides such as mode=Knative pull_secret=regcred)"
        )
    from facet_lib.config import apply_overrides

    Path(argv[0]).write_text(base_manifest(apply_overrides(DEPLOY, argv[1:])))


if __name__ == "__main__":
    main()
