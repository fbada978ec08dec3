"""Create or update an InferenceService on the cluster through KServe's Python client, and wait for it."""

from __future__ import annotations

from facet_lib.serving import admission
from facet_lib.serving.manifest import DeployError


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
