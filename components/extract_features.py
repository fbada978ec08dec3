from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.settings import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def extract_features(
    views: Input[Dataset], index: Input[Dataset], model_config: dict, train_config: dict, features: Output[Dataset]
):
    """The frozen lower backbone blocks, run once over the dataset and shared by every fold."""
    from facet_lib.steps import features_step

    info = features_step(views.path, index.path + "/folds.csv", model_config, train_config, features.path)
    features.metadata.update(info)
