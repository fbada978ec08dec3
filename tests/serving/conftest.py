import numpy as np
import pytest
import torch

from facet_lib.bundle import save_bundle
from facet_lib.models.model import FacetVLM, ModelConfig
from facet_lib.render import RenderConfig

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    """A random-weight tiny bundle rendering at 64 px (serving tests need a model, not a good one)."""
    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    d = tmp_path_factory.mktemp("serve") / "bundle"
    save_bundle(d, m, m.build_text_bank(LABELS), RenderConfig(size=64, frames=4).to_dict())
    return d


@pytest.fixture(scope="session")
def views():
    return np.random.default_rng(0).integers(0, 255, (2, 3, 64, 64, 3), dtype=np.uint8)
