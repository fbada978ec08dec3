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
