"""Fine-tuning (`--init-from`, the paper's 4DME setting): training starts from a local or registered bundle
— its backbone, head and temperature — and says so; a bundle that does not fit the run is refused."""

import dataclasses
import json

import pytest
import torch

from facet_lib.bundle import save_bundle
from facet_lib.cli import main
from facet_lib.config import PRESETS, preset, require_weights
from facet_lib.data.folds import make_folds, save_folds
from facet_lib.data.indexers import index_dataset, select_protocol
from facet_lib.data.labels import prompts_for
from facet_lib.data.synthetic import SynthConfig, generate
from facet_lib.errors import ConfigError
from facet_lib.models.model import FacetVLM
from facet_lib.render import RenderConfig
from facet_lib.render.dataset import render_dataset
from facet_lib.train.shared import Runner
from facet_lib.warm_start import load_start

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]


@pytest.fixture(scope="module")
def start_bundle(tmp_path_factory):
    """A tiny-cpu bundle whose head, temperature and top block are not the fresh ones."""
    torch.manual_seed(0)
    m = FacetVLM(PRESETS["tiny-cpu"][0])
    with torch.no_grad():
        for p in [*m.head.parameters(), *m.logit_scale.parameters(), *m.backbone_trainable()]:
            p.add_(torch.randn_like(p) * 0.05)
    d = tmp_path_factory.mktemp("start") / "bundle"
    text_bank = m.build_text_bank(LABELS, prompts_for(LABELS, mode=m.cfg.prompts))
    save_bundle(d, m, text_bank, RenderConfig(size=64).to_dict())
    return d, m


def _tcfg(ref, **kw):
    return dataclasses.replace(PRESETS["tiny-cpu"][1], init_from=str(ref), **kw)


def test_runner_starts_from_the_bundle(start_bundle, tmp_path):
    d, ref_model = start_bundle
    mcfg = PRESETS["tiny-cpu"][0]
    runner = Runner(mcfg, _tcfg(d), tmp_path / "cache", progress=False, start=load_start(str(d), tmp_path))
    assert runner.weights.startswith("bundle ") and "random" in runner.weights  # the bundle's own backbone note
    m = runner.model(mcfg)
    want = ref_model.weights_state(trainable_only=True)
    got = m.weights_state(trainable_only=True)
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], msg=k)
    fresh = Runner(mcfg, PRESETS["tiny-cpu"][1], tmp_path / "c2", progress=False).model(mcfg)
    assert not torch.equal(fresh.head.view_pos.cpu(), want["head.view_pos"])  # the start is not a fresh head
    # an ablation variant takes the parts it shares with the bundle
    variant = runner.model(dataclasses.replace(mcfg, head=dataclasses.replace(mcfg.head, mtgf=False)))
    torch.testing.assert_close(variant.head.view_pos.cpu(), want["head.view_pos"])


def test_bundle_that_does_not_fit_is_refused(start_bundle, tmp_path):
    d, _ = start_bundle
    other = preset("paper")[0]  # ViT-B-16 and the literal head: not the bundle's
    with pytest.raises(ConfigError, match="clip_model facet-tiny vs ViT-B-16.*head.cvsa_form"):
        Runner(other, _tcfg(d), tmp_path, progress=False, start=load_start(str(d), tmp_path))
    with pytest.raises(ConfigError, match="warm_start"):
        Runner(PRESETS["tiny-cpu"][0], _tcfg(d), tmp_path, progress=False)  # init_from without the loaded start
    with pytest.raises(ConfigError, match="not a bundle folder"):
        load_start(str(tmp_path / "missing"), tmp_path)
    (tmp_path / "broken").mkdir()
    with pytest.raises(ConfigError, match="train.init_from"):
        load_start(str(tmp_path / "broken"), tmp_path)


def test_a_start_bundle_counts_as_weights():
    m = preset("paper")[0]
    with pytest.raises(ConfigError):
        require_weights("paper", m)
    assert require_weights("paper", m, init_from="s3://reg/models/facet@production") is None


def test_cv_cli_fine_tunes_from_a_registered_bundle(start_bundle, tmp_path, s3, capsys):
    """The 4DME path: register a bundle, then `facet-vlm cv --init-from s3://…@production` on 4DME data."""
    from facet_lib import registry

    d, _ = start_bundle
    reg = registry.register(d, "s3://facet-reg/init", "start", "run-1", {}, {}, {})
    root = generate("4dme", tmp_path / "4dme", SynthConfig(subjects=4, frames=4, step_4d=4.0, seed=2, workers=1))
    idx = index_dataset("4dme", root).index
    idx, _ = select_protocol(idx, "4dme")
    render_dataset(idx, tmp_path / "views", RenderConfig(size=64, frames=4), progress=False, workers=1)
    save_folds(make_folds(idx, 2, seed=0), tmp_path / "folds.csv")
    out = tmp_path / "cv"
    args = ["cv", "--views", str(tmp_path / "views"), "--folds", str(tmp_path / "folds.csv"), "--out", str(out)]
    ref = "s3://facet-reg/init/start@production"
    assert main([*args, "--preset", "tiny-cpu", "--init-from", ref, "--set", "epochs=1", "freeze_epochs=1"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["init_from"] == ref and cfg["backbone_weights"].startswith(f"bundle {reg['digest'][:16]}")
    assert cfg["model"]["micro"] is True  # 4DME's micro-expression prompts
    fold = json.loads((out / "fold_0" / "fold.json").read_text())
    assert fold["train"]["init_from"] == ref and fold["labels"] == sorted(fold["labels"], key=fold["labels"].index)
    assert "random backbone weights" in capsys.readouterr().out  # the bundle itself came from random weights
