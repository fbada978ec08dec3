"""Deploy a registered model version: a KServe InferenceService on a cluster, or a local server.

``deploy_step`` (the pipeline's deploy step) pins the version and its digest, then builds the
InferenceService (``manifest.py``, the one builder) and applies it (``kserve_client.py``), or starts a
server on 127.0.0.1 (``local.py``). ``python -m facet_lib.serving.deploy OUT.yaml [key=value ...]`` writes
the base manifest (``manifest.main``).
"""

from __future__ import annotations

from facet_lib.config import from_dict
from facet_lib.config.deploy import DeployConfig
from facet_lib.serving import kserve_client, local, manifest
from facet_lib.serving.manifest import DeployError

__all__ = ["DeployError", "deploy_step"]


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
        manifest.check_canary(canary_percent, config)  # before touching the registry
    info = registry.lookup(model_uri)
    if target == "kserve":
        if not image:
            raise DeployError("deploy target kserve needs the serve image (components.settings.SERVE_IMAGE)")
        isvc = manifest.inference_service(
            name, namespace, info["uri"], image, info["digest"], canary_percent=canary_percent, config=config
        )
        return {"url": kserve_client.deploy_kserve(isvc), "isvc": isvc, **info}
    if target == "local":
        return {**local.start_local(info["uri"], name), **info}
    raise DeployError(f"deploy target must be kserve or local, got {target!r}")


if __name__ == "__main__":
    manifest.main()
