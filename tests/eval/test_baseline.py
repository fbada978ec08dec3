import numpy as np
import pandas as pd
import pytest

from facet_lib.errors import ConfigError
from facet_lib.eval.baseline import baseline_predictions, view_features
from facet_lib.eval.metrics import cv_table


def test_view_features_downsample_each_view_to_grey_32():
    v = np.zeros((2, 3, 64, 64, 3), np.uint8)
    v[0, 1, :32] = 255  # top half of sample 0's left view white
    x = view_features(v)
    assert x.shape == (2, 3 * 32 * 32)
    img = x[0].reshape(3, 32, 32)
    assert img[1, :16].min() == 1.0 and img[1, 16:].max() == 0.0 and img[0].max() == 0.0


def test_logistic_regression_baseline_learns_a_visible_class_and_uses_the_given_folds():
    rng = np.random.default_rng(0)
    n = 60
    labels = np.array(["a", "b", "c"])[np.arange(n) % 3]
    views = rng.integers(0, 60, (n, 3, 32, 32, 3), dtype=np.uint8)
    for i, lab in enumerate(labels):  # each class brightens a different view
        views[i, "abc".index(lab)] += 120
    rows = pd.DataFrame(
        {"sample_id": range(n), "subject": np.arange(n) // 6, "label": labels, "fold": np.arange(n) // 12}
    )
    preds = baseline_predictions(views, rows, ["a", "b", "c"])
    assert sorted(preds) == [0, 1, 2, 3, 4]
    for f, df in preds.items():
        assert set(df["sample_id"]) == set(rows.loc[rows.fold == f, "sample_id"])
    t = cv_table(preds, ["a", "b", "c"]).set_index(["mode", "fold"])
    assert t.loc[("class_conditional", "pooled"), "accuracy"] > 0.9
    # shuffled labels: nothing to learn, accuracy near chance
    rows_r = rows.assign(label=rng.permutation(labels))
    t = cv_table(baseline_predictions(views, rows_r, ["a", "b", "c"]), ["a", "b", "c"]).set_index(["mode", "fold"])
    assert t.loc[("class_conditional", "pooled"), "accuracy"] < 0.6


def test_baseline_refuses_rows_without_folds():
    with pytest.raises(ConfigError, match="fold"):
        baseline_predictions(np.zeros((2, 3, 8, 8, 3), np.uint8), pd.DataFrame({"label": ["a", "b"]}), ["a", "b"])


def test_cross_baseline_fits_the_source_and_predicts_within_each_scope():
    from facet_lib.eval.baseline import baseline_cross
    from facet_lib.eval.metrics import fold_metrics

    rng = np.random.default_rng(0)
    src_y = np.repeat(["anger", "disgust", "happy"], 20)
    centre = {"anger": 0.0, "disgust": 3.0, "happy": 6.0}
    src_x = np.stack([rng.normal(centre[y], 0.3, 8) for y in src_y])
    tgt_y = np.repeat(["disgust", "happy"], 5)
    tgt_x = np.stack([rng.normal(centre[y], 0.3, 8) for y in tgt_y])
    tgt_x[0] = rng.normal(centre["anger"], 0.3, 8)  # looks like anger: wrong over all source classes
    rows = pd.DataFrame({"sample_id": range(10), "subject": "s", "label": tgt_y})
    scopes = {"target_classes": ["disgust", "happy"], "source_classes": ["anger", "disgust", "happy"]}
    out = baseline_cross(src_x, src_y, tgt_x, rows, scopes)
    assert set(out["target_classes"]["pred_class_conditional"]) <= {"disgust", "happy"}
    assert out["source_classes"]["pred_class_conditional"][0] == "anger"
    assert fold_metrics(out["source_classes"], scopes["source_classes"])["accuracy"] == 0.9
    assert out["target_classes"]["pred_class_conditional"][1:].tolist() == tgt_y[1:].tolist()
    with pytest.raises(ConfigError, match="source and target views differ"):
        baseline_cross(src_x, src_y, tgt_x[:, :4], rows, scopes)
