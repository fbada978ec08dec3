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
        assert "mean_class_recall" in text and "pooled" in text  # which definition each number uses
        assert "one-vs-rest (TP + TN) / N" in text and "acc_average" in text  # Table 5's accuracy, by name
        # where the run would stand among Table 3's published methods, with the comparability note
        assert "Among the published methods" in text and "Behzad et al." in text and "Sandbach et al." in text
        assert "not re-run here" in text
    table = pd.read_csv(tmp_path / "out" / "cv_table.csv", dtype={"fold": str})
    t = table.set_index(["mode", "fold"])
    assert t.loc[("class_conditional", "paper"), "accuracy"] == pytest.approx(0.9941)
    assert t.loc[("class_conditional", "diff_to_paper"), "accuracy"] == pytest.approx(0.75 - 0.9941)
    assert t.loc[("baseline_logreg", "mean"), "accuracy"] == pytest.approx(0.5)
    assert summary["best_fold"] == 0
    place = summary["standing"]["accuracy"]
    ours = next(r for r in place if r["method"] == "this run")
    # 0.75 lies between Fang et al. [24] (0.7582) and Sandbach et al. [21] (0.6460): 14th of 13 + paper + ours
    assert ours["rank"] == 14 and len(place) == 15 and place[0]["method"] == "FACET-VLM (paper)"
    assert place[-1]["method"] == "Sandbach et al." and place[-1]["ref"] == 21


def test_4dme_report_shows_table5_per_class_values_and_averages(tmp_path):
    import facet_lib.eval.report as rep

    labels = ["positive", "negative", "surprise", "repression", "others"]
    true = labels * 2
    pred = labels[1:] + labels[:1] + labels  # fold of 10: 5 right
    d = tmp_path / "f0"
    d.mkdir()
    df = pd.DataFrame({"sample_id": range(10), "subject": "S0", "label": true})
    df.assign(pred_class_conditional=pred, pred_label_free=pred).to_csv(d / "predictions.csv", index=False)
    info = {"fold": 0, "labels": labels, "backbone_weights": "random (untrained)", "metrics": {"accuracy": 0.5}}
    (d / "fold.json").write_text(json.dumps(info))
    s = rep.write_report([d], tmp_path / "out", {"protocol": "4dme"})
    comp = {r["metric"]: r for r in s["comparison"]}
    assert comp["acc_average"]["paper"] == pytest.approx(0.8683)
    assert comp["acc_average"]["ours_mean"] == pytest.approx(1 - 2 * 0.5 / 5)  # one-vs-rest mean, not 0.5
    assert comp["acc_repression"]["paper"] == pytest.approx(0.9231)
    assert comp["macro_f1"]["paper"] == pytest.approx(0.8109)
    assert comp["accuracy"]["paper"] is None and "no overall" in comp["accuracy"]["paper_source"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| acc_repression |" in md and "| f1_others |" in md  # every printed Table 5 value is a row
    assert {"macro_f1", "acc_average"} <= set(s["standing"])  # ranked among [53]'s Left/Right/Front/Multi-views
    assert {r["method"] for r in s["standing"]["acc_average"]} >= {"Left", "Multi-views", "FACET-VLM (paper)"}


def test_metric_or_variant_the_paper_does_not_print_shows_an_empty_paper_column_not_zero(tmp_path):
    dirs = [_fold(tmp_path / "f0", 0, ["anger", "happy"], ["anger", "happy"], ["anger", "anger"])]
    summary = write_report(dirs, tmp_path / "out", {"protocol": "bu3dfe-I", "variant": "no_mtgf"})
    acc = {r["metric"]: r for r in summary["comparison"]}["accuracy"]
    assert acc["paper"] is None  # empty, never 0
    assert "not printed" in acc["paper_source"]  # with the reason
    summary = write_report(dirs, tmp_path / "out2", {"protocol": "bu3dfe-I", "variant": "front_only"})
    acc = {r["metric"]: r for r in summary["comparison"]}["accuracy"]
    assert acc["paper"] is None and "baselines of [53]" in acc["paper_source"]
    summary = write_report(dirs, tmp_path / "out3", {"protocol": "bu3dfe-I"})
    f1 = {r["metric"]: r for r in summary["comparison"]}["macro_f1"]
    assert f1["paper"] is None and "accuracy only" in f1["paper_source"]
