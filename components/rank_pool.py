from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def rank_pool(index: Input[Dataset], data_uri: str, shards: list, render_config: dict, views: Output[Dataset]):
    """4D sequences → per view, ``render_config.frames`` uniformly sampled renders summarised by approximate
    rank pooling (or the mean / apex frame, ``render_config.temporal``) into one dynamic image."""
    from facet_lib.steps import render_step

    info = render_step(index.path, data_uri, [int(s) for s in shards], render_config, views.path, kind="sequences")
    views.metadata.update(
        {
            "samples": info["samples"],
            "failed": len(info["failures"]),
            "shards": shards,
            "frames": render_config.get("frames"),
            "temporal": render_config.get("temporal"),
        }
    )
