"""The paper's Fig. 4: accuracy differences between the FACET-VLM variants over the six settings of §4.4,
gathered from several ablation runs (one per setting) into one heatmap beside the paper's values.

Columns (§4.4.2: "the first three columns represent improvements of the full FACET-VLM model over its
ablated variants, while the last three columns compare the relative influence of individual components"):
full − no_cvsa, full − no_mtgf, full − no_consistency, then no_mtgf − no_cvsa, no_consistency − no_cvsa,
no_consistency − no_mtgf. The figure is an image whose labels are not in the text; this order and the
pairs of the last three columns are our reading (docs/paper-notes.md). Values in percentage points.
The paper's cells come from ``configs/paper_targets.yaml`` (§4.4.1 and §4.4.2), empty where it prints
no value for both variants. No torch here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from facet_lib.errors import ConfigError
from facet_lib.eval.targets import paper_target

SETTINGS = {  # protocol → the row label of Figs. 3-4, in the paper's order
    "bu3dfe-I": "BU-3DFE (Subset I)",
    "bu3dfe-II": "BU-3DFE (Subset II)",
    "bosphorus": "Bosphorus",
    "bu4dfe": "BU-4DFE",
    "bp4d": "BP4D (Recognition)",
    "bp4d-cross": "BP4D (Cross-Dataset)",
}
COLUMNS = (
    ("full", "no_cvsa"),
    ("full", "no_mtgf"),
    ("full", "no_consistency"),
    ("no_mtgf", "no_cvsa"),
    ("no_consistency", "no_cvsa"),
    ("no_consistency", "no_mtgf"),
)
META = "ablation_meta.json"  # written next to ablation_table.csv: which protocol and weights the run had


def write_ablation_meta(out: str | Path, protocol: str | None, weights: str) -> Path:
    """Record the setting of an ablation run, so ``fig4`` can place it without being told."""
    path = Path(out) / META
    path.write_text(json.dumps({"protocol": protocol, "backbone_weights": weights}))
    return path


def column_name(a: str, b: str) -> str:
    return f"{a} − {b}"


def _run(spec: str) -> tuple[str, Path]:
    """``SETTING=DIR`` or ``DIR`` (its ``ablation_meta.json`` names the setting)."""
    setting, sep, folder = spec.partition("=")
    if not sep:
        folder, setting = spec, ""
    folder = Path(folder)
    if not (folder / "ablation_table.csv").exists():
        raise ConfigError(f"{folder}: not an ablation run (expected ablation_table.csv; run cv/cross --ablations)")
    if not setting:
        meta = folder / META
        setting = json.loads(meta.read_text()).get("protocol") if meta.exists() else None
        if not setting:
            raise ConfigError(f"{folder}: the run does not say its setting; pass it as SETTING={folder}")
    if setting not in SETTINGS:
        raise ConfigError(f"{spec}: setting '{setting}' is not one of Fig. 4's {list(SETTINGS)}")
    return setting, folder


def fig4_table(runs: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Long table, one row per setting × column: ours, paper, ours − paper (percentage points) and the
    paper's source; plus the backbone-weights notes of the runs. ``runs``: ``SETTING=DIR`` or ``DIR``."""
    if not runs:
        raise ConfigError("fig4: give at least one ablation run folder")
    placed: dict[str, Path] = {}
    for spec in runs:
        setting, folder = _run(spec)
        if setting in placed:
            raise ConfigError(f"fig4: two runs for setting '{setting}': {placed[setting]} and {folder}")
        placed[setting] = folder
    rows, notes = [], []
    for setting in [s for s in SETTINGS if s in placed]:
        t = pd.read_csv(placed[setting] / "ablation_table.csv", index_col="variant")
        if "accuracy" not in t.columns:
            raise ConfigError(f"{placed[setting]}/ablation_table.csv: no 'accuracy' column")
        if "backbone_weights" in t.columns and len(t):
            notes.append(f"{setting}: {t['backbone_weights'].iloc[0]}")
        acc = t["accuracy"].to_dict()
        for a, b in COLUMNS:
            ours = 100 * (acc[a] - acc[b]) if a in acc and b in acc else math.nan
            (pa, sa), (pb, sb) = paper_target(setting, variant=a), paper_target(setting, variant=b)
            paper = math.nan if pa is None or pb is None else round(100 * (pa - pb), 4)
            source = (
                f"{100 * pa:.2f} ({a}) − {100 * pb:.2f} ({b}); {sa} | {sb}"
                if pa is not None and pb is not None
                else (f"not printed: the paper gives no value for {b if pa is not None else a} in this setting")
            )
            rows.append(
                {
                    "setting": setting,
                    "row": SETTINGS[setting],
                    "column": column_name(a, b),
                    "ours": ours,
                    "paper": paper,
                    "diff_to_paper": ours - paper,
                    "run": str(placed[setting]),
                    "paper_source": source,
                }
            )
    return pd.DataFrame(rows), notes


def fig4_grids(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ours, paper): setting × the six columns, both in the paper's six rows (a setting not run is an empty
    row of ours), so that row i of one panel is row i of the other."""
    cols, order = [column_name(a, b) for a, b in COLUMNS], list(SETTINGS.values())

    def grid(field: str) -> pd.DataFrame:
        return table.pivot(index="row", columns="column", values=field).reindex(index=order, columns=cols)

    return grid("ours"), grid("paper")


def _panel(ax, grid: pd.DataFrame, title: str, span: float, ylabels: bool = True) -> object:
    """One heatmap: deeper blue = larger gain (as the paper's), red = a loss, grey = no value."""
    values = grid.to_numpy(float)
    im = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
    ax.set_facecolor("#dddddd")
    ax.set(xticks=range(grid.shape[1]), yticks=range(grid.shape[0]), title=title)
    ax.set_xticklabels(grid.columns, rotation=35, ha="right", fontsize=7)
    ax.set_yticklabels(grid.index if ylabels else [], fontsize=8)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = values[i, j]
            text = "–" if math.isnan(v) else f"{v:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if abs(v) > span / 2 else "black")
    return im


def write_fig4(runs: list[str], out: str | Path) -> dict:
    """``fig4.csv`` (long table), ``fig4.png`` (ours | paper, the paper's six columns), ``fig4.md``; returns
    {"table": records, "notes": backbone-weights notes, "files": [...]}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facet_lib.eval.report import weights_note

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table, notes = fig4_table(runs)
    table.to_csv(out / "fig4.csv", index=False)
    cols = [column_name(a, b) for a, b in COLUMNS]
    ours, paper = fig4_grids(table)
    span = max(1e-6, float(np.nanmax(np.abs(np.r_[ours.to_numpy(float).ravel(), paper.to_numpy(float).ravel()]))))
    random = any(weights_note(n) for n in notes)
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(ours) + 3))
    _panel(axes[0], ours, "ours" + (" (random backbone weights)" if random else "") + "; – = not run", span)
    im = _panel(axes[1], paper, "paper (§4.4.1, §4.4.2; – = not printed)", span)  # rows labelled in both
    fig.colorbar(im, ax=axes, fraction=0.03, label="accuracy difference (percentage points)")
    fig.suptitle("Fig. 4: accuracy gains between FACET-VLM variants")
    fig.savefig(out / "fig4.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    lines = ["# Fig. 4: accuracy differences between variants (percentage points)", ""]
    if random:
        lines += [f"**{weights_note('random')}**", ""]
    lines += ["| setting: ours (paper) | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for r in [r for r in ours.index if r in set(table["row"])]:  # the settings that were run
        sub = table[table["row"] == r].set_index("column").reindex(cols)
        cells = [f"{o:.2f} ({'–' if math.isnan(p) else f'{p:.2f}'})" for o, p in zip(sub["ours"], sub["paper"])]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    lines += ["", *(f"- {n}" for n in notes), "", "fig4.csv: every cell with the paper's source; – = not printed."]
    (out / "fig4.md").write_text("\n".join(lines) + "\n")
    return {
        "table": json.loads(table.to_json(orient="records")),
        "notes": notes,
        "files": [str(out / f) for f in ("fig4.csv", "fig4.png", "fig4.md")],
    }


def fig4_report(runs: list[str], out: str | Path) -> dict:
    """``write_fig4`` plus ``fig4.html``: one self-contained page (the heatmap embedded, the table of ours
    beside the paper's values and every cell's source) for a pipeline's HTML artifact."""
    import base64
    import html

    res = write_fig4(runs, out)
    out = Path(out)
    img = base64.b64encode((out / "fig4.png").read_bytes()).decode()
    table = pd.read_csv(out / "fig4.csv").round(4)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in res["notes"])
    (out / "fig4.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Fig. 4</title>"
        "<h1>Fig. 4: accuracy differences between FACET-VLM variants (percentage points)</h1>"
        f'<img alt="Fig. 4 heatmap: ours beside the paper" src="data:image/png;base64,{img}">'
        f"<ul>{notes}</ul>{table.to_html(index=False, na_rep='–')}"
    )
    res["files"].append(str(out / "fig4.html"))
    return res
