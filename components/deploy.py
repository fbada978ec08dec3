from kfp import dsl

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def deploy(
    model_uri: str,
    target: str,
    namespace: str,
    name: str,
    canary_percent: int,
    image: str,
    deploy_mode: str,
    cluster: dict,
) -> str:
    """Serve a registered model version: ``kserve`` creates/updates an InferenceService on the cluster
    (``image``: the serve image, and ``cluster``: pull secret, GPU resource and node label, all fixed when
    the pipeline was compiled; ``deploy_mode``: KServe's Standard or Knative, "" = the default); ``local``
    starts the KServe server on 127.0.0.1 and checks readiness (kfp.local runs only). Returns the URL."""
    from facet_lib.serving.deploy import deploy_step

    cluster = {**cluster, "mode": deploy_mode}
    return deploy_step(model_uri, target, namespace, name, canary_percent, image=image, cluster=cluster)["url"]
