from kfp import dsl

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def deploy(model_uri: str, target: str, namespace: str, name: str, canary_percent: int) -> str:
    """Serve a registered model version: ``kserve`` creates/updates an InferenceService on the cluster
    (GPU, S3 service account, readiness wait); ``local`` starts the KServe server on 127.0.0.1 and
    checks readiness. Returns the inference URL."""
    from facet_lib.serving.deploy import deploy_step

    return deploy_step(model_uri, target, namespace, name, canary_percent)["url"]
