import math

import pandas as pd
import pytest

from facet_lib.errors import ConfigError
from facet_lib.eval.metrics import cv_table
from facet_lib.eval.targets import comparison_table, load_targets, paper_target, with_paper_column

PROTOCOLS = ("bu3dfe-I", "bu3dfe-II", "bosphorus", "bu4dfe", "bp4d", "bp4d-cross", "4dme")
FIG3 = ("full", "no_cvsa", "no_mtgf", "no_consistency", "front_only", "left_only", "right_only")


def test_packaged_targets_parse_and_every_value_has_a_source():
    doc = load_targets()
    assert set(PROTOCOLS) <= set(doc["targets"])
    for proto in PROTOCOLS:
        assert "accuracy" in doc["targets"][proto]["full"]
    for proto in set(PROTOCOLS) - {"4dme"}:  # Fig. 3's six settings × our ablation names
        assert set(FIG3) <= set(doc["targets"][proto])
    assert {f"f1_{c}" for c in ("positive", "negative", "surprise", "repression", "others")} <= set(
        doc["targets"]["4dme"]["full"]
    )
    value, source = paper_target("bu4dfe")
    assert value == pytest.approx(0.9941) and "99.41" in source  # the one number citable here (abstract)
    value, source = paper_target("bu3dfe-I")
    assert value is None and "not available" in source
    assert paper_target("nope")[0] is None


@pytest.mark.parametrize(
    "body, match",
    [
        ("targets: {p: {full: {accuracy: {value: 99.4, source: t2}}}}\nbackbone_note: x", "in \\[0, 1\\]"),
        ("targets: {p: {full: {accuracy: {value: 0.9, source: ''}}}}\nbackbone_note: x", "needs its source"),
        ("targets: {p: {full: {accuracy: 0.9}}}\nbackbone_note: x", "targets.p.full.accuracy"),
        ("targets: {}", "backbone_note"),
    ],
)
def test_bad_targets_file_names_the_field(tmp_path, body, match):
    f = tmp_path / "t.yaml"
    f.write_text(body)
    with pytest.raises(ConfigError, match=match):
        load_targets(str(f))


def _table(acc_per_fold):
    preds = {
        i: pd.DataFrame(
            {
                "label": ["a", "b"],
                "pred_class_conditional": ["a", "b" if ok else "a"],
                "pred_label_free": ["a", "a"],
            }
        )
        for i, ok in enumerate(acc_per_fold)
    }
    return cv_table(preds, ["a", "b"])


def test_comparison_shows_paper_column_difference_baseline_and_weights_note(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(
        "backbone_note: paper used pretrained ViT-B/16\n"
        "targets: {toy: {full: {accuracy: {value: 0.9, source: Table 9}}, no_cvsa: {accuracy: {value: null, "
        "source: not given}}}}\n"
    )
    ours, base = _table([True, False]), _table([False, False])  # ours 0.75, baseline 0.5
    comp = comparison_table(ours, "toy", "random (untrained)", baseline=base, path=str(f)).set_index("metric")
    acc = comp.loc["accuracy"]
    assert acc["ours_mean"] == pytest.approx(0.75) and acc["paper"] == pytest.approx(0.9)
    assert acc["diff_to_paper"] == pytest.approx(-0.15) and acc["baseline_logreg"] == pytest.approx(0.5)
    assert acc["paper_source"] == "Table 9" and "random (untrained)" in acc["backbone_weights"]
    assert "pretrained ViT-B/16" in acc["backbone_weights"]
    assert math.isnan(comp.loc["macro_f1", "paper"])  # no number given → NaN, never 0
    abl = pd.DataFrame({"accuracy": [0.8, 0.6]}, index=pd.Index(["full", "no_cvsa"], name="variant"))
    abl = with_paper_column(abl, "toy", "random (untrained)", path=str(f))
    assert abl.loc["full", "diff_to_paper"] == pytest.approx(-0.1) and math.isnan(abl.loc["no_cvsa", "paper"])
    assert {"paper", "diff_to_paper", "paper_source", "backbone_weights"} <= set(abl.columns)


def test_kfp_paper_metrics_keep_finite_numbers_only():
    from facet_lib.eval.targets import paper_metrics

    rec = [
        {
            "metric": "accuracy",
            "paper": 0.9,
            "diff_to_paper": -0.1,
            "baseline_logreg": float("nan"),
            "paper_source": "Table 2",
            "backbone_weights": "ours: random",
        }
    ]
    values, meta = paper_metrics(rec)
    assert values == {"paper_accuracy": 0.9, "diff_to_paper_accuracy": -0.1}
    assert meta == {"paper_source": "Table 2", "paper_note": "ours: random"}
    assert paper_metrics([{"metric": "accuracy", "paper": None, "diff_to_paper": None}])[0] == {}
