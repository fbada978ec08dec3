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
    assert math.isnan(m["f1_c"]) and math.isnan(m["recall_c"])
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["mean_class_recall"] == pytest.approx((1 + 0.5) / 2)
    # Table 5's one-vs-rest accuracy is defined for the absent class too: nothing predicted "c" → 4/4
    assert m["acc_a"] == pytest.approx(3 / 4) and m["acc_b"] == pytest.approx(3 / 4) and m["acc_c"] == 1.0
    assert m["acc_average"] == pytest.approx((3 / 4 + 3 / 4 + 1) / 3)
    m0 = fold_metrics(preds[0], LABELS)  # a: F1 1/2, b: 0.8, c: 2/3
    assert m0["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m0["mean_class_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)


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
    assert pooled["f1_c"] == pytest.approx(2 / 3) and pooled["recall_c"] == pytest.approx(0.5)
    assert pooled["mean_class_recall"] == pytest.approx((0.75 + 0.75 + 0.5) / 3)
    # one-vs-rest over the 10 pooled samples: a 1 FN + 2 FP, b 1 + 1, c 1 + 0
    assert [pooled[f"acc_{c}"] for c in LABELS] == pytest.approx([7 / 10, 8 / 10, 9 / 10])
    # the mean row averages per-fold values, skipping the fold without "c"
    mean = cc.loc["mean"]
    assert mean["f1_c"] == pytest.approx(2 / 3)
    assert mean["macro_f1"] == pytest.approx(((0.5 + 0.8 + 2 / 3) / 3 + (0.8 + 2 / 3) / 2) / 2)
    assert mean["accuracy"] == pytest.approx((4 / 6 + 3 / 4) / 2)


def _by_hand_ovr(true, pred, labels):
    """Table 5's per-class accuracy written out: (TP + TN) / N for each class against the rest."""
    n = len(true)
    out = []
    for c in labels:
        tp = sum(t == c and p == c for t, p in zip(true, pred))
        tn = sum(t != c and p != c for t, p in zip(true, pred))
        out.append((tp + tn) / n)
    return out


def test_one_vs_rest_accuracy_is_table5s_definition_and_not_recall():
    rng = np.random.default_rng(3)
    labels = ["positive", "negative", "surprise", "repression", "others"]
    true = list(rng.choice(labels, 236, p=[0.2, 0.35, 0.15, 0.1, 0.2]))
    pred = [t if rng.random() < 0.64 else rng.choice(labels) for t in true]
    m = fold_metrics(_pred(true, pred), labels)
    ovr = _by_hand_ovr(true, pred, labels)
    assert [m[f"acc_{c}"] for c in labels] == pytest.approx(ovr)
    for v in ovr:  # on 236 samples every value is k/236, like Table 5's baseline rows
        assert v * 236 == pytest.approx(round(v * 236))
    assert m["acc_average"] == pytest.approx(np.mean(ovr))
    # single-label predictions: every error is one FN and one FP → mean OvR = 1 - 2(1 - accuracy)/K
    assert m["acc_average"] == pytest.approx(1 - 2 * (1 - m["accuracy"]) / len(labels))
    recall = [sum(t == c == p for t, p in zip(true, pred)) / true.count(c) for c in labels]
    assert [m[f"recall_{c}"] for c in labels] == pytest.approx(recall)
    assert m["mean_class_recall"] == pytest.approx(np.mean(recall))
    assert m["acc_average"] > m["mean_class_recall"] + 0.1  # the two are different numbers
