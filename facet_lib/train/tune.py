"""The λ search of §3.4: "we set λ_FACET = 0.1 based on grid search on a validation split".

Inside each CV training part (every fold but the test fold) a seeded share of the *subjects* is held out
as the validation split (subject-independent, like the folds); for every λ of the grid the model trains on
the rest and is scored on that split. The test fold is never touched. Outputs: one ``point-*.json`` per
(fold, λ), then ``tune_table.csv`` (fold × λ, with the mean and the majority-class baseline),
``tune_selected.json`` (the selected λ per fold and for the mean, beside the paper's 0.1),
``tune_plot.png`` and ``tune_report.md`` / ``tune_report.html``. The paper does not print its grid or its
validation scores; ``TuneConfig.grid`` is ours. Ties go to the λ first in the grid.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facet_lib.config import TuneConfig, to_params  # noqa: E402
from facet_lib.data.folds import split  # noqa: E402
from facet_lib.errors import ConfigError  # noqa: E402
from facet_lib.eval.metrics import fold_metrics  # noqa: E402
from facet_lib.eval.report import weights_note  # noqa: E402
from facet_lib.train import shared  # noqa: E402  (shared.fit_and_score: the body shared with a CV fold)

PAPER_LAMBDA = 0.1  # §3.4


def validation_split(rows: pd.DataFrame, fold: int, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation) inside fold ``fold``'s training part: validation = a seeded share of
    its subjects (at least one, and at least one left to train on); the test fold is excluded entirely."""
    tr, _ = split(rows.assign(fold=rows["fold"].astype(int)), fold)
    subjects = sorted(set(tr["subject"]))
    if len(subjects) < 2:
        raise ConfigError(f"fold {fold}: {len(subjects)} training subject(s); a validation split needs >= 2")
    n_val = min(len(subjects) - 1, max(1, round(val_frac * len(subjects))))
    held = set(np.random.default_rng([seed, fold]).choice(subjects, n_val, replace=False).tolist())
    is_val = tr["subject"].isin(held).to_numpy()
    return tr.index.to_numpy()[~is_val], tr.index.to_numpy()[is_val]


def _point_name(fold: int, lam: float) -> str:
    return f"point-fold{fold}-lam{lam:g}.json"


def point_fingerprint(runner, data, tune: TuneConfig, tcfg, tr_idx: np.ndarray, val_idx: np.ndarray) -> dict:
    """Everything a point's score depends on: the model/train settings (λ included), the split settings, the
    backbone weights, the render digest, the samples (ids, labels, folds) and the validation subjects.
    A point on disk is reused only when its fingerprint equals this one."""
    rows = data.rows
    cols = [c for c in ("sample_id", "subject", "label", "fold") if c in rows]
    samples = hashlib.sha256(rows[cols].astype(str).to_csv(index=False).encode()).hexdigest()
    ident = {
        "model": to_params(runner.model_cfg),
        "train": to_params(tcfg),
        "tune": {"val_frac": float(tune.val_frac), "seed": int(tune.seed)},
        "backbone_weights": runner.weights,
        "render_digest": data.render_digest,
        "labels": list(data.labels),
        "samples_sha256": samples,
        "train_samples": len(tr_idx),
        "val_subjects": sorted(set(rows["subject"].iloc[val_idx].astype(str))),
    }
    key = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()
    return {"key": key, **ident}


def tune_point(runner, data, fold: int, lam: float, tune: TuneConfig, out: str | Path) -> dict:
    """Train fold ``fold``'s training part minus its validation subjects with λ = ``lam`` and score the
    validation split. A point already written is read back (a rerun resumes) only when its fingerprint
    (``point_fingerprint``) matches; otherwise it is recomputed and the reason logged."""
    out = Path(out)
    path = out / _point_name(fold, lam)
    tr_idx, val_idx = validation_split(data.rows, fold, tune.val_frac, tune.seed)
    tcfg = dataclasses.replace(runner.train_cfg, lam=float(lam))
    fp = point_fingerprint(runner, data, tune, tcfg, tr_idx, val_idx)
    work = out / path.stem
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("fingerprint", {}).get("key") == fp["key"]:
            return old
        changed = sorted(k for k in fp if k != "key" and old.get("fingerprint", {}).get(k) != fp[k])
        print(f"{path.name}: written with other settings/data ({', '.join(changed) or 'no fingerprint'}); recomputing")
        (work / "checkpoint.pt").unlink(missing_ok=True)  # a checkpoint of the old settings must not resume
    _, _, preds = shared.fit_and_score(
        runner,
        data,
        tr_idx,
        val_idx,
        runner.model_cfg,
        tcfg,
        work / "checkpoint.pt",
        f"tune fold {fold} lambda={lam:g}",
    )
    m = fold_metrics(preds, data.labels)
    train_labels = data.rows["label"].iloc[tr_idx]
    majority = float((data.rows["label"].iloc[val_idx] == train_labels.mode().iloc[0]).mean())
    rec = {
        "fold": fold,
        "lam": float(lam),
        "accuracy": float(m["accuracy"]),
        "macro_f1": float(m["macro_f1"]),
        "majority_accuracy": majority,  # the trivial baseline: the training part's most frequent label
        "train_samples": len(tr_idx),
        "val_samples": len(val_idx),
        "val_subjects": fp["val_subjects"],
        "backbone_weights": runner.weights,
        "fingerprint": fp,
    }
    path.write_text(json.dumps(rec, indent=1))
    (work / "checkpoint.pt").unlink(missing_ok=True)
    return rec


def run_tune(
    runner, data, out: str | Path, tune: TuneConfig, folds: list[int] | None = None, grid: list[float] | None = None
) -> list[dict]:
    """Every (fold, λ) point of the grid (``grid`` overrides ``tune.grid``, e.g. one λ per pipeline task)."""
    if "fold" not in data.rows:
        raise ConfigError("the lambda search needs folds (pass a folds file)")
    tune = dataclasses.replace(tune, grid=tuple(float(v) for v in grid)) if grid else tune  # validated there
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fold_ids = sorted(int(f) for f in data.rows["fold"].unique()) if folds is None else folds
    return [tune_point(runner, data, f, lam, tune, out) for lam in tune.grid for f in fold_ids]


def read_points(dirs: list[str | Path]) -> list[dict]:
    pts = [json.loads(p.read_text()) for d in dirs for p in sorted(Path(d).glob("point-*.json"))]
    if not pts:
        raise ConfigError(f"no lambda-search points (point-*.json) in {[str(d) for d in dirs]}")
    return pts


def tune_report(points: list[dict], out: str | Path, metric: str = "accuracy", grid: list[float] | None = None) -> dict:
    """The grid table, the selected λ (per fold and for the mean over folds), the plot and the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(points)
    order = list(dict.fromkeys(grid or sorted(df["lam"].tolist())))
    table = df.pivot_table(index="fold", columns="lam", values=metric).reindex(columns=order)
    table.loc["mean"] = table.mean()
    base = df.groupby("fold")["majority_accuracy"].first()
    table["majority_baseline"] = [*base.reindex(table.index[:-1]).tolist(), float(base.mean())]
    table.to_csv(out / "tune_table.csv")
    lam_cols = table[order]
    per_fold = {int(f): float(lam_cols.loc[f].idxmax()) for f in lam_cols.index[:-1]}
    weights = str(df["backbone_weights"].iloc[0])
    selected = {
        "metric": f"validation {metric} (class-conditional)",
        "per_fold": per_fold,
        "best_mean_lam": float(lam_cols.loc["mean"].idxmax()),
        "best_mean_value": float(lam_cols.loc["mean"].max()),
        "paper_lam": PAPER_LAMBDA,
        "grid": [float(v) for v in order],
        "backbone_weights": weights,
        "note": weights_note(weights) or "",
        "tie_rule": "equal scores: the lambda first in the grid"
        + ("" if grid else " (no grid given: ascending lambda)"),
    }
    (out / "tune_selected.json").write_text(json.dumps(selected, indent=1))
    _plot(lam_cols, float(base.mean()), out / "tune_plot.png", metric)
    _write_report(table, selected, out)
    return {"table": table, **selected}


def _plot(table: pd.DataFrame, baseline: float, path: Path, metric: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = [float(c) for c in table.columns]
    for f in table.index[:-1]:
        ax.plot(xs, table.loc[f], marker="o", alpha=0.5, label=f"fold {f}")
    ax.plot(xs, table.loc["mean"], marker="s", color="black", lw=2, label="mean")
    ax.axvline(PAPER_LAMBDA, ls="--", color="tab:red", label="paper: 0.1")
    ax.axhline(baseline, ls=":", color="grey", label="majority class")
    ax.set(xscale="symlog", xlabel="lambda (consistency weight, eq. 25)", ylabel=f"validation {metric}")
    ax.set_xscale("symlog", linthresh=min([x for x in xs if x > 0] or [0.01]))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_report(table: pd.DataFrame, sel: dict, out: Path) -> None:
    lines = [
        "# Lambda search (section 3.4: grid search on a validation split)",
        "",
        f"Selected by {sel['metric']} on a subject-independent validation split inside each training fold; "
        f"the test folds are not used. The paper then fixes lambda = {sel['paper_lam']} and prints neither its "
        "grid nor its validation scores. Equal scores go to the lambda first in the grid.",
        "",
        table.round(4).to_markdown(),
        "",
        f"Selected per fold: {sel['per_fold']}; best mean: lambda = {sel['best_mean_lam']:g} "
        f"({sel['best_mean_value']:.4f}); paper: {sel['paper_lam']}.",
    ]
    if sel["note"]:
        lines += ["", f"NOTE: {sel['note']}"]
    md = "\n".join(lines) + "\n"
    (out / "tune_report.md").write_text(md)
    body = table.round(4).to_html()
    img = base64.b64encode((out / "tune_plot.png").read_bytes()).decode()  # one self-contained file (KFP HTML)
    note = f"<p><b>NOTE:</b> {html.escape(sel['note'])}</p>" if sel["note"] else ""
    (out / "tune_report.html").write_text(
        "<!doctype html><meta charset=utf-8><title>lambda search</title>"
        f"<h1>Lambda search (section 3.4)</h1><p>{html.escape(lines[2])}</p>{body}"
        f"<p>Selected per fold: {html.escape(str(sel['per_fold']))}; best mean: lambda = "
        f"{sel['best_mean_lam']:g}; paper: {sel['paper_lam']}.</p>{note}"
        f'<img alt="validation score against lambda" src="data:image/png;base64,{img}">'
    )
