"""The cross-validation report, written once for the CLI (``run_cv``) and the pipeline (``evaluate_step``).

Input: one folder per fold, as ``train_one_fold`` writes it (``fold.json`` + ``predictions.csv``).
Output: ``cv_table.csv`` (every fold and mode, mean/std/pooled), ``confusion.png`` (pooled),
``per_fold_accuracy.png``, ``summary.json``, ``report.md`` and ``report.html`` (self-contained).

Best fold (what ``register``/``export`` ship): the highest held-out accuracy in class-conditional
mode (ties: the lowest fold number). The reported CV score is the mean over all folds, not the best
fold's. No torch here.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pandas as pd

from facet_lib.errors import ConfigError
from facet_lib.eval.metrics import DEFINITIONS, cv_table, fold_rows, pooled_confusion
from facet_lib.eval.targets import backbone_note, comparison_table, with_reference_rows

MAIN_METRICS = ("accuracy", "macro_f1", "mean_class_acc")  # the report's rows; every metric: summary.json, cv_table.csv
RANDOM_WEIGHTS_NOTE = "random backbone weights: these numbers show the pipeline works, not the paper's accuracy"


def weights_note(weights: str) -> str | None:
    """The one note for results of a randomly initialised backbone (None for real weights)."""
    return RANDOM_WEIGHTS_NOTE if "random" in str(weights) else None


def best_fold(table: pd.DataFrame) -> int:
    cc = fold_rows(table)[lambda t: t["mode"] == "class_conditional"]
    cc = cc.assign(fold=cc["fold"].astype(int)).sort_values("fold")
    return int(cc.loc[cc["accuracy"].idxmax(), "fold"])


def read_folds(fold_dirs: list[str | Path]) -> tuple[list[dict], dict[int, pd.DataFrame]]:
    """Each fold folder's ``fold.json`` and its predictions, keyed by fold number."""
    infos, preds = [], {}
    for d in fold_dirs:
        meta, pred = Path(d) / "fold.json", Path(d) / "predictions.csv"
        if not meta.exists() or not pred.exists():
            raise ConfigError(f"{d}: not a trained fold (expected fold.json and predictions.csv)")
        info = json.loads(meta.read_text())
        infos.append(info)
        preds[int(info["fold"])] = pd.read_csv(pred, dtype={"subject": str, "label": str})
    if not infos:
        raise ConfigError("the CV report needs at least one trained fold")
    labels = infos[0]["labels"]
    for d, i in zip(fold_dirs, infos):
        if i["labels"] != labels:
            raise ConfigError(f"{d}: labels {i['labels']} differ from the first fold's {labels}")
    return infos, preds


def _mean(table: pd.DataFrame, mode: str, col: str, row: str = "mean") -> float:
    t = table[(table["mode"] == mode) & (table["fold"].astype(str) == row)]
    return float(t[col].iloc[0])


def headline(table: pd.DataFrame, context: dict, weights: str, baseline: pd.DataFrame | None) -> pd.DataFrame:
    """The report's main table (``eval.targets.comparison_table``): per metric ours (mean, std, pooled), the
    trivial baseline, the paper's number for ``context["protocol"]``/``["variant"]`` and the difference."""
    t = comparison_table(table, context.get("protocol"), weights, context.get("variant") or "full", baseline)
    return t.drop(columns=["mode"]).set_index("metric")


def _baseline(fold_dirs: list[str | Path], labels: list[str]) -> pd.DataFrame | None:
    """The trivial baseline's CV table, when every fold folder has its ``baseline_predictions.csv``."""
    files = [Path(d) / "baseline_predictions.csv" for d in fold_dirs]
    if not all(f.exists() for f in files):
        return None
    preds = {k: pd.read_csv(f, dtype={"subject": str, "label": str}) for k, f in enumerate(files)}
    return cv_table(preds, labels)


def _strict(x):
    """Strict JSON: a missing number (NaN) becomes null."""
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_strict(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


def _markdown(t: pd.DataFrame) -> list[str]:
    cols = [t.index.name or "", *t.columns]
    rows = [[str(i), *(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r)] for i, r in zip(t.index, t.values)]
    return ["| " + " | ".join(r) + " |" for r in [cols, ["---"] * len(cols), *rows]]


def _img(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" style="max-width:48%">'


def write_report(fold_dirs: list[str | Path], out: str | Path, context: dict | None = None) -> dict:
    """Write the CV report of ``fold_dirs`` into ``out``; returns the summary (also ``summary.json``).
    ``context``: what the run was (``variant``, ``protocol``, ``dataset``…), shown in the title and kept."""
    from facet_lib.eval.plots import confusion_plot, per_fold_plot

    context = dict(context or {})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    infos, preds = read_folds(fold_dirs)
    labels, weights = infos[0]["labels"], infos[0]["backbone_weights"]
    note = weights_note(weights)
    table, baseline = cv_table(preds, labels), _baseline(fold_dirs, labels)
    refs = with_reference_rows(table, context.get("protocol"), context.get("variant") or "full", baseline)
    refs.to_csv(out / "cv_table.csv", index=False)  # + paper, diff_to_paper and baseline_logreg rows
    full = headline(table, context, weights, baseline)
    # the weights note is printed once beside the table, not in every row (it stays in summary["comparison"])
    head = full.loc[[m for m in MAIN_METRICS if m in full.index]].drop(columns=["backbone_weights"])
    best = best_fold(table)
    by_fold = {int(i["fold"]): (i, str(d)) for i, d in zip(infos, fold_dirs)}
    name = context.get("variant") or "cross-validation"
    cm = pooled_confusion(preds, labels)
    title = f"{name}: pooled confusion over {len(preds)} folds" + (" (random backbone)" if note else "")
    confusion_plot(cm, labels, out / "confusion.png", title)
    per_fold_plot(table, out / "per_fold_accuracy.png", f"{name}: accuracy per held-out fold", chance=1 / len(labels))
    summary = {
        **context,
        "labels": labels,
        "folds": len(preds),
        "best_fold": best,
        "best_fold_dir": by_fold[best][1],
        "backbone_weights": weights,
        "note": note,
        "accuracy_mean": _mean(table, "class_conditional", "accuracy"),
        "accuracy_std": _mean(table, "class_conditional", "accuracy", "std"),
        "macro_f1_mean": _mean(table, "class_conditional", "macro_f1"),
        "label_free_accuracy_mean": _mean(table, "label_free", "accuracy"),
        "per_fold_accuracy": {str(f): by_fold[f][0]["metrics"]["accuracy"] for f in sorted(by_fold)},
        "confusion": cm.tolist(),
        "history": {str(f): by_fold[f][0].get("history", []) for f in sorted(by_fold)},
        "comparison": full.reset_index().to_dict("records"),
    }
    summary = _strict(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    lines = [
        f"# FACET-VLM {name}",
        "",
        f"Backbone weights: {weights}" + (f" — **{note}**" if note else ""),
        "",
        f"{len(preds)} subject-independent folds, labels {', '.join(labels)}; best fold {best} "
        "(highest class-conditional accuracy; the score is the mean over folds).",
        "",
        *_markdown(head),
        "",
        backbone_note(weights),
        "",
        *(f"- {k}: {v}" for k, v in DEFINITIONS.items()),
        "",
        "Every fold and mode: cv_table.csv; plots: confusion.png, per_fold_accuracy.png.",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    html = [
        f"<html><body><h1>FACET-VLM {name}</h1>",
        f"<p>Backbone weights: {weights}" + (f" — <b>{note}</b>" if note else "") + "</p>",
        f"<p>{len(preds)} folds; best fold {best} (highest class-conditional accuracy)</p>",
        head.round(4).to_html(),
        f"<p>{backbone_note(weights)}</p>",
        "<ul>" + "".join(f"<li>{k}: {v}</li>" for k, v in DEFINITIONS.items()) + "</ul>",
        _img(out / "confusion.png"),
        _img(out / "per_fold_accuracy.png"),
        table.round(4).to_html(index=False),
        "</body></html>",
    ]
    (out / "report.html").write_text("\n".join(html))
    return summary
