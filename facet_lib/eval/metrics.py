"""Metrics from prediction tables: accuracy, macro-F1, per-class F1 and accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


def fold_metrics(pred: pd.DataFrame, labels: list[str], mode: str = "class_conditional") -> dict:
    """Metrics of one prediction table. Per-class accuracy is the share of that class's samples
    predicted correctly (its recall), as 4DME papers report it."""
    y, p = pred["label"], pred[f"pred_{mode}"]
    cm = confusion_matrix(y, p, labels=labels)
    per_f1 = f1_score(y, p, labels=labels, average=None, zero_division=0)
    support = cm.sum(1)
    per_acc = np.divide(np.diag(cm), support, out=np.full(len(labels), np.nan), where=support > 0)
    out = {
        "accuracy": float(accuracy_score(y, p)),
        "macro_f1": float(f1_score(y, p, labels=labels, average="macro", zero_division=0)),
        "n": int(len(pred)),
    }
    out |= {f"f1_{lab}": float(v) for lab, v in zip(labels, per_f1)}
    out |= {f"acc_{lab}": float(v) for lab, v in zip(labels, per_acc)}
    out["confusion"] = cm.tolist()
    return out


def cv_table(preds: dict[int, pd.DataFrame], labels: list[str]) -> pd.DataFrame:
    """Rows: each fold and each inference mode; plus ``mean`` and ``std`` rows over folds."""
    rows = []
    for mode in ("class_conditional", "label_free"):
        per = []
        for fold, df in sorted(preds.items()):
            m = fold_metrics(df, labels, mode)
            m.pop("confusion")
            per.append({"mode": mode, "fold": str(fold), **m})
        frame = pd.DataFrame(per)
        num = frame.drop(columns=["mode", "fold"])
        rows += per
        rows.append({"mode": mode, "fold": "mean", **num.mean().to_dict()})
        rows.append({"mode": mode, "fold": "std", **num.std(ddof=0).to_dict()})
    return pd.DataFrame(rows)


def pooled_confusion(preds: dict[int, pd.DataFrame], labels: list[str], mode: str = "class_conditional"):
    allp = pd.concat(preds.values())
    return confusion_matrix(allp["label"], allp[f"pred_{mode}"], labels=labels)
