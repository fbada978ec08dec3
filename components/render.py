from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def render(
    index: Input[Dataset],
    data_uri: str,
    shards: list,
    render_config: dict,
    views: Output[Dataset],
    contact_sheet: Output[HTML],
):
    """3D scans → three views per scan (front 0°, left −30°, right +30°), for some shards; ``contact_sheet``
    shows a few of them per label in the KFP UI.

    4D sequences are left to ``rank_pool``; both take the same full render settings."""
    from facet_lib.steps import render_step

    title = f"Rendered 3D scans, shards {shards}"
    info = render_step(
        index.path, data_uri, [int(s) for s in shards], render_config, views.path, kind="scans",
        sheet_html=contact_sheet.path, sheet_title=title,
    )  # fmt: skip
    views.metadata.update(
        {
            "samples": info["samples"],
            "failed": len(info["failures"]),
            "shards": shards,
            "views_per_s": info.get("views_per_s"),
        }
    )
