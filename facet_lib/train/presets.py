"""Named settings. ``paper``: ViT-B/16 with the paper's optimiser (give pretrained weights).
``tiny-cpu``: a small random-weight backbone for CPU demos and tests — its results only show that the
pipeline works; the higher head learning rate suits training from random features."""

from __future__ import annotations

from facet_lib.models.model import ModelConfig
from facet_lib.train.config import TrainConfig

PRESETS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    "paper": (ModelConfig(clip_model="ViT-B-16", unfreeze_top=2), TrainConfig(epochs=30, freeze_epochs=5)),
    "tiny-cpu": (
        ModelConfig(clip_model="facet-tiny", unfreeze_top=1),
        TrainConfig(epochs=25, freeze_epochs=20, lr=3e-3, backbone_lr=3e-4, batch_size=32),
    ),
}
