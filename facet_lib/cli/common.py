"""What every ``facet-vlm`` command module shares: the help formatter, path checks, the model/train
options (``--preset``, ``--set`` …) and their resolution (``facet_lib.config.resolve``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facet_lib.errors import FacetError


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.ArgumentDefaultsHelpFormatter(prog, max_help_position=32, width=110)


def existing(path: str, option: str, what: str = "file") -> Path:
    """``path`` when it is an existing file (``what='file'``) or folder (``'folder'``), else a one-line error."""
    p = Path(path)
    if not (p.is_file() if what == "file" else p.is_dir()):
        raise FacetError(f"{option} {path}: {'no such ' + what if not p.exists() else 'not a ' + what}")
    return p


def out_folder(path: str, option: str = "--out") -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FacetError(f"{option} {path}: exists and is not a folder")
    return p


def command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, formatter_class=formatter)
    p.set_defaults(func=func)
    return p


def settings(a: argparse.Namespace, protocol: str | None = None):
    """The preset, then --model/--pretrained/--checkpoint/--prompts-file/--init-from, then --set:
    (model, train, note) by the one resolver (``facet_lib.config.resolve``; ``protocol`` 4dme: micro prompts)."""
    from facet_lib.config.resolve import resolve_settings

    flags = {
        "clip_model": a.model,
        "pretrained": a.pretrained,
        "checkpoint": a.checkpoint,
        "prompts_file": a.prompts_file,
    }
    over = {"model": {k: v for k, v in flags.items() if v}, "train": {"init_from": a.init_from} if a.init_from else {}}
    allow = getattr(a, "allow_random_weights", False)
    s = resolve_settings(a.preset, over, items=a.set, protocol=protocol, allow_random_weights=allow)
    return s.model, s.train, s.note or None


def print_note(weights: str, note: str | None) -> None:
    from facet_lib.eval.report import weights_note

    for n in (note, weights_note(weights)):
        if n:
            print(f"NOTE: {n}")


def model_args(p: argparse.ArgumentParser, out: bool = True) -> None:
    from facet_lib.config import PRESETS

    if out:
        p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--preset",
        default=None,
        choices=list(PRESETS),
        help="named model/train settings (facet_lib/config/train.py); none: the dataclass defaults (the paper's)",
    )
    p.add_argument("--model", default=None, help="open_clip model name (ViT-B-16, facet-tiny, …); sets clip_model")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag, e.g. openai (needs internet)")
    p.add_argument("--checkpoint", default=None, help="local or s3:// CLIP weights (state dict / safetensors)")
    p.add_argument(
        "--prompts-file", default=None, help="labels/prompts YAML (local or s3://) replacing the packaged prompts"
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="start training from a bundle: a local bundle folder or s3://…/registry/NAME@ALIAS|/vNNNN (fine-tuning)",
    )
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="model/train overrides, e.g. epochs=5 head.cvsa=False train.seed=1 (`facet-vlm settings` lists the keys)",
    )
    p.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="let presets that need pretrained weights run on random ones (smoke tests only)",
    )
