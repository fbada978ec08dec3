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


def test_4dme_compares_the_pooled_row_with_table5_in_diff_ranking_and_report(tmp_path):
    """Table 5 is one set of numbers over all samples (docs/paper-notes.md #13): for 4DME diff_to_paper, the
    cv_table's diff_to_paper row and the published ranking use our pooled row, not the fold mean."""
    import facet_lib.eval.report as rep

    labels = ["positive", "negative", "surprise", "repression", "others"]
    dirs = []
    for fold, (true, pred) in enumerate([(labels, labels), (labels * 2, labels[1:] + labels[:1] + labels)]):
        d = tmp_path / f"f{fold}"  # fold 0: 5 of 5 right; fold 1: 5 of 10 → mean ≠ pooled
        d.mkdir()
        df = pd.DataFrame({"sample_id": [f"s{fold}{i}" for i in range(len(true))], "subject": f"S{fold}"})
        df.assign(label=true, pred_class_conditional=pred, pred_label_free=pred).to_csv(
            d / "predictions.csv", index=False
        )
        info = {"fold": fold, "labels": labels, "backbone_weights": "random (untrained)", "metrics": {"accuracy": 0}}
        (d / "fold.json").write_text(json.dumps(info))
        dirs.append(d)
    s = rep.write_report(dirs, tmp_path / "out", {"protocol": "4dme"})
    avg = {r["metric"]: r for r in s["comparison"]}["acc_average"]
    assert avg["ours_mean"] == pytest.approx((1.0 + 0.8) / 2)  # per-fold one-vs-rest means 1.0 and 0.8
    assert avg["ours_pooled"] == pytest.approx(1 - 2 * (5 / 15) / 5)  # 5 errors in 15
    assert avg["compared"] == "pooled" and s["compared_row"] == "pooled"
    assert avg["diff_to_paper"] == pytest.approx(avg["ours_pooled"] - 0.8683)
    t = pd.read_csv(tmp_path / "out" / "cv_table.csv", dtype={"fold": str}).set_index(["mode", "fold"])
    assert t.loc[("class_conditional", "diff_to_paper"), "acc_average"] == pytest.approx(avg["ours_pooled"] - 0.8683)
    ours = next(r for r in s["standing"]["acc_average"] if r["method"] == "this run")
    assert ours["value"] == pytest.approx(avg["ours_pooled"])
    for name in ("report.md", "report.html"):
        assert "compare our `pooled` row" in (tmp_path / "out" / name).read_text()
    # every other protocol keeps the fold mean (the paper's cross-validated means), and says so
    other = write_report(
        [_fold(tmp_path / "g0", 0, ["anger", "happy"], ["anger", "happy"], ["anger", "anger"])],
        tmp_path / "out2",
        {"protocol": "bu4dfe"},
    )
    assert other["compared_row"] == "mean"
    assert "compare our `mean` row" in (tmp_path / "out2" / "report.md").read_text()
