from typing import NamedTuple

from kfp import dsl

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def fetch_weights(model_config: dict, store: str) -> NamedTuple(
    "Weights", [("model_config", dict), ("checkpoint", str), ("sha256", str)]
):
    """Resolve an open_clip pretrained tag once: download it (Hugging Face Hub), store it in S3 under its
    SHA-256 and hand on the model settings with ``checkpoint=s3://…`` in place of the tag, so every GPU step
    and the registered bundle load that one copy. Settings without a tag pass unchanged."""
    from collections import namedtuple

    from facet_lib.weights import weights_step

    out = weights_step(model_config, store)
    w = out["weights"]
    return namedtuple("Weights", ["model_config", "checkpoint", "sha256"])(
        out["model_config"], w.get("checkpoint", ""), w.get("sha256", "")
    )
