"""Every report shows the paper's number and the difference to it, the backbone-weights note, the
trivial baseline and the metric definitions."""

import json

import pandas as pd
import pytest

from facet_lib.eval.report import write_report

LABELS = ["anger", "happy"]


def _fold(d, fold, true, pred, base):
    d.mkdir(parents=True)
    df = pd.DataFrame({"sample_id": [f"s{fold}{i}" for i in range(len(true))], "subject": f"S{fold}", "label": true})
    pd.concat([df, pd.DataFrame({"pred_class_conditional": pred, "pred_label_free": pred})], axis=1).to_csv(
        d / "predictions.csv", index=False
    )
    pd.concat([df, pd.DataFrame({"pred_class_conditional": base, "pred_label_free": base})], axis=1).to_csv(
        d / "baseline_predictions.csv", index=False
    )
    acc = sum(a == b for a, b in zip(true, pred)) / len(true)
    info = {"fold": fold, "labels": LABELS, "backbone_weights": "random (untrained)", "metrics": {"accuracy": acc}}
    (d / "fold.json").write_text(json.dumps(info))
    return d


def test_cv_report_has_paper_column_difference_baseline_and_definitions(tmp_path):
    dirs = [
        _fold(tmp_path / "f0", 0, ["anger", "happy"], ["anger", "happy"], ["anger", "anger"]),
        _fold(tmp_path / "f1", 1, ["anger", "happy"], ["anger", "anger"], ["anger", "anger"]),
    ]
    summary = write_report(dirs, tmp_path / "out", {"protocol": "bu4dfe", "variant": "full"})
    acc = {r["metric"]: r for r in summary["comparison"]}["accuracy"]
    assert acc["ours_mean"] == pytest.approx(0.75) and acc["baseline_logreg"] == pytest.approx(0.5)
    assert acc["paper"] == pytest.approx(0.9941) and acc["diff_to_paper"] == pytest.approx(0.75 - 0.9941)
    md = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    for text in (md, html):
        assert "paper" in text and "diff_to_paper" in text and "baseline_logreg" in text and "0.9941" in text
        assert "pretrained CLIP ViT-B/16" in text  # the backbone-weights note beside the paper column
        assert "mean_class_acc" in text and "pooled" in text  # which definition each number uses
    table = pd.read_csv(tmp_path / "out" / "cv_table.csv", dtype={"fold": str})
    t = table.set_index(["mode", "fold"])
    assert t.loc[("class_conditional", "paper"), "accuracy"] == pytest.approx(0.9941)
    assert t.loc[("class_conditional", "diff_to_paper"), "accuracy"] == pytest.approx(0.75 - 0.9941)
    assert t.loc[("baseline_logreg", "mean"), "accuracy"] == pytest.approx(0.5)
    assert summary["best_fold"] == 0


def test_protocol_without_published_number_shows_an_empty_paper_column_not_zero(tmp_path):
    dirs = [_fold(tmp_path / "f0", 0, ["anger", "happy"], ["anger", "happy"], ["anger", "anger"])]
    summary = write_report(dirs, tmp_path / "out", {"protocol": "bu3dfe-I"})
    acc = {r["metric"]: r for r in summary["comparison"]}["accuracy"]
    assert acc["paper"] is None or acc["paper"] != acc["paper"]  # empty (None/NaN), never 0
    assert "not available" in acc["paper_source"]  # with the reason
