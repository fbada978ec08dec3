import math

import numpy as np
import pandas as pd
import pytest

from facet_lib.eval.metrics import SUMMARY_ROWS, cv_table, fold_metrics, fold_rows

LABELS = ["a", "b", "c"]


def _pred(true, pred):
    return pd.DataFrame({"label": true, "pred_class_conditional": pred, "pred_label_free": pred})


@pytest.fixture
def preds():
    # fold 1's test set has no class "c"
    return {
        0: _pred(["a", "a", "b", "b", "c", "c"], ["a", "b", "b", "b", "c", "a"]),
        1: _pred(["a", "a", "b", "b"], ["a", "a", "b", "a"]),
    }


def test_per_fold_macro_f1_counts_only_classes_present(preds):
    m = fold_metrics(preds[1], LABELS)
    # a: P 2/3, R 1 → F1 0.8; b: P 1, R 1/2 → F1 2/3; c absent: no F1 (counting it as 0 gives 0.489)
    assert m["f1_a"] == pytest.approx(0.8) and m["f1_b"] == pytest.approx(2 / 3)
    assert math.isnan(m["f1_c"]) and math.isnan(m["acc_c"])
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["mean_class_acc"] == pytest.approx((1 + 0.5) / 2)
    m0 = fold_metrics(preds[0], LABELS)  # a: F1 1/2, b: 0.8, c: 2/3
    assert m0["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m0["mean_class_acc"] == pytest.approx((0.5 + 1 + 0.5) / 3)


def test_pooled_row_scores_all_folds_predictions_at_once(preds):
    t = cv_table(preds, LABELS)
    cc = t[t["mode"] == "class_conditional"].set_index("fold")
    assert list(fold_rows(t[t["mode"] == "class_conditional"])["fold"]) == ["0", "1"]
    assert {"mean", "std", "pooled"} <= set(cc.index) <= {"0", "1", *SUMMARY_ROWS}
    pooled = cc.loc["pooled"]
    # pooled, 10 samples: a P 3/5 R 3/4, b P 3/4 R 3/4, c P 1 R 1/2
    f1 = [2 * 0.6 * 0.75 / 1.35, 0.75, 2 / 3]
    assert pooled["accuracy"] == pytest.approx(0.7) and pooled["n"] == 10
    assert pooled["macro_f1"] == pytest.approx(np.mean(f1))
    assert pooled["f1_c"] == pytest.approx(2 / 3) and pooled["acc_c"] == pytest.approx(0.5)
    assert pooled["mean_class_acc"] == pytest.approx((0.75 + 0.75 + 0.5) / 3)
    # the mean row averages per-fold values, skipping the fold without "c"
    mean = cc.loc["mean"]
    assert mean["f1_c"] == pytest.approx(2 / 3)
    assert mean["macro_f1"] == pytest.approx(((0.5 + 0.8 + 2 / 3) / 3 + (0.8 + 2 / 3) / 2) / 2)
    assert mean["accuracy"] == pytest.approx((4 / 6 + 3 / 4) / 2)
