"""The λ search (§3.4) on synthetic data: a subject-independent validation split inside each training fold,
a grid over λ, the selected λ per fold, the table/plot/report; through the step and the CLI."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from facet_lib.cli import main
from facet_lib.config import PRESETS, TuneConfig, to_params
from facet_lib.data.folds import make_folds, save_folds
from facet_lib.data.indexers import index_dataset, select_protocol
from facet_lib.data.synthetic import SynthConfig, generate
from facet_lib.errors import ConfigError
from facet_lib.render import RenderConfig
from facet_lib.render.dataset import render_dataset
from facet_lib.steps import tune_report_step, tune_step
from facet_lib.train.tune import validation_split

ROOT = Path(__file__).resolve().parents[2]
FAST = ["epochs=2", "freeze_epochs=1", "batch_size=16"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Six synthetic BU-3DFE subjects at 64 px, two subject-independent folds."""
    d = tmp_path_factory.mktemp("tune")
    root = generate("bu3dfe", d / "bu3dfe", SynthConfig(subjects=6, step=3.0, seed=5, workers=1))
    idx, _ = select_protocol(index_dataset("bu3dfe", root).index, "bu3dfe-I")
    render_dataset(idx, d / "views", RenderConfig(size=64), progress=False, workers=1)
    save_folds(make_folds(idx, 2, seed=0), d / "folds.csv")
    return d


def _rows(n_subjects=10, per=3, k=5):
    subj = np.repeat([f"S{i}" for i in range(n_subjects)], per)
    return pd.DataFrame({"subject": subj, "fold": [int(s[1:]) % k for s in subj], "label": "happy"})


@pytest.mark.parametrize("fold", [0, 3])
def test_validation_split_is_inside_the_training_part_and_subject_independent(fold):
    rows = _rows()
    tr, val = validation_split(rows, fold, val_frac=0.25, seed=0)
    test = set(rows.index[rows.fold == fold])
    assert not (set(tr) | set(val)) & test  # the test fold is never used
    assert set(tr) | set(val) == set(rows.index[rows.fold != fold])
    assert not set(rows.subject[tr]) & set(rows.subject[val])  # no subject on both sides
    assert len(set(rows.subject[val])) == 2  # round(0.25 × 8 training subjects)
    again, _ = validation_split(rows, fold, val_frac=0.25, seed=0)
    assert np.array_equal(tr, again)  # seeded
    other, _ = validation_split(rows, fold, val_frac=0.25, seed=1)
    assert not np.array_equal(tr, other)


def test_validation_split_needs_two_training_subjects():
    rows = _rows(n_subjects=2, k=2)
    with pytest.raises(ConfigError, match="validation split needs >= 2"):
        validation_split(rows, 0, 0.2, 0)


def test_tune_settings_are_validated():
    assert 0.1 in TuneConfig().grid  # the paper's value is always tried by default
    with pytest.raises(ConfigError, match="tune.grid"):
        TuneConfig(grid=(-1.0,))
    with pytest.raises(ConfigError, match="tune.val_frac"):
        TuneConfig(val_frac=1.0)
    with pytest.raises(ConfigError, match="tune.metric"):
        TuneConfig(metric="loss")


def test_tune_cli_on_synthetic_data(rendered, tmp_path, capsys):
    out = tmp_path / "tune"
    args = ["tune", "--views", str(rendered / "views"), "--folds", str(rendered / "folds.csv"), "--out", str(out)]
    rc = main([*args, "--preset", "tiny-cpu", "--grid", "0", "0.1", "--val-frac", "0.3", "--set", *FAST])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "lam=0.1 val_accuracy=" in printed and "lam=0 val_accuracy=" in printed  # Katib's name=value lines
    assert "random backbone weights" in printed  # tiny-cpu is random: said so
    table = pd.read_csv(out / "tune_table.csv", index_col=0)
    # what Katib's StdOut collector reads with manifests/katib's filter: the mean validation accuracy per λ
    katib = yaml.safe_load((ROOT / "manifests" / "katib" / "experiment.yaml").read_text())
    (fmt,) = katib["spec"]["metricsCollectorSpec"]["source"]["filter"]["metricsFormat"]
    found = [float(m.group(2)) for m in re.finditer(fmt, printed)]
    assert found == pytest.approx(table.loc["mean"].iloc[:2].tolist(), abs=1e-6)
    assert list(table.index) == ["0", "1", "mean"] and [float(c) for c in table.columns[:2]] == [0.0, 0.1]
    assert "majority_baseline" in table.columns and table.iloc[:, :2].stack().between(0, 1).all()
    sel = json.loads((out / "tune_selected.json").read_text())
    assert set(sel["per_fold"]) == {"0", "1"} and set(sel["per_fold"].values()) <= {0.0, 0.1}
    assert sel["paper_lam"] == 0.1 and "random" in sel["note"]
    best = table.loc[str(0), ["0.0", "0.1"]].astype(float)
    assert sel["per_fold"]["0"] == float(best.idxmax())
    points = sorted(out.glob("point-*.json"))
    assert len(points) == 4
    p = json.loads(points[0].read_text())
    assert p["val_samples"] > 0 and p["train_samples"] > 0 and p["val_subjects"]
    assert (out / "tune_plot.png").stat().st_size > 1000 and "base64" in (out / "tune_report.html").read_text()
    assert "0.1" in (out / "tune_report.md").read_text()

    # the fan-in of the pipeline (one task per λ) gives the same table from the points
    again = tune_report_step([str(out)], tmp_path / "fanin", {"grid": [0.0, 0.1]})
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "fanin" / "tune_table.csv", index_col=0), table, check_exact=False
    )
    assert again["per_fold"] == {int(k): v for k, v in sel["per_fold"].items()}

    # a rerun reads the points back instead of training again
    before = [q.stat().st_mtime_ns for q in points]
    mcfg, tcfg = PRESETS["tiny-cpu"]
    import dataclasses

    tcfg = dataclasses.replace(tcfg, epochs=2, freeze_epochs=1, batch_size=16)
    res = tune_step(
        rendered / "views", rendered / "folds.csv", to_params(mcfg), to_params(tcfg),
        {"grid": [0.0, 0.1], "val_frac": 0.3}, out, grid=[0.1], report=False,
    )  # fmt: skip
    assert [q.stat().st_mtime_ns for q in points] == before and len(res["points"]) == 2


# --- a point is reused only for the settings and data it was computed with; the fold body is cv's ---


def _fake_search(monkeypatch):
    """A runner/data pair and a ``shared.fit_and_score`` that scores without training (counts its calls)."""
    import types

    from facet_lib.train import shared
    from facet_lib.train.loop import predictions_frame

    calls = []

    def fake(runner, data, tr_idx, eval_idx, model_cfg, train_cfg, ckpt_path, desc):
        calls.append((train_cfg.lam, desc))
        scores = {"class_conditional": np.eye(2)[np.arange(len(eval_idx)) % 2].astype(np.float32)}
        return None, [], predictions_frame(data.rows.iloc[eval_idx], scores, data.labels)

    monkeypatch.setattr(shared, "fit_and_score", fake)
    rows = _rows(n_subjects=6, per=2, k=2).assign(
        sample_id=lambda r: [f"s{i}" for i in range(len(r))], label=lambda r: ["happy", "sad"] * (len(r) // 2)
    )
    mcfg, tcfg = PRESETS["tiny-cpu"]
    runner = types.SimpleNamespace(model_cfg=mcfg, train_cfg=tcfg, weights="random (untrained)")
    data = shared.Data(rows=rows, render={}, render_digest="digest-a", labels=["happy", "sad"])
    return runner, data, calls


def test_a_point_is_recomputed_when_its_settings_or_data_change(monkeypatch, tmp_path, capsys):
    import dataclasses
    import types

    from facet_lib.train.tune import tune_point

    runner, data, calls = _fake_search(monkeypatch)
    tune = TuneConfig(grid=(0.1,), val_frac=0.3, seed=0)
    first = tune_point(runner, data, 0, 0.1, tune, tmp_path)
    assert len(calls) == 1 and first["fingerprint"]["render_digest"] == "digest-a"
    assert tune_point(runner, data, 0, 0.1, tune, tmp_path) == first and len(calls) == 1  # same: read back
    rep = dataclasses.replace
    changes = [  # (the fingerprint field named in the log line, runner attributes, data, tune settings)
        ("tune", {}, data, rep(tune, seed=3)),
        ("tune", {}, data, rep(tune, val_frac=0.6)),
        ("train", {"train_cfg": rep(runner.train_cfg, lr=1e-2)}, data, tune),
        ("model", {"model_cfg": PRESETS["paper"][0]}, data, tune),
        ("backbone_weights", {"weights": "openai"}, data, tune),
        ("render_digest", {}, rep(data, render_digest="digest-b"), tune),
        ("samples_sha256", {}, rep(data, rows=data.rows.assign(label="happy")), tune),
    ]
    for field, attrs, d, t in changes:
        capsys.readouterr()
        n = len(calls)
        rec = tune_point(types.SimpleNamespace(**{**vars(runner), **attrs}), d, 0, 0.1, t, tmp_path)
        assert len(calls) == n + 1, field  # recomputed, not read back
        line = capsys.readouterr().out.strip()
        assert "recomputing" in line and field in line and len(line.splitlines()) == 1, line
        assert json.loads((tmp_path / "point-fold0-lam0.1.json").read_text()) == rec
        tune_point(runner, data, 0, 0.1, tune, tmp_path)  # back to the first settings (recomputed once more)
    # a point written before fingerprints existed is not trusted either
    p = tmp_path / "point-fold0-lam0.1.json"
    p.write_text(json.dumps({k: v for k, v in first.items() if k != "fingerprint"}))
    n = len(calls)
    tune_point(runner, data, 0, 0.1, tune, tmp_path)
    assert len(calls) == n + 1 and "recomputing" in capsys.readouterr().out


def test_a_cv_fold_and_a_search_point_share_one_train_and_score_body(monkeypatch, tmp_path):
    from facet_lib.train import protocols, shared
    from facet_lib.train.tune import tune_point

    class Called(Exception):
        pass

    def boom(*a, **k):
        raise Called

    runner, data, _ = _fake_search(monkeypatch)
    monkeypatch.setattr(shared, "fit_and_score", boom)
    with pytest.raises(Called):
        tune_point(runner, data, 0, 0.1, TuneConfig(), tmp_path / "t")
    with pytest.raises(Called):
        protocols.train_one_fold(runner, data, 0, tmp_path / "f")


def test_the_fan_in_breaks_ties_by_the_pipelines_grid_order(tmp_path):
    pts = [
        {"fold": f, "lam": lam, "accuracy": 0.5, "macro_f1": 0.5, "majority_accuracy": 0.5, "backbone_weights": "x"}
        for f in (0, 1)
        for lam in (0.0, 0.1, 1.0)
    ]
    d = tmp_path / "pts"
    d.mkdir()
    for p in pts:
        (d / f"point-fold{p['fold']}-lam{p['lam']:g}.json").write_text(json.dumps(p))
    sel = tune_report_step([str(d)], tmp_path / "r", {}, grid=[0.1, 1.0, 0.0])
    assert sel["grid"] == [0.1, 1.0, 0.0] and sel["best_mean_lam"] == 0.1 and set(sel["per_fold"].values()) == {0.1}
    assert "first in the grid" in sel["tie_rule"]
    # without a grid: the search's default grid order (TuneConfig.grid), as the CLI's tune uses it
    default = tune_report_step([str(d)], tmp_path / "r2", {"grid": [1.0, 0.0, 0.1]})
    assert default["best_mean_lam"] == 1.0
