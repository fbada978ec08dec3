from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.settings import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def ablations(
    views: Input[Dataset],
    index: Input[Dataset],
    model_config: dict,
    train_config: dict,
    ablation_table: Output[Dataset],
):
    """Every ablation variant of §4.4 on the run's folds (``ablation_table.csv`` with the paper column, the
    heatmaps, ``ablation_meta.json`` naming the run's protocol for Fig. 4)."""
    from facet_lib.steps import ablations_step

    res = ablations_step(views.path, index.path, model_config, train_config, ablation_table.path)
    ablation_table.metadata.update(res)
