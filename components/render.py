from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def render(
    index: Input[Dataset],
    data_uri: str,
    shards: list,
    mode: str,
    size: int,
    frames: int,
    temporal: str,
    views: Output[Dataset],
):
    """3D scans → three views per scan (front 0°, left −30°, right +30°), for some shards.

    4D sequences are left to ``rank_pool``; frames/temporal only keep both outputs mergeable."""
    from facet_lib.render.config import RenderConfig
    from facet_lib.steps import render_step

    cfg = RenderConfig(mode=mode, size=size, frames=frames, temporal=temporal)
    info = render_step(index.path, data_uri, [int(s) for s in shards], cfg.to_dict(), views.path, kind="scans")
    views.metadata.update(
        {
            "samples": info["samples"],
            "failed": len(info["failures"]),
            "shards": shards,
            "views_per_s": info.get("views_per_s"),
        }
    )
