"""Cross-dataset ablations (Fig. 3's sixth setting): one run per variant with that variant's settings,
one table with the paper column, heatmaps (absolute and difference to full). Training is stubbed."""

import dataclasses

import pandas as pd
import pytest

import facet_lib.train.protocols as protocols
import facet_lib.train.shared as shared
from facet_lib.config import preset


class _Runner:
    def __init__(self):
        self.model_cfg, self.train_cfg = preset("tiny-cpu")
        self.weights = "random (untrained)"


def test_each_variant_runs_cross_dataset_with_its_own_settings(tmp_path, monkeypatch):
    seen = {}

    def fake_cross(runner, source, target, out, label_map, protocol, variant, model_cfg, train_cfg):
        v = out.name
        assert variant == v and protocol == "bp4d-cross" and runner is base  # one shared backbone, no copies
        seen[v] = (model_cfg, train_cfg)
        acc = {"full": 0.8, "no_mtgf": 0.7, "front_only": 0.6}[v]
        return {"target_classes": {"accuracy": acc, "macro_f1": acc - 0.1}, "source_classes": {"accuracy": acc / 2}}

    monkeypatch.setattr(protocols, "run_cross", fake_cross)
    base = _Runner()
    table = protocols.run_cross_ablations(base, None, None, tmp_path, {}, variants=["full", "no_mtgf", "front_only"])
    assert seen["full"] == (base.model_cfg, base.train_cfg)
    assert seen["no_mtgf"][0] == dataclasses.replace(
        base.model_cfg, head=dataclasses.replace(base.model_cfg.head, mtgf=False)
    )
    assert seen["front_only"][0].views == (0,) and base.model_cfg.views == (0, 1, 2)  # the base runner is untouched
    assert table.loc["no_mtgf", "accuracy"] == pytest.approx(0.7)
    assert {"paper", "diff_to_paper", "paper_source", "backbone_weights"} <= set(table.columns)
    assert table.loc["full", "paper"] == pytest.approx(0.8612)  # Table 4(b)
    assert table.loc["no_mtgf", "paper"] == pytest.approx(0.7905) and "§4.4.1" in table.loc["no_mtgf", "paper_source"]
    assert pd.isna(table.loc["front_only", "paper"]) and "[53]" in table.loc["front_only", "paper_source"]
    saved = pd.read_csv(tmp_path / "ablation_table.csv", index_col="variant")
    assert list(saved.index) == ["full", "no_mtgf", "front_only"]
    assert (tmp_path / "ablation_heatmap.png").exists() and (tmp_path / "ablation_heatmap_diff.png").exists()
    # Fig. 4's sixth row from this run (its ablation_meta.json names the setting)
    from facet_lib.eval.fig4 import write_fig4

    fig = pd.DataFrame(write_fig4([str(tmp_path)], tmp_path / "fig4")["table"]).set_index("column")
    assert set(fig["setting"]) == {"bp4d-cross"}
    assert fig.loc["full − no_mtgf", "ours"] == pytest.approx(10.0)  # 0.8 − 0.7
    assert fig.loc["full − no_mtgf", "paper"] == pytest.approx(86.12 - 79.05)
    assert fig.loc["full − no_cvsa", "paper"] == pytest.approx(13.00) and pd.isna(fig.loc["full − no_cvsa", "ours"])


def test_the_pipelines_cross_protocol_reaches_the_single_cross_run(tmp_path, monkeypatch):
    """The cross-dataset component passes its ``protocol`` (the pipeline's ``cross_protocol``, wired in the
    compiled IR: tests/pipelines/test_compile.py) to cross_step, and cross_step passes it to run_cross."""
    import json
    from types import SimpleNamespace

    import facet_lib.steps.train as steps
    from components.cross_dataset import cross_dataset

    seen = {}

    def fake_cross(runner, source, target, out, label_map, protocol):
        seen["run_cross"] = protocol
        (tmp_path / "res").mkdir(exist_ok=True)
        (tmp_path / "res" / "cross_summary.json").write_text(json.dumps({"comparison": [], "backbone_weights": "r"}))
        return {"target_classes": {"accuracy": 0.5, "macro_f1": 0.5}}

    monkeypatch.setattr(shared, "load_data", lambda *a, **k: SimpleNamespace(rows=pd.DataFrame()))
    monkeypatch.setattr(protocols, "run_cross", fake_cross)
    monkeypatch.setattr(steps, "make_runner", lambda *a, **k: _Runner())
    logged = {}
    metrics = SimpleNamespace(path=str(tmp_path / "m" / "metrics"), metadata={}, log_metric=logged.__setitem__)
    cross_dataset.python_func(
        source_views=SimpleNamespace(path="s"),
        target_views=SimpleNamespace(path="t"),
        label_map={"happy": "happy"},
        model_config={},
        train_config={},
        protocol="bu4dfe-cross-test",
        results=SimpleNamespace(path=str(tmp_path / "res")),
        metrics=metrics,
    )
    assert seen["run_cross"] == "bu4dfe-cross-test" and logged["target_classes_accuracy"] == 0.5
