from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def rank_pool(
    index: Input[Dataset],
    data_uri: str,
    shards: list,
    mode: str,
    size: int,
    frames: int,
    temporal: str,
    views: Output[Dataset],
):
    """4D sequences → per view, ``frames`` uniformly sampled renders summarised by approximate rank
    pooling (or the mean / apex frame) into one dynamic image, for some shards."""
    from facet_lib.render.config import RenderConfig
    from facet_lib.steps import render_step

    cfg = RenderConfig(mode=mode, size=size, frames=frames, temporal=temporal)
    info = render_step(index.path, data_uri, [int(s) for s in shards], cfg.to_dict(), views.path, kind="sequences")
    views.metadata.update(
        {
            "samples": info["samples"],
            "failed": len(info["failures"]),
            "shards": shards,
            "frames": frames,
            "temporal": temporal,
        }
    )
