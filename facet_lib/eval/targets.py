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
THIS_RUN = "this run"
PAPER_ROW = "FACET-VLM (paper)"
ROW_KEYS = {"method", "ref", "metrics", "setting", "gap"}
# Which row of our CV table stands against the paper's number (``diff_to_paper`` and the published ranking):
# the mean over folds, except where the paper's table is one set of numbers over all samples — Table 5
# (4DME) is (docs/paper-notes.md #13), so there our ``pooled`` row (all folds' predictions scored at once).
COMPARED_ROW = {"4dme": "pooled"}
COMPARED_WHY = {
    "mean": "the mean over folds (the paper reports cross-validated means)",
    "pooled": "all folds' predictions scored at once (Table 5 is one set of numbers over all samples)",
}


def compared_row(protocol: str | None) -> str:
    """``mean`` or ``pooled``: the row of our CV table compared with the paper's number for ``protocol``."""
    return COMPARED_ROW.get(str(protocol), "mean")


def compared_note(protocol: str | None) -> str:
    """The sentence a report prints to say which of our rows ``diff_to_paper`` and the ranking use."""
    row = compared_row(protocol)
    return f"diff_to_paper and the published ranking compare our `{row}` row: {COMPARED_WHY[row]}."


def _fraction(v) -> bool:
    return v is None or (not isinstance(v, bool) and isinstance(v, (int, float)) and 0 <= v <= 1)


def _check_published(where: str, published) -> None:
    """``published.<protocol>``: ``{source, rows: [{method, ref, metrics: {name: fraction}, setting?, gap?}]}``."""
    if not isinstance(published, dict):
        raise ConfigError(f"{where}: 'published' must be a mapping of protocols")
    for proto, block in published.items():
        key = f"published.{proto}"
        if (
            not isinstance(block, dict)
            or not isinstance(block.get("source"), str)
            or not isinstance(block.get("rows"), list)
        ):
            raise ConfigError(f"{where}: {key}: expected {{source: text, rows: [...]}}")
        for i, row in enumerate(block["rows"]):
            rk = f"{key}.rows[{i}]"
            if not isinstance(row, dict) or not {"method", "ref", "metrics"} <= set(row) or not set(row) <= ROW_KEYS:
                raise ConfigError(f"{where}: {rk}: expected {{method, ref, metrics}} (+ setting, gap), got {row!r}")
            if not isinstance(row["method"], str) or isinstance(row["ref"], bool) or not isinstance(row["ref"], int):
                raise ConfigError(f"{where}: {rk}: 'method' must be a text and 'ref' the paper's citation number")
            if not isinstance(row["metrics"], dict) or not row["metrics"]:
                raise ConfigError(f"{where}: {rk}.metrics: expected a mapping of metric → fraction")
            for m, v in {**row["metrics"], **({"gap": row["gap"]} if "gap" in row else {})}.items():
                if v is None or not _fraction(v):
                    raise ConfigError(f"{where}: {rk}.{m}: expected a fraction in [0, 1], got {v!r}")


@lru_cache(maxsize=4)
def load_targets(path: str | None = None) -> dict:
    """The parsed and checked targets file; ``path`` overrides the packaged one.

    Every ``targets`` leaf is ``{value: float in [0, 1] or null, source: text}``; ``published`` rows and the
    ``no_counterpart`` reasons are checked too; anything else is refused with the file and key path named."""
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
                if not _fraction(v):
                    raise ConfigError(f"{where}: {key}.value: expected a fraction in [0, 1] or null, got {v!r}")
                if not isinstance(leaf["source"], str) or not leaf["source"].strip():
                    raise ConfigError(f"{where}: {key}.source: every value needs its source")
    _check_published(where, doc.setdefault("published", {}))
    reasons = doc.setdefault("no_counterpart", {})
    if not isinstance(reasons, dict) or not all(isinstance(v, str) and v.strip() for v in reasons.values()):
        raise ConfigError(f"{where}: 'no_counterpart' must map variant names to a reason (text)")
    if doc["published"] and not isinstance(doc.get("published_note"), str):
        raise ConfigError(f"{where}: 'published_note' must be a text (shown beside the published methods)")
    return doc


def paper_target(protocol: str | None, metric: str = "accuracy", variant: str = "full", path: str | None = None):
    """(value or None, source) of the paper's number for ``protocol``/``variant``/``metric``; for a variant
    with no counterpart in the paper (``no_counterpart``) the source is that reason."""
    doc = load_targets(path)
    variants = doc["targets"].get(str(protocol), {})
    if variant not in variants and variant in doc["no_counterpart"]:
        return None, doc["no_counterpart"][variant]
    leaf = variants.get(variant, {}).get(metric)
    if leaf is None and variants.get(variant):
        printed = ", ".join(variants[variant])
        return None, f"not printed: for {protocol} / {variant} the paper gives {printed} only"
    if leaf is None:
        return None, f"{MISSING} (protocol {protocol!r}, variant {variant!r}, metric {metric!r})"
    return leaf["value"], leaf["source"]


def published_rows(protocol: str | None, path: str | None = None) -> tuple[list[dict], str]:
    """The published baseline rows of ``protocol`` (as printed in Tables 2-5) and their table."""
    block = load_targets(path)["published"].get(str(protocol))
    return (
        ([], f"no published baselines for protocol {protocol!r}") if block is None else (block["rows"], block["source"])
    )


def standing(protocol: str | None, metric: str, ours: float | None, path: str | None = None) -> pd.DataFrame:
    """Where a run would stand among the published methods on ``metric``: the paper's baseline rows, the
    paper's FACET-VLM and ``this run`` (``ours``), best first, with their rank (1 = best). Empty when the
    paper prints no method with this metric for ``protocol``."""
    rows, table = published_rows(protocol, path)
    out = [
        {
            "method": r["method"],
            "ref": r["ref"],
            "setting": r.get("setting", ""),
            "value": r["metrics"][metric],
            "source": table,
        }
        for r in rows
        if r["metrics"].get(metric) is not None
    ]
    value, source = paper_target(protocol, metric, "full", path)
    if value is not None:
        out.append({"method": PAPER_ROW, "ref": "", "setting": "", "value": value, "source": source})
    if not out:
        return pd.DataFrame(columns=["rank", "method", "ref", "setting", "value", "source"])
    ours = math.nan if ours is None else float(ours)
    out.append({"method": THIS_RUN, "ref": "", "setting": "", "value": ours, "source": "this run"})
    t = pd.DataFrame(out).sort_values("value", ascending=False, kind="stable", na_position="last")
    t.insert(0, "rank", t["value"].rank(ascending=False, method="min").astype("Int64"))
    return t.reset_index(drop=True)


def published_note(path: str | None = None) -> str:
    """The comparability note shown beside every table of published methods."""
    return str(load_targets(path).get("published_note", ""))


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
    ours − paper (our ``compared_row(protocol)`` row, named in ``compared``), the paper's source and the
    backbone-weights note. ``table`` and ``baseline`` are CV tables
    (``facet_lib.eval.metrics.cv_table``)."""

    def summary(t: pd.DataFrame | None) -> dict:
        if t is None:
            return {}
        t = t[t["mode"] == mode].set_index(t[t["mode"] == mode]["fold"].astype(str))
        return {row: t.loc[row] for row in ("mean", "std", "pooled") if row in t.index}

    ours, base = summary(table), summary(baseline)
    metrics = [c for c in table.columns if c not in ("mode", "fold", "n")]
    note = backbone_note(weights, path)
    row = compared_row(protocol)
    rows = []
    for m in metrics:
        paper, source = paper_target(protocol, m, variant, path)
        mean = float(ours["mean"][m]) if "mean" in ours else math.nan
        compared = float(ours[row][m]) if row in ours else math.nan
        rows.append(
            {
                "metric": m,
                "mode": mode,
                "ours_mean": mean,
                "ours_std": float(ours["std"][m]) if "std" in ours else math.nan,
                "ours_pooled": float(ours["pooled"][m]) if "pooled" in ours else math.nan,
                "baseline_logreg": float(base["mean"][m]) if "mean" in base and m in base["mean"] else math.nan,
                "paper": math.nan if paper is None else float(paper),
                "compared": row,
                "diff_to_paper": math.nan if paper is None else compared - float(paper),
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
    number per metric column, NaN where it gives none) and a ``diff_to_paper`` row (our
    ``compared_row(protocol)`` row − paper: the mean, or for 4DME the pooled row), and the trivial
    baseline's ``mean``/``std``/``pooled`` rows under mode ``baseline_logreg``."""
    metrics = [c for c in table.columns if c not in ("mode", "fold", "n")]
    row = compared_row(protocol)
    extra = []
    for mode in table["mode"].unique():
        mean = table[(table["mode"] == mode) & (table["fold"].astype(str) == row)]
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


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def paper_metrics(
    comparison: list[dict], standings: dict[str, list[dict]] | None = None, main: str = "accuracy"
) -> tuple[dict[str, float], dict[str, str]]:
    """From a report summary's ``comparison`` (and ``standing``) records: the KFP ``Metrics`` values (finite
    numbers only) — ``paper_<m>`` and ``diff_to_paper_<m>`` for every metric the paper prints,
    ``baseline_logreg_<m>`` for those and ``main``, ``published_rank_<m>``/``published_count_<m>`` (this run
    among the published methods, 1 = best) — and the metadata that goes with them (``paper_source`` of
    ``main``, ``paper_source_<m>``, the ``paper_note`` on backbone weights, the ``published_note``)."""
    values: dict[str, float] = {}
    meta: dict[str, str] = {}
    rows = {r.get("metric"): r for r in comparison}
    if main not in rows:
        meta["paper_source"] = f"no '{main}' in the report's comparison"
    for m, row in rows.items():
        has_paper = _finite(row.get("paper"))
        if has_paper:
            values[f"paper_{m}"] = float(row["paper"])
            meta[f"paper_source_{m}"] = str(row.get("paper_source", ""))
            if _finite(row.get("diff_to_paper")):
                values[f"diff_to_paper_{m}"] = float(row["diff_to_paper"])
        if (has_paper or m == main) and _finite(row.get("baseline_logreg")):
            values[f"baseline_logreg_{m}"] = float(row["baseline_logreg"])
        if m == main:
            meta["paper_source"] = str(row.get("paper_source", ""))
            meta["paper_note"] = str(row.get("backbone_weights", ""))
    for m, table in (standings or {}).items():
        ours = next((r for r in table if r.get("method") == THIS_RUN), None)
        if ours is not None and _finite(ours.get("rank")):
            values[f"published_rank_{m}"] = float(ours["rank"])
            values[f"published_count_{m}"] = float(len(table))
    if standings:
        meta["published_note"] = published_note()
    return values, meta
