"""The release half: the CV report over the trained folds, the serving bundle of one fold, and its
registration with provenance (``facet_lib.provenance``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from facet_lib.config import to_dict, to_params
from facet_lib.config.deploy import DEFAULT_ALIAS
from facet_lib.errors import ConfigError
from facet_lib.provenance import dedup_key, git_commit
from facet_lib.steps.common import configs, make_runner, timed


@timed
def evaluate_step(fold_dirs: list[str], out: str | Path, context: dict | None = None) -> dict:
    """Fan-in over folds: the CV report (``facet_lib.eval.report``: table, best fold, plots, HTML)."""
    from facet_lib.eval.report import write_report

    return write_report(fold_dirs, out, context)


def views_render(views_dir: str | Path) -> tuple[dict, str]:
    """A rendered dataset's settings and digest, read from its manifest only (no views are loaded)."""
    from facet_lib.render.dataset import RenderedDataset

    m = RenderedDataset(views_dir, verify=False).manifest
    return m["render_config"], m["config_digest"]


def read_fold(fold_dir: str | Path) -> dict:
    p = Path(fold_dir) / "fold.json"
    if not p.exists():
        raise ConfigError(f"{fold_dir}: not a trained fold (no fold.json)")
    return json.loads(p.read_text())


@timed
def export_step(fold_dir: str | Path, views_dir: str | Path, out: str | Path, extra: dict | None = None) -> dict:
    """Write the serving bundle of one trained fold: the backbone plus the fold's trainable weights, with the
    labels and settings it was trained with (``fold.json``) and the render settings of ``views_dir`` (its
    manifest; the views themselves are not loaded). Returns {"digest", "model", "train", "render", "fold"}."""
    from safetensors.torch import load_file

    from facet_lib.bundle import save_bundle
    from facet_lib.data.labels import model_prompts
    from facet_lib.train.loop import load_trainable_state

    info = read_fold(fold_dir)
    render, digest = views_render(views_dir)
    if info.get("render_digest", digest) != digest:
        raise ConfigError(
            f"{views_dir}: rendered with settings {digest}, but fold {info['fold']} in {fold_dir} was trained on "
            f"{info['render_digest']}"
        )
    mcfg, tcfg = configs(info["model"], info["train"])
    labels = info["labels"]
    with tempfile.TemporaryDirectory() as cache:
        model = make_runner(mcfg, tcfg, cache).model(mcfg)
    load_trainable_state(model, load_file(Path(fold_dir) / "trainable.safetensors"))
    bank = model.build_text_bank(labels, model_prompts(mcfg, labels))
    meta = {"fold": info["fold"], "train": to_params(tcfg), "metrics": info["metrics"], **(extra or {})}
    bundle_digest = save_bundle(out, model.cpu(), bank, render, meta)
    return {"digest": bundle_digest, "model": to_dict(mcfg), "train": to_dict(tcfg), "render": render, **meta}


@timed
def register_step(
    views_dir: str | Path,
    fold_dir: str | Path,
    registry: str,
    name: str,
    run_id: str,
    metrics: dict,
    provenance: dict,
    bundle_out: str | Path,
    alias: str = DEFAULT_ALIAS,
) -> dict:
    """Build the bundle of the chosen fold (``export_step``: labels and settings from its fold.json, render
    settings from the views manifest — memory does not grow with the dataset) and register it."""
    from facet_lib.registry import register

    b = export_step(fold_dir, views_dir, bundle_out, {"metrics": metrics})
    prov = {**provenance, "git_commit": provenance.get("git_commit") or git_commit(), "bundle_digest": b["digest"]}
    params = {"model": b["model"], "train": b["train"], "render": b["render"]}
    key = dedup_key(prov, params)
    return register(bundle_out, registry, name, run_id, metrics, params, prov, alias=alias or None, dedup_key=key)


SUMMARY_METRICS = ("accuracy_mean", "accuracy_std", "macro_f1_mean", "label_free_accuracy_mean")


@timed
def evaluate_folds(
    fold_dirs: list[str], index_dir: str | Path, out: str | Path, report_html: str | Path | None = None
) -> dict:
    """The pipeline's fan-in over folds: ``evaluate_step`` with the dataset, protocol and counts of the
    ingest folder ``index_dir`` (so the report shows the paper's figure where the paper has one), the HTML
    report also copied to ``report_html``. Returns the report summary plus ``scalars`` (name → finite
    number: the summary's means, each fold's accuracy, the paper's numbers, the trivial baseline and this
    run's standing among the published methods) and ``scalar_notes`` (where those come from)."""
    import shutil

    from facet_lib.eval.targets import paper_metrics

    ingest = json.loads((Path(index_dir) / "ingest.json").read_text())
    s = evaluate_step(fold_dirs, out, {k: ingest[k] for k in ("dataset", "protocol", "samples", "subjects")})
    scalars = {k: s[k] for k in SUMMARY_METRICS}
    scalars.update({f"fold{fold}_accuracy": acc for fold, acc in s["per_fold_accuracy"].items()})
    paper, paper_notes = paper_metrics(s.get("comparison", []), s.get("standing"))
    if report_html:
        shutil.copy(Path(out) / "report.html", report_html)
    return {
        **s,
        "scalars": {**scalars, **paper},
        "scalar_notes": {"backbone_weights": s["backbone_weights"], **paper_notes},
    }


@timed
def register_best(
    views_dir: str | Path,
    index_dir: str | Path,
    fold_dirs: list[str],
    best_fold: int,
    cv_dir: str | Path,
    registry: str,
    name: str,
    run_id: str,
    fingerprint: str,
    bundle_out: str | Path,
    alias: str = DEFAULT_ALIAS,
) -> dict:
    """The pipeline's registration: the fold ``best_fold`` among ``fold_dirs`` bundled and registered
    (``register_step``) with the CV summary's metrics (``cv_dir``) and the run's provenance
    (``facet_lib.provenance.run_provenance`` of the ingest folder). The same data, folds, settings and code
    as a registered version registers nothing new (``reused``) and leaves the alias where it is."""
    from facet_lib.provenance import run_provenance

    chosen = [d for d in fold_dirs if read_fold(d)["fold"] == best_fold]
    if not chosen:
        raise ConfigError(
            f"best fold {best_fold}: not among the trained folds {[read_fold(d)['fold'] for d in fold_dirs]}"
        )
    summary = json.loads((Path(cv_dir) / "summary.json").read_text())
    metrics = {**{k: summary[k] for k in SUMMARY_METRICS}, "fold": best_fold}
    prov = run_provenance(index_dir, fingerprint, best_fold)
    info = register_step(views_dir, chosen[0], registry, name, run_id or "manual", metrics, prov, bundle_out, alias)
    print(f"{'already registered (same data, settings, code): ' if info.get('reused') else 'registered '}{info['uri']}")
    return info
