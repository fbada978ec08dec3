"""The paper's published numbers (``configs/paper_targets.yaml``) beside ours: lookup by protocol and
variant, and the ``paper`` column / ``diff_to_paper`` every report shows with the backbone-weights note.

No torch here (the evaluate step and the report import it)."""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from facet_lib.errors import ConfigError

PACKAGED = "paper_targets.yaml"
MISSING = "not in paper_targets.yaml"


@lru_cache(maxsize=4)
def load_targets(path: str | None = None) -> dict:
    """The parsed and checked targets file; ``path`` overrides the packaged one.

    Every leaf is ``{value: float in [0, 1] or null, source: text}``; anything else is refused with the
    file and the key path named."""
    where = path or f"facet_lib/configs/{PACKAGED}"
    text = Path(path).read_text() if path else resources.files("facet_lib.configs").joinpath(PACKAGED).read_text()
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("targets"), dict):
        raise ConfigError(f"{where}: expected a mapping with a 'targets' mapping")
    if not isinstance(doc.get("backbone_note"), str):
        raise ConfigError(f"{where}: 'backbone_note' must be a text")
    for proto, variants in doc["targets"].items():
        if not isinstance(variants, dict):
            raise ConfigError(f"{where}: targets.{proto}: expected a mapping of variants")
        for variant, metrics in variants.items():
            if not isinstance(metrics, dict):
                raise ConfigError(f"{where}: targets.{proto}.{variant}: expected a mapping of metrics")
            for metric, leaf in metrics.items():
                key = f"targets.{proto}.{variant}.{metric}"
                if not isinstance(leaf, dict) or set(leaf) != {"value", "source"}:
                    raise ConfigError(f"{where}: {key}: expected {{value: number or null, source: text}}")
                v = leaf["value"]
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
                    raise ConfigError(f"{where}: {key}.value: expected a fraction in [0, 1] or null, got {v!r}")
                if not isinstance(leaf["source"], str) or not leaf["source"].strip():
                    raise ConfigError(f"{where}: {key}.source: every value needs its source")
    return doc


def paper_target(protocol: str | None, metric: str = "accuracy", variant: str = "full", path: str | None = None):
    """(value or None, source) of the paper's number for ``protocol``/``variant``/``metric``."""
    doc = load_targets(path)
    leaf = doc["targets"].get(str(protocol), {}).get(variant, {}).get(metric)
    if leaf is None:
        return None, f"{MISSING} (protocol {protocol!r}, variant {variant!r}, metric {metric!r})"
    return leaf["value"], leaf["source"]


def backbone_note(weights: str, path: str | None = None) -> str:
    """The note printed next to every paper column: our backbone's weights and what the paper used."""
    return f"ours: backbone weights {weights}; {load_targets(path)['backbone_note']}"


def comparison_table(
    table: pd.DataFrame,
    protocol: str | None,
    weights: str,
    variant: str = "full",
    baseline: pd.DataFrame | None = None,
    mode: str = "class_conditional",
    path: str | None = None,
) -> pd.DataFrame:
    """One row per metric: ours (mean ± std over folds, pooled), the trivial baseline, the paper's number,
    ours − paper, the paper's source and the backbone-weights note. ``table`` and ``baseline`` are CV tables
    (``facet_lib.eval.metrics.cv_table``)."""

    def summary(t: pd.DataFrame | None) -> dict:
        if t is None:
            return {}
        t = t[t["mode"] == mode].set_index(t[t["mode"] == mode]["fold"].astype(str))
        return {row: t.loc[row] for row in ("mean", "std", "pooled") if row in t.index}

    ours, base = summary(table), summary(baseline)
    metrics = [c for c in table.columns if c not in ("mode", "fold", "n")]
    note = backbone_note(weights, path)
    rows = []
    for m in metrics:
        paper, source = paper_target(protocol, m, variant, path)
        mean = float(ours["mean"][m]) if "mean" in ours else math.nan
        rows.append(
            {
                "metric": m,
                "mode": mode,
                "ours_mean": mean,
                "ours_std": float(ours["std"][m]) if "std" in ours else math.nan,
                "ours_pooled": float(ours["pooled"][m]) if "pooled" in ours else math.nan,
                "baseline_logreg": float(base["mean"][m]) if "mean" in base and m in base["mean"] else math.nan,
                "paper": math.nan if paper is None else float(paper),
                "diff_to_paper": math.nan if paper is None else mean - float(paper),
                "paper_source": source,
                "backbone_weights": note,
            }
        )
    return pd.DataFrame(rows)


def with_paper_column(
    summary: pd.DataFrame, protocol: str | None, weights: str, metric: str = "accuracy", path: str | None = None
) -> pd.DataFrame:
    """A per-variant table (index = variant names, e.g. the ablation table) with ``paper``, ``diff_to_paper``
    (on ``metric``), ``paper_source`` and the backbone-weights note added as columns."""
    out = summary.copy()
    vals = [paper_target(protocol, metric, str(v), path) for v in out.index]
    out["paper"] = [math.nan if v is None else float(v) for v, _ in vals]
    out["diff_to_paper"] = out[metric] - out["paper"]
    out["paper_source"] = [s for _, s in vals]
    out["backbone_weights"] = backbone_note(weights, path)
    return out


def with_reference_rows(
    table: pd.DataFrame,
    protocol: str | None,
    variant: str = "full",
    baseline: pd.DataFrame | None = None,
    path: str | None = None,
) -> pd.DataFrame:
    """The CV table as written to ``cv_table.csv``: plus, per inference mode, a ``paper`` row (the paper's
    number per metric column, NaN where it gives none) and a ``diff_to_paper`` row (our mean − paper),
    and the trivial baseline's ``mean``/``std``/``pooled`` rows under mode ``baseline_logreg``."""
    metrics = [c for c in table.columns if c not in ("mode", "fold", "n")]
    extra = []
    for mode in table["mode"].unique():
        mean = table[(table["mode"] == mode) & (table["fold"].astype(str) == "mean")]
        paper = {m: paper_target(protocol, m, variant, path)[0] for m in metrics}
        paper = {m: math.nan if v is None else float(v) for m, v in paper.items()}
        extra.append({"mode": mode, "fold": "paper", **paper})
        if len(mean):
            extra.append({"mode": mode, "fold": "diff_to_paper", **{m: mean[m].iloc[0] - paper[m] for m in metrics}})
    if baseline is not None:
        b = baseline[
            (baseline["mode"] == "class_conditional") & baseline["fold"].astype(str).isin(["mean", "std", "pooled"])
        ]
        extra += [{**r, "mode": "baseline_logreg"} for r in b.to_dict("records")]
    return pd.concat([table, pd.DataFrame(extra)], ignore_index=True)


def paper_metrics(comparison: list[dict], metric: str = "accuracy") -> tuple[dict[str, float], dict[str, str]]:
    """From a report summary's ``comparison`` records: the KFP ``Metrics`` values (finite numbers only:
    ``paper_<metric>``, ``diff_to_paper_<metric>``, ``baseline_logreg_<metric>``) and the metadata that goes
    with them (``paper_source``, ``backbone_weights`` note)."""
    row = next((r for r in comparison if r.get("metric") == metric), None)
    if row is None:
        return {}, {"paper_source": f"no '{metric}' in the report's comparison"}
    values = {
        f"paper_{metric}": row.get("paper"),
        f"diff_to_paper_{metric}": row.get("diff_to_paper"),
        f"baseline_logreg_{metric}": row.get("baseline_logreg"),
    }
    finite = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    meta = {"paper_source": str(row.get("paper_source", "")), "paper_note": str(row.get("backbone_weights", ""))}
    return finite, meta
