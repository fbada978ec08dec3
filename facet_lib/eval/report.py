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
from facet_lib.eval.targets import (
    PAPER_ROW,
    THIS_RUN,
    backbone_note,
    compared_note,
    compared_row,
    comparison_table,
    paper_target,
    published_note,
    standing,
    with_reference_rows,
)

# the report's rows (+ every metric the paper prints for the protocol); every metric: summary.json, cv_table.csv
MAIN_METRICS = ("accuracy", "macro_f1", "mean_class_recall", "acc_average")
STANDING_METRICS = ("accuracy", "macro_f1", "acc_average")  # the columns of the paper's tables of methods
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


def head_rows(full: pd.DataFrame) -> list[str]:
    """The report's main rows: ``MAIN_METRICS`` and every other metric the paper prints a value for."""
    printed = [m for m in full.index if m not in MAIN_METRICS and pd.notna(full.loc[m, "paper"])]
    return [m for m in MAIN_METRICS if m in full.index] + printed


def standings(protocol: str | None, ours: dict[str, float]) -> dict[str, pd.DataFrame]:
    """Per metric of ``STANDING_METRICS`` that the paper's tables carry for ``protocol``: this run among the
    published methods (``eval.targets.standing``)."""
    out = {m: standing(protocol, m, ours.get(m)) for m in STANDING_METRICS}
    return {m: t for m, t in out.items() if len(t) > 1}


def standing_lines(tables: dict[str, pd.DataFrame], html: bool = False, note: str | None = None) -> list[str]:
    """The "published methods" section of a report (markdown or HTML), with the comparability note and
    the random-weights ``note`` where it applies."""
    if not tables:
        return []
    out = ["<h2>Among the published methods</h2>" if html else "## Among the published methods", ""]
    for m, t in tables.items():
        rank = t.loc[t["method"] == THIS_RUN, "rank"].iloc[0]
        where = f"rank {rank:.0f} of {len(t)}" if pd.notna(rank) else "no value"
        table = t.loc[~t["method"].isin([THIS_RUN, PAPER_ROW]), "source"]
        caption = f"{m}: this run would be {where} ({table.iloc[0] if len(table) else 'the paper'})"
        caption += f" — {note}" if note else ""
        t = t.drop(columns=["source"])
        out += (
            [f"<p>{caption}</p>", t.round(4).to_html(index=False)]
            if html
            else [caption, "", *_markdown(t.set_index("rank")), ""]
        )
    pub = published_note()
    return out + [f"<p>{pub}</p>" if html else pub, ""]


def standing_records(tables: dict[str, pd.DataFrame]) -> dict[str, list[dict]]:
    """``standings`` as JSON-ready records (a missing rank or value: None)."""
    return {
        m: [
            {k: (None if pd.isna(v) else (int(v) if k == "rank" else v)) for k, v in r.items()}
            for r in t.to_dict("records")
        ]
        for m, t in tables.items()
    }


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
    infos, preds = read_folds(fold_dirs)
    return report_of_folds(infos, preds, fold_dirs, out, context)


def report_of_folds(
    infos: list[dict], preds: dict, fold_dirs: list[str | Path], out: str | Path, context: dict | None = None
) -> dict:
    """``write_report`` over folds already read (``read_folds(fold_dirs)``: their fold.json and predictions)."""
    from facet_lib.eval.plots import confusion_plot, per_fold_plot

    context = dict(context or {})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels, weights = infos[0]["labels"], infos[0]["backbone_weights"]
    note = weights_note(weights)
    table, baseline = cv_table(preds, labels), _baseline(fold_dirs, labels)
    refs = with_reference_rows(table, context.get("protocol"), context.get("variant") or "full", baseline)
    refs.to_csv(out / "cv_table.csv", index=False)  # + paper, diff_to_paper and baseline_logreg rows
    full = headline(table, context, weights, baseline)
    # the weights note is printed once beside the table, not in every row (it stays in summary["comparison"])
    head = full.loc[head_rows(full)].drop(columns=["backbone_weights", "compared"])
    row = compared_row(context.get("protocol"))  # 4DME: pooled (Table 5 is one set over all samples)
    places = standings(context.get("protocol"), full[f"ours_{row}"].to_dict())
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
        "compared_row": row,
        "comparison": full.reset_index().to_dict("records"),
        "standing": standing_records(places),
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
        compared_note(context.get("protocol")),
        "",
        backbone_note(weights),
        "",
        *standing_lines(places, note=note),
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
        f"<p>{compared_note(context.get('protocol'))}</p>",
        f"<p>{backbone_note(weights)}</p>",
        *standing_lines(places, html=True, note=note),
        "<ul>" + "".join(f"<li>{k}: {v}</li>" for k, v in DEFINITIONS.items()) + "</ul>",
        _img(out / "confusion.png"),
        _img(out / "per_fold_accuracy.png"),
        table.round(4).to_html(index=False),
        "</body></html>",
    ]
    (out / "report.html").write_text("\n".join(html))
    return summary


CROSS_METRICS = ("accuracy", "macro_f1", "mean_class_recall", "acc_average")


def write_cross_report(
    results: dict,
    out: str | Path,
    protocol: str | None,
    weights: str,
    variant: str = "full",
    baseline: dict | None = None,
) -> dict:
    """The single cross-dataset run's report beside the paper (Table 4(b) reports the target's classes,
    e.g. BP4D T1/T8 happy vs disgust): ``cross_summary.json`` and ``cross_report.md`` in ``out``.
    ``results``: scope (``target_classes``, ``source_classes``) → metrics, as ``run_cross`` computes them;
    ``baseline``: the same for the trivial baseline on the same split (``eval.baseline.baseline_cross``)."""
    out = Path(out)
    note, records = weights_note(weights), []
    for scope, m in results.items():
        for metric in CROSS_METRICS:
            paper, source = paper_target(protocol, metric, variant) if scope == "target_classes" else (None, "")
            if scope != "target_classes":
                source = "the paper reports the target's classes only (Table 4(b))"
            ours = float(m.get(metric, math.nan))
            diff = math.nan if paper is None else ours - float(paper)
            base = float((baseline or {}).get(scope, {}).get(metric, math.nan))
            records.append(
                {
                    "scope": scope,
                    "metric": metric,
                    "ours": ours,
                    "baseline_logreg": base,
                    "paper": math.nan if paper is None else float(paper),
                    "diff_to_paper": diff,
                    "paper_source": source,
                    "backbone_weights": backbone_note(weights),
                }
            )
    comp = pd.DataFrame(records)
    target = comp[comp["scope"] == "target_classes"].set_index("metric")
    places = standings(protocol, target["ours"].to_dict()) if len(target) else {}
    summary = _strict(
        {
            "protocol": protocol,
            "variant": variant,
            "backbone_weights": weights,
            "note": note,
            "comparison": target.drop(columns=["scope"]).reset_index().to_dict("records"),
            "scopes": comp.to_dict("records"),
            "standing": standing_records(places),
        }
    )
    (out / "cross_summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    lines = [
        f"# FACET-VLM cross-dataset test ({protocol}, {variant})",
        "",
        f"Backbone weights: {weights}" + (f" — **{note}**" if note else ""),
        "",
        *_markdown(comp.drop(columns=["backbone_weights"]).set_index("scope")),
        "",
        "baseline_logreg: the trivial baseline on the same split — a logistic regression on 32×32 grey views, "
        "fit on every source sample, tested on the same target samples and scopes (facet_lib/eval/baseline.py).",
        "",
        backbone_note(weights),
        "",
        *standing_lines(places, note=note),
        *(
            f"- {k}: {v}"
            for k, v in DEFINITIONS.items()
            if k in ("accuracy", "macro_f1", "acc_average", "mean_class_recall")
        ),
    ]
    (out / "cross_report.md").write_text("\n".join(lines) + "\n")
    return summary
