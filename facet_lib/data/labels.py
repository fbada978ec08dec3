"""Label sets and prompts, loaded from ``configs/labels.yaml`` (data, not code)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from facet_lib.errors import ConfigError

DATASETS = ("bu3dfe", "bosphorus", "bu4dfe", "bp4d", "4dme")


@lru_cache(maxsize=8)
def load_label_config(path: str | None = None) -> dict:
    """The label/prompt configuration; ``path`` overrides the packaged default."""
    text = Path(path).read_text() if path else resources.files("facet_lib.configs").joinpath("labels.yaml").read_text()
    cfg = yaml.safe_load(text)
    for key in ("datasets", "prompts", "prompt_bank", "micro_template"):
        if key not in cfg:
            raise ConfigError(f"label config {path or 'labels.yaml'}: missing key '{key}'")
    return cfg


def dataset_labels(dataset: str) -> list[str]:
    """Canonical label order of a dataset (the class order of models trained on it)."""
    ds = load_label_config()["datasets"]
    if dataset not in ds:
        raise ConfigError(f"unknown dataset '{dataset}': expected one of {sorted(ds)}")
    return list(ds[dataset]["labels"])


def dataset_codes(dataset: str) -> dict[str, str]:
    return dict(load_label_config()["datasets"][dataset]["codes"])


def class_prompt(label: str, micro: bool = False) -> str:
    """The paper's prompt for a label ("a happy face"); 4DME uses the micro-expression template."""
    cfg = load_label_config()
    if micro:
        return cfg["micro_template"].format(cls=label)
    if label not in cfg["prompts"]:
        return f"a {label} face"
    return cfg["prompts"][label]


def prompt_bank(label: str, micro: bool = False) -> list[str]:
    """Several prompts for a label; the first is always the paper's canonical prompt."""
    cfg = load_label_config()
    first = class_prompt(label, micro)
    rest = [p for p in cfg["prompt_bank"].get(label, []) if p != first]
    return [first, *rest]


def prompts_for(labels: list[str], micro: bool = False) -> dict[str, list[str]]:
    """label → its prompt bank (canonical prompt first): what ``FacetVLM.build_text_bank`` takes."""
    return {lab: prompt_bank(lab, micro) for lab in labels}
