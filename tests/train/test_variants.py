"""Ablation variants that equal `full` under the run's settings are skipped with the reason, not rerun."""

import json

import pytest

from facet_lib.config import preset
from facet_lib.errors import ConfigError
from facet_lib.train.variants import ABLATIONS, ablation_variants, note_skipped


def test_paper_preset_skips_the_two_no_op_ablations(tmp_path, capsys):
    run, skipped = ablation_variants(*preset("paper"))
    assert set(skipped) == {"paper_infonce", "no_class_conditional_ce"}  # already the paper's loss
    assert [v for v, _, _ in run] == [v for v in ABLATIONS if v not in skipped]
    assert "equals full" in skipped["paper_infonce"] and "loss_form" in skipped["paper_infonce"]
    note_skipped(tmp_path, skipped)
    assert json.loads((tmp_path / "ablations_skipped.json").read_text()) == skipped
    assert "ablation paper_infonce: skipped" in capsys.readouterr().out


def test_recommended_runs_every_ablation():
    run, skipped = ablation_variants(*preset("recommended"))
    assert skipped == {} and [v for v, _, _ in run] == list(ABLATIONS)
    settings = {v: (m, t) for v, m, t in run}
    assert settings["paper_infonce"][1].loss_form == "paper" and settings["no_class_conditional_ce"][1].cond_weight == 0
    assert settings["no_cvsa"][0].head.cvsa is False and settings["no_consistency"][1].lam == 0


def test_unknown_ablation_is_refused():
    with pytest.raises(ConfigError, match="unknown ablation 'nope'"):
        ablation_variants(*preset("paper"), ["full", "nope"])
