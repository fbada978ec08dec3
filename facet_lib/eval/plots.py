"""Plots people would rather look at than read: confusion matrix, per-fold accuracy, ablation heatmap."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facet_lib.errors import ConfigError  # noqa: E402
from facet_lib.eval.metrics import fold_rows  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def confusion_plot(cm: np.ndarray, labels: list[str], path: str | Path, title: str) -> Path:
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({cm[i, j]})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def per_fold_plot(table: pd.DataFrame, path: str | Path, title: str, chance: float | None = None) -> Path:
    t = fold_rows(table)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    modes = list(t["mode"].unique())
    width = 0.8 / len(modes)
    folds = list(t["fold"].unique())
    for k, mode in enumerate(modes):
        acc = t[t["mode"] == mode].set_index("fold").loc[folds, "accuracy"]
        ax.bar(np.arange(len(folds)) + k * width, acc, width, label=f"{mode} (mean {acc.mean():.3f})")
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance {chance:.2f}")
    ax.set(
        xticks=np.arange(len(folds)) + width * (len(modes) - 1) / 2,
        xticklabels=folds,
        ylim=(0, 1),
        xlabel="fold",
        ylabel="accuracy",
        title=title,
    )
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def ablation_heatmap(summary: pd.DataFrame, path: str | Path, title: str, reference: str | None = None) -> Path:
    """``summary``: rows = variants, columns = metrics (values in [0, 1]). ``reference`` (e.g. ``"full"``):
    show each variant's difference to that row instead of absolute values (diverging colours around 0)."""
    values = summary.to_numpy(float)
    if reference is not None:
        if reference not in summary.index:
            rows = list(summary.index)
            raise ConfigError(f"ablation heatmap: reference variant '{reference}' is not a row of {rows}")
        values = values - summary.loc[reference].to_numpy(float)[None]
        span = max(float(np.nanmax(np.abs(values))), 1e-6)
        cmap, vmin, vmax, fmt = "RdBu", -span, span, "{:+.2f}"
        title = f"{title} — difference to '{reference}'"
    else:
        cmap, vmin, vmax, fmt = "viridis", 0, 1, "{:.2f}"
    fig, ax = plt.subplots(figsize=(1.0 * summary.shape[1] + 3, 0.5 * summary.shape[0] + 1.5))
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set(
        xticks=range(summary.shape[1]),
        yticks=range(summary.shape[0]),
        xticklabels=summary.columns,
        yticklabels=summary.index,
        title=title,
    )
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right")
    for i in range(summary.shape[0]):
        for j in range(summary.shape[1]):
            color = "white" if reference is None else "black"
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)
