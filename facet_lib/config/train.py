"""Model and training settings, and the named presets (no torch here: CPU-only code may import it)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

from facet_lib.config.codec import setting

HEAD_KEYS = ("cvsa", "cvsa_depth", "cvsa_heads", "cvsa_mlp", "mtgf")


@dataclass(frozen=True)
class HeadConfig:
    """The FACET fusion head (facet_lib/models/facet.py); its sizes come from the backbone."""

    cvsa: bool = setting(True, "cross-view self-attention over the views' tokens (eqs. 3-6)")
    cvsa_depth: int = setting(1, "number of CVSA blocks")
    cvsa_heads: int = setting(8, "attention heads per CVSA block")
    cvsa_mlp: bool = setting(False, "add an MLP sub-layer to each CVSA block (the paper's CVSA is attention only)")
    mtgf: bool = setting(True, "text-guided fusion: the prompt queries the view tokens (eqs. 14-20)")
    head_out: str = setting(
        "none",
        "output layer before the comparison with text: none (paper) | identity (Linear = I at start) | learned",
        ("none", "identity", "learned"),
    )
    mtgf_input: str = setting(
        "pre_cvsa", "tokens MTGF attends over: pre_cvsa (z-hat, eq. 14; paper) | post_cvsa", ("pre_cvsa", "post_cvsa")
    )
    view_embed_from: str = setting(
        "pre_cvsa",
        "per-view embeddings of the consistency loss: pre_cvsa (encoder output; paper) | post_cvsa",
        ("pre_cvsa", "post_cvsa"),
    )


@dataclass(frozen=True)
class ModelConfig:
    clip_model: str = setting("ViT-B-16", "open_clip model name (ViT-B-16 for the paper, facet-tiny for CPU tests)")
    pretrained: str | None = setting(None, "open_clip pretrained tag, e.g. openai (no tag and no checkpoint: random)")
    checkpoint: str | None = setting(None, "local or s3:// CLIP weights (state dict / safetensors)")
    unfreeze_top: int = setting(2, "top visual blocks trained after freeze_epochs (the rest is frozen and cached)")
    head: HeadConfig = setting(HeadConfig(), "fusion head settings")
    views: tuple[int, ...] = setting((0, 1, 2), "rendered views the model sees (0 front, 1 left, 2 right)")
    micro: bool = setting(False, "4DME prompts: 'a face with [CLS] micro expression'")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def _upgrade(d: dict) -> dict:
        """Configs saved before the head settings were nested had them at the top level."""
        flat = {k: d.pop(k) for k in HEAD_KEYS if k in d}
        if flat:  # such configs predate head_out & co.: their head had the learned output layer, post-CVSA inputs
            old = {"head_out": "learned", "mtgf_input": "post_cvsa", "view_embed_from": "post_cvsa"}
            d["head"] = {**old, **d.get("head", {}), **flat}
        return d


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = setting(10, "training epochs per fold")
    freeze_epochs: int = setting(3, "epochs with the backbone fully frozen before its top blocks train")
    batch_size: int = setting(32, "samples per step")
    lr: float = setting(1e-4, "AdamW learning rate of the head")
    backbone_lr: float = setting(1e-4, "AdamW learning rate of the unfrozen backbone blocks (paper: 1e-4 for all)")
    weight_decay: float = setting(0.01, "AdamW weight decay")
    betas: tuple[float, float] = setting((0.9, 0.999), "AdamW betas")
    eps: float = setting(1e-8, "AdamW epsilon")
    warmup_frac: float = setting(0.1, "linear warm-up over this share of the steps, then cosine (eq. 27)")
    grad_clip: float = setting(1.0, "gradient norm clip")
    lam: float = setting(0.1, "lambda of the multiview consistency loss (0.1 in the paper)")
    consistency: str = setting(
        "variance",
        "consistency loss form: variance (eq. 22) | pairwise_eq21 (6x eq. 22 for 3 views) | eq23 (3x)",
        ("variance", "pairwise_eq21", "eq23"),
    )
    loss_form: str = setting(
        "paper", "InfoNCE positives: paper (diagonal, eqs. 9-11) | label_aware (same label)", ("paper", "label_aware")
    )
    cond_weight: float = setting(0.0, "class-conditional CE weight (teaches MTGF wrong-class queries); 0 = paper")
    seed: int = setting(0, "seed of the head initialisation, sampling and shuffling")
    amp: bool = setting(True, "mixed precision on GPU (bf16 autocast); ignored on CPU")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N")
    cache_features: bool = setting(True, "run the frozen lower backbone once and cache its output")

    def to_dict(self) -> dict:
        return asdict(self)


# The dataclass defaults are the paper's method (eq. 25: diagonal InfoNCE + 0.1 x eq. 22, AdamW 1e-4 for
# every trained parameter, no output layer). Presets (documented in docs/paper-notes.md and the README):
# - ``paper``: ViT-B/16 at 224 px with the defaults; needs pretrained weights or a checkpoint.
# - ``recommended``: our extensions, each a deviation from the paper: label-aware InfoNCE (same-label pairs
#   are positives), the class-conditional CE (cond_weight 1: teaches MTGF wrong-class queries), a 10x lower
#   backbone learning rate (1e-5), an output Linear starting at the identity (keeps CLIP's joint space at
#   the start; the earlier LayerNorm + Linear did not earn its place: docs/paper-notes.md), MTGF and the
#   per-view embeddings taken after CVSA. Needs pretrained weights or a checkpoint.
# - ``tiny-cpu``: a small random-weight backbone for CPU demos and tests — its results only show that the
#   pipeline works; the earlier settings (learned output layer), higher learning rates for random features.
_OURS_HEAD = HeadConfig(head_out="learned", mtgf_input="post_cvsa", view_embed_from="post_cvsa")
_RECOMMENDED_HEAD = HeadConfig(head_out="identity", mtgf_input="post_cvsa", view_embed_from="post_cvsa")
PRESETS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    "paper": (ModelConfig(clip_model="ViT-B-16", unfreeze_top=2), TrainConfig(epochs=30, freeze_epochs=5)),
    "recommended": (
        ModelConfig(clip_model="ViT-B-16", unfreeze_top=2, head=_RECOMMENDED_HEAD),
        TrainConfig(epochs=30, freeze_epochs=5, backbone_lr=1e-5, loss_form="label_aware", cond_weight=1.0),
    ),
    "tiny-cpu": (
        ModelConfig(clip_model="facet-tiny", unfreeze_top=1, head=_OURS_HEAD),
        TrainConfig(
            epochs=25,
            freeze_epochs=20,
            lr=3e-3,
            backbone_lr=3e-4,
            batch_size=32,
            loss_form="label_aware",
            cond_weight=1.0,
        ),
    ),
}
NEEDS_WEIGHTS = ("paper", "recommended")  # presets that refuse random backbone weights


def preset(name: str | None) -> tuple[ModelConfig, TrainConfig]:
    """The named preset's (model, train) settings; None or "" → the dataclass defaults."""
    from facet_lib.errors import ConfigError

    if not name:
        return ModelConfig(), TrainConfig()
    if name not in PRESETS:
        raise ConfigError(f"preset '{name}': expected one of {list(PRESETS)}")
    return PRESETS[name]


def require_weights(preset_name: str | None, model: ModelConfig, allow_random: bool = False) -> str | None:
    """Refuse to train ``paper``/``recommended`` from random backbone weights.

    Returns None when weights are given or not needed, and a note to report when ``allow_random`` let a
    weight-needing preset run on random weights (smoke tests)."""
    from facet_lib.errors import ConfigError

    if preset_name not in NEEDS_WEIGHTS or model.pretrained or model.checkpoint:
        return None
    if not allow_random:
        raise ConfigError(
            f"preset '{preset_name}' trains the paper's ViT-B/16 setting and needs pretrained CLIP weights: "
            "give --pretrained TAG (e.g. openai) or --checkpoint PATH (local or s3://); "
            "--allow-random-weights runs it on random weights for smoke tests only"
        )
    return f"preset '{preset_name}' run on random backbone weights (--allow-random-weights)"


def resolve_micro(model: ModelConfig, dataset: str | None = None, protocol: str | None = None) -> ModelConfig:
    """4DME uses the micro-expression prompt template: ``micro=True`` whenever the dataset or protocol is 4dme."""
    if "4dme" in (str(dataset or "").lower(), str(protocol or "").lower()) and not model.micro:
        return dataclasses.replace(model, micro=True)
    return model
