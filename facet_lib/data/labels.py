"""Label sets and prompts, loaded from ``configs/labels.yaml`` (data, not code)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from facet_lib.config.train import PROMPTS
from facet_lib.errors import ConfigError


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
    """Canonical label order of a dataset (the class order of models trained on it): the dataset table's
    own ``labels`` where an entry has them, else ``labels.yaml``."""
    from facet_lib.data.datasets import DATASETS

    if dataset in DATASETS and DATASETS[dataset].labels:
        return list(DATASETS[dataset].labels)
    ds = load_label_config()["datasets"]
    if dataset not in ds:
        raise ConfigError(f"unknown dataset '{dataset}': expected one of {sorted(ds)}")
    return list(ds[dataset]["labels"])


def dataset_codes(dataset: str) -> dict[str, str]:
    return dict(load_label_config()["datasets"][dataset]["codes"])


def cross_dataset_tasks(dataset: str | None = None) -> dict[str, str]:
    """The cross-dataset target's tasks → their labels (``labels.yaml``'s ``cross_dataset_tasks``; BP4D T1/T8:
    happy/disgust, the two emotions it shares with BU-4DFE); ``dataset``: default ``datasets.CROSS_DATASET``."""
    from facet_lib.data.datasets import CROSS_DATASET

    dataset = dataset or CROSS_DATASET
    entry = load_label_config()["datasets"].get(dataset, {})
    if "cross_dataset_tasks" not in entry:
        raise ConfigError(f"labels.yaml: dataset '{dataset}' has no cross_dataset_tasks")
    codes = entry["codes"]
    return {t: codes[t] for t in entry["cross_dataset_tasks"]}


PROMPT_SECTIONS = {"prompts": dict, "micro_template": str, "prompt_bank": dict, "micro_prompt_bank": dict}


@lru_cache(maxsize=8)
def load_prompt_config(path: str | None = None) -> dict:
    """The prompt sections (``prompts``, ``micro_template``; optional ``prompt_bank``, ``micro_prompt_bank``)
    of a labels/prompts YAML (``model.prompts_file``), or of the packaged one; every error names the file."""
    if not path:
        return load_label_config()
    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"prompts file {path}: unreadable ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"prompts file {path}: expected a mapping with 'prompts' and 'micro_template'")
    for key, tp in PROMPT_SECTIONS.items():
        if key in ("prompts", "micro_template") and key not in cfg:
            raise ConfigError(f"prompts file {path}: missing key '{key}'")
        if key in cfg and not isinstance(cfg[key], tp):
            raise ConfigError(f"prompts file {path}: '{key}' must be a {tp.__name__}, got {type(cfg[key]).__name__}")
    if "{cls}" not in cfg["micro_template"]:
        raise ConfigError(f"prompts file {path}: 'micro_template' must contain {{cls}}, got {cfg['micro_template']!r}")
    return cfg


def class_prompt(label: str, micro: bool = False, path: str | None = None) -> str:
    """The paper's prompt for a label ("a happy face", Table 1); 4DME uses the micro-expression template."""
    cfg = load_prompt_config(path)
    if micro:
        return cfg["micro_template"].format(cls=label)
    if label not in cfg["prompts"]:
        return f"a {label} face"
    return cfg["prompts"][label]


def prompt_bank(label: str, micro: bool = False, path: str | None = None) -> list[str]:
    """Several prompts for a label; the first is always the paper's canonical prompt. 4DME (``micro``) takes
    only the micro-expression bank, never a macro-expression prompt."""
    cfg = load_prompt_config(path)
    first = class_prompt(label, micro, path)
    bank = cfg.get("micro_prompt_bank" if micro else "prompt_bank") or {}
    rest = [p for p in bank.get(label, []) if p != first]
    return [first, *rest]


def prompts_for(labels: list[str], micro: bool = False, *, mode: str, path: str | None = None) -> dict[str, list[str]]:
    """label → its prompts (canonical first): what ``FacetVLM.build_text_bank`` takes. ``mode`` is a
    ``ModelConfig.prompts`` value (``facet_lib.config.train.PROMPTS``; no default here — pass the model config's,
    or use ``model_prompts``): "table1": the one canonical prompt per label (the paper's Table 1); "bank": the
    prompt bank. ``path``: a prompts file."""
    if mode not in PROMPTS:
        raise ConfigError(f"model.prompts: expected {'|'.join(PROMPTS)}, got {mode!r}")
    if mode == "table1":
        return {lab: [class_prompt(lab, micro, path)] for lab in labels}
    return {lab: prompt_bank(lab, micro, path) for lab in labels}


def model_prompts(model, labels: list[str], cache_dir: str | Path | None = None) -> dict[str, list[str]]:
    """The prompts a ``ModelConfig`` asks for (``prompts``, ``micro``, ``prompts_file``; an s3:// file is
    downloaded into ``cache_dir``, default a temporary folder)."""
    path = model.prompts_file
    if path and str(path).startswith("s3://"):
        import tempfile

        from facet_lib.storage import local_path

        path = str(local_path(path, cache_dir or Path(tempfile.gettempdir()) / "facet-prompts"))
    return prompts_for(labels, model.micro, mode=model.prompts, path=path)
