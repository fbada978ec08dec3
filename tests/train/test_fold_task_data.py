"""What a fold task reads: its split's rows and the features step's caches — no rendered views — and the trivial
baseline computed from the features step's 32×32 view features equals the one computed from the views."""

import pandas as pd
import pytest

from facet_lib.config import to_params
from facet_lib.config.train import PRESETS
from facet_lib.data.folds import make_folds, save_folds
from facet_lib.data.indexers import index_dataset, select_protocol
from facet_lib.data.synthetic import SynthConfig, generate
from facet_lib.errors import ConfigError
from facet_lib.eval.baseline import baseline_fold, view_features
from facet_lib.render import RenderConfig
from facet_lib.render.dataset import RenderedDataset, render_dataset
from facet_lib.steps import features_step, train_fold_step
from facet_lib.train.shared import load_data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    d = tmp_path_factory.mktemp("foldtask")
    root = generate("bu3dfe", d / "bu3dfe", SynthConfig(subjects=4, step=3.0, seed=2, workers=1))
    idx, _ = select_protocol(index_dataset("bu3dfe", root).index, "bu3dfe-I")
    render_dataset(idx, d / "views", RenderConfig(size=64), progress=False, workers=1)
    save_folds(make_folds(idx, 2, seed=0), d / "folds.csv")
    return d


def test_load_data_reads_views_only_when_used(rendered, monkeypatch):
    calls = []
    real = RenderedDataset.load

    def spy(self, views=True):
        calls.append(views)
        return real(self, views)

    monkeypatch.setattr(RenderedDataset, "load", spy)
    data = load_data(rendered / "views", rendered / "folds.csv")
    assert calls == [False] and len(data.rows) == 48
    assert data.views.shape == (48, 3, 64, 64, 3) and calls == [False, True]
    data.views  # noqa: B018 — read once, then kept
    assert calls == [False, True]


def test_fold_task_uses_the_features_steps_caches_not_the_views(rendered, tmp_path, monkeypatch):
    mcfg, tcfg = PRESETS["tiny-cpu"]
    model = to_params(mcfg)
    train = {**to_params(tcfg), "epochs": 1, "freeze_epochs": 1, "device": "cpu"}
    feats = tmp_path / "features"
    features_step(rendered / "views", rendered / "folds.csv", model, train, feats)
    assert len(list(feats.glob("baseline-*.npy"))) == 1 and len(list(feats.glob("hidden-*.safetensors"))) == 1

    real = RenderedDataset.load

    def no_views(self, views=True):
        if views:
            raise AssertionError("a fold task read the rendered views")
        return real(self, views)

    monkeypatch.setattr(RenderedDataset, "load", no_views)
    info = train_fold_step(rendered / "views", rendered / "folds.csv", feats, 1, model, train, tmp_path / "fold1")
    assert info["fold"] == 1 and 0 <= info["metrics"]["accuracy"] <= 1
    monkeypatch.setattr(RenderedDataset, "load", real)

    data = load_data(rendered / "views", rendered / "folds.csv")
    want = baseline_fold(view_features(data.views), data.rows.assign(fold=data.rows["fold"].astype(int)), 1)
    got = pd.read_csv(tmp_path / "fold1" / "baseline_predictions.csv")
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)


def test_without_views_loader_views_is_a_clear_error(rendered):
    data = load_data(rendered / "views", rendered / "folds.csv")
    data.load_views = None
    with pytest.raises(ConfigError, match="without them"):
        data.views  # noqa: B018
