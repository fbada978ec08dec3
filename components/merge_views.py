from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def merge_views(scans: Input[list[Dataset]], sequences: Input[list[Dataset]], views: Output[Dataset]):
    """Fan-in of the render (3D scans) and rank-pool (4D sequences) tasks into one rendered dataset."""
    from facet_lib.steps import merge_step

    info = merge_step([p.path for p in [*scans, *sequences]], views.path)
    views.metadata.update(info)
