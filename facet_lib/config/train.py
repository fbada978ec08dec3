"""Model and training settings, and the named presets (no torch here: CPU-only code may import it)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

from facet_lib.config.codec import check_choices, setting
from facet_lib.errors import ConfigError

HEAD_KEYS = ("cvsa", "cvsa_depth", "cvsa_heads", "cvsa_mlp", "mtgf")
OLD_HEAD_KEYS = (*HEAD_KEYS, "head_out", "mtgf_input", "view_embed_from")  # a head as saved before issue 19
# our stronger head forms (block CVSA, MTGF key LayerNorm and biases, gate bias): the ``recommended`` and
# ``tiny-cpu`` presets use them, and every head had them before the literal equations became the default
# (issue 19), so an old saved head is read with them
OURS_FORMS = {"cvsa_form": "block", "cvsa_heads": 8, "mtgf_key_norm": True, "mtgf_bias": True, "gate_bias": True}
OLD_MODEL_KEYS = ("clip_model", "pretrained", "checkpoint", "unfreeze_top", "head", "views", "micro")
PROMPTS = ("table1", "bank")
CONSISTENCY_FORMS = ("variance", "pairwise_eq21", "eq23")  # eq. 22 | eq. 21 | eq. 23 (facet_lib/losses.py)
LOSS_FORMS = ("paper", "label_aware")  # InfoNCE positives: the diagonal (eqs. 9-11) | every same-label pair
VIEWS = (0, 1, 2)  # the rendered views: front, left, right
# how the class prompts query MTGF at test time (FacetVLM.scores): each class its own | the mean prompt
INFERENCE_MODES = ("class_conditional", "label_free")


@dataclass(frozen=True)
class HeadConfig:
    """The FACET fusion head (facet_lib/models/facet.py); its sizes come from the backbone. The defaults are
    the paper's equations as written (eq. 4, eqs. 15-19); ``block``/``mtgf_key_norm``/biases are ours."""

    cvsa: bool = setting(True, "cross-view self-attention over the views' tokens (eqs. 3-6)")
    cvsa_form: str = setting(
        "eq4",
        "CVSA form: eq4 (one attention softmax(QK^T/sqrt(d))V, W_Q/W_K/W_V d x d, no bias, no norm, no output "
        "projection, no residual; paper) | block (pre-LayerNorm multi-head attention, output projection, "
        "residual; ours)",
        ("eq4", "block"),
    )
    cvsa_depth: int = setting(1, "number of CVSA layers (the paper has one)")
    cvsa_heads: int = setting(1, "attention heads per CVSA layer (eq4: 1; block: any divisor of the width)")
    cvsa_mlp: bool = setting(
        False, "add an MLP sub-layer to each CVSA block (block only; the paper's CVSA is attention only)"
    )
    mtgf: bool = setting(True, "text-guided fusion: the prompt queries the view tokens (eqs. 14-20)")
    mtgf_key_norm: bool = setting(
        False, "LayerNorm on the tokens MTGF's keys are taken from (eqs. 15-18 have none; ours)"
    )
    mtgf_bias: bool = setting(False, "biases on MTGF's W_Q, W_K, W_V (eqs. 15-16 have none; ours)")
    gate_bias: bool = setting(False, "bias of the gate alpha = sigmoid(W_g t) (eq. 19 has none; ours)")
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

    def __post_init__(self) -> None:
        check_choices(self, "head")
        if self.cvsa_depth < 1 or self.cvsa_heads < 1:
            raise ConfigError(
                f"head.cvsa_depth and head.cvsa_heads must be >= 1, got {self.cvsa_depth}, {self.cvsa_heads}"
            )
        if self.cvsa_form == "eq4" and (self.cvsa_heads != 1 or self.cvsa_mlp):
            raise ConfigError(
                f"head.cvsa_form 'eq4' is one attention (eq. 4): cvsa_heads must be 1 and cvsa_mlp False, got "
                f"cvsa_heads={self.cvsa_heads}, cvsa_mlp={self.cvsa_mlp} (cvsa_form='block' has heads and an MLP)"
            )

    @staticmethod
    def _upgrade(d: dict) -> dict:
        """A head saved before the literal forms existed (all of its then eight settings, no ``cvsa_form``) had
        the block CVSA, MTGF's key LayerNorm and every bias."""
        if "cvsa_form" not in d and set(OLD_HEAD_KEYS) <= set(d):
            d = {**OURS_FORMS, **d}
        return d


@dataclass(frozen=True)
class ModelConfig:
    clip_model: str = setting("ViT-B-16", "open_clip model name (ViT-B-16 for the paper, facet-tiny for CPU tests)")
    pretrained: str | None = setting(None, "open_clip pretrained tag, e.g. openai (no tag and no checkpoint: random)")
    checkpoint: str | None = setting(None, "local or s3:// CLIP weights (state dict / safetensors)")
    quick_gelu: bool | None = setting(
        None,
        "CLIP's activation: True QuickGELU x*sigmoid(1.702x) (what OpenAI's CLIP, the paper's backbone, was trained "
        "with), False nn.GELU; not given: the pretrained tag's own (open_clip's pretrained config: True for openai), "
        "else open_clip's model config (GELU for ViT-B-16). Recorded resolved in every saved model config",
    )
    unfreeze_top: int = setting(2, "top visual blocks trained after freeze_epochs (the rest is frozen and cached)")
    head: HeadConfig = setting(HeadConfig(), "fusion head settings")
    views: tuple[int, ...] = setting((0, 1, 2), "rendered views the model sees (0 front, 1 left, 2 right)")
    micro: bool = setting(False, "4DME prompts: 'a face with [CLS] micro expression'")
    prompts: str = setting(
        "table1",
        "class prompts: table1 (one prompt per label: the paper's Table 1, or the 4DME template) | bank (the "
        "labels file's prompt bank, averaged per class, one sampled per training instance; ours)",
        PROMPTS,
    )
    prompts_file: str | None = setting(
        None, "labels/prompts YAML (local or s3://) whose prompt sections replace the packaged configs/labels.yaml's"
    )

    def __post_init__(self) -> None:
        check_choices(self, "model")
        if not self.views or any(v not in VIEWS for v in self.views):
            raise ConfigError(f"model.views must be a non-empty subset of {VIEWS}, got {self.views}")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def _upgrade(d: dict) -> dict:
        """Older saved configs: head settings at the top level (before they were nested); no ``prompts``
        (before issue 19 every model used the prompt bank)."""
        flat = {k: d.pop(k) for k in HEAD_KEYS if k in d}
        if flat:  # such configs predate head_out & co.: their head had the learned output layer, post-CVSA inputs
            old = {"head_out": "learned", "mtgf_input": "post_cvsa", "view_embed_from": "post_cvsa"}
            d["head"] = {**OURS_FORMS, **old, **d.get("head", {}), **flat}
        if "prompts" not in d and (flat or set(OLD_MODEL_KEYS) <= set(d)):
            d["prompts"] = "bank"
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
        CONSISTENCY_FORMS,
    )
    loss_form: str = setting(
        "paper", "InfoNCE positives: paper (diagonal, eqs. 9-11) | label_aware (same label)", LOSS_FORMS
    )
    cond_weight: float = setting(0.0, "class-conditional CE weight (teaches MTGF wrong-class queries); 0 = paper")
    seed: int = setting(0, "seed of the head initialisation, sampling and shuffling")
    amp: bool = setting(True, "mixed precision on GPU (bf16 autocast); ignored on CPU")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N")
    cache_features: bool = setting(True, "run the frozen lower backbone once and cache its output")
    init_from: str | None = setting(
        None,
        "start from a trained bundle (fine-tuning, as the paper does for 4DME): a local bundle folder or a registry "
        "ref s3://.../registry/NAME@ALIAS or .../NAME/vNNNN; its backbone, head and temperature are the start",
    )

    def __post_init__(self) -> None:
        check_choices(self, "train")
        for name, low in (("epochs", 1), ("batch_size", 1), ("freeze_epochs", 0), ("lam", 0), ("cond_weight", 0)):
            if not getattr(self, name) >= low:
                raise ConfigError(f"train.{name}: expected a number >= {low}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TuneConfig:
    """The lambda search of section 3.4 ("grid search on a validation split"); the paper then fixes 0.1."""

    grid: tuple[float, ...] = setting((0.0, 0.01, 0.1, 1.0), "lambda values tried (the paper does not print its grid)")
    val_frac: float = setting(0.2, "share of each training fold's subjects held out as the validation split")
    metric: str = setting(
        "accuracy", "validation metric that selects lambda (class-conditional inference)", ("accuracy", "macro_f1")
    )
    seed: int = setting(0, "seed of the validation subjects' draw")

    def __post_init__(self) -> None:
        check_choices(self, "tune")
        if not self.grid or any(v < 0 for v in self.grid):
            raise ConfigError(f"tune.grid: expected one or more lambda values >= 0, got {list(self.grid)}")
        if not 0 < self.val_frac < 1:
            raise ConfigError(f"tune.val_frac: expected a share in (0, 1), got {self.val_frac}")

    def to_dict(self) -> dict:
        return asdict(self)


# The dataclass defaults are the paper's method as written: eq. 4 as one attention, eqs. 15-19 without
# LayerNorm or biases, Table 1's one prompt per label, eq. 25 (diagonal InfoNCE + 0.1 x eq. 22), AdamW 1e-4
# for every trained parameter, no output layer. What the paper leaves open is ours and named in
# docs/paper-notes.md (weight decay on every parameter, tau starting at 0.07, the initialisation). Presets:
# - ``paper``: ViT-B/16 at 224 px with the defaults; needs pretrained weights or a checkpoint.
# - ``recommended``: our extensions, each a deviation from the paper: the block CVSA (pre-LayerNorm 8-head
#   attention, output projection, residual), MTGF's key LayerNorm and the biases of MTGF and the gate, the
#   prompt bank, label-aware InfoNCE (same-label pairs are positives), the class-conditional CE (cond_weight
#   1: teaches MTGF wrong-class queries), a 10x lower backbone learning rate (1e-5), an output Linear
#   starting at the identity, MTGF and the per-view embeddings taken after CVSA. Needs weights.
# - ``tiny-cpu``: a small random-weight backbone for CPU demos and tests — its results only show that the
#   pipeline works; the earlier settings (block CVSA, learned output layer, prompt bank), higher learning
#   rates for random features.
_POST = {"mtgf_input": "post_cvsa", "view_embed_from": "post_cvsa"}
_OURS_HEAD = HeadConfig(**OURS_FORMS, head_out="learned", **_POST)
_RECOMMENDED_HEAD = HeadConfig(**OURS_FORMS, head_out="identity", **_POST)
PRESETS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    "paper": (ModelConfig(clip_model="ViT-B-16", unfreeze_top=2), TrainConfig(epochs=30, freeze_epochs=5)),
    "recommended": (
        ModelConfig(clip_model="ViT-B-16", unfreeze_top=2, head=_RECOMMENDED_HEAD, prompts="bank"),
        TrainConfig(epochs=30, freeze_epochs=5, backbone_lr=1e-5, loss_form="label_aware", cond_weight=1.0),
    ),
    "tiny-cpu": (
        ModelConfig(clip_model="facet-tiny", unfreeze_top=1, head=_OURS_HEAD, prompts="bank"),
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
    if not name:
        return ModelConfig(), TrainConfig()
    if name not in PRESETS:
        raise ConfigError(f"preset '{name}': expected one of {list(PRESETS)}")
    return PRESETS[name]


def require_weights(
    preset_name: str | None, model: ModelConfig, allow_random: bool = False, init_from: str | None = None
) -> str | None:
    """Refuse to train ``paper``/``recommended`` from random backbone weights.

    Returns None when weights are given (a checkpoint, a pretrained tag, or a bundle to start from) or not
    needed, and a note to report when ``allow_random`` let a
    weight-needing preset run on random weights (smoke tests)."""
    if preset_name not in NEEDS_WEIGHTS or model.pretrained or model.checkpoint or init_from:
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
