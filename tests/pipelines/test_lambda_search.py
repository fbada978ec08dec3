"""The pipeline's λ search (§3.4) and the issue-19 parameters: compiled (off by default, a ParallelFor over
the grid, a fan-in report) and, in a slow test, run with kfp.local on synthetic data."""

import json

import pandas as pd
import pytest
import yaml

from facet_lib.config import TuneConfig
from pipelines.cli import compile_pipeline


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return next(yaml.safe_load_all(compile_pipeline(tmp_path_factory.mktemp("c") / "p.yaml").read_text()))


def test_parameters_are_off_by_default_and_take_the_defaults_from_the_dataclasses(spec):
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["lambda_search"]["defaultValue"] is False and params["lambda_search"]["parameterType"] == "BOOLEAN"
    assert params["lambda_grid"]["defaultValue"] == list(TuneConfig().grid)
    assert params["init_from"]["defaultValue"] == "" and "fine-tuning" in params["init_from"]["description"]
    assert params["prompts_file"]["defaultValue"] == ""
    assert params["tune_overrides"]["defaultValue"] == {}


def test_search_is_a_parallel_for_over_the_grid_with_a_fan_in(spec):
    text = json.dumps(spec)
    sub = spec["components"]["comp-render-train-register"]["dag"]["tasks"]
    cond = next(t for name, t in sub.items() if name.startswith("condition") and "lambda_search" in json.dumps(t))
    assert "lambda_search" in cond["triggerPolicy"]["condition"]
    inner = spec["components"][cond["componentRef"]["name"]]["dag"]["tasks"]
    loop = next(t for t in inner.values() if "parameterIterator" in t)
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("lambda_grid")
    assert "tune-report" in inner and "comp-tune-lambda" in text
    # the fan-in gets the grid in its order: ties go to the λ first in it (tune_selected.json's rule)
    grid_in = inner["tune-report"]["inputs"]["parameters"]["lambda_grid"]
    assert grid_in["componentInputParameter"].endswith("lambda_grid")
    body = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert "tune-lambda" in body


def _run_small(tmp_path, name: str, subjects: int, seed: int, epochs: int, **branch) -> dict:
    """A kfp.local run of the pipeline on a small synthetic BU-3DFE tree in the session's S3 (2 folds, tiny-cpu,
    64 px views); ``branch``: the pipeline parameters that switch the branch under test on."""
    from facet_lib import storage
    from facet_lib.data.synthetic import SynthConfig, generate
    from pipelines.local_run import run_local

    data = generate("bu3dfe", tmp_path / "data", SynthConfig(subjects=subjects, step=3.0, seed=seed, workers=1))
    storage.upload_dir(data, f"s3://facet-{name}/bu3dfe")
    return run_local(
        tmp_path / "root",
        data_uri=f"s3://facet-{name}/bu3dfe",
        dataset="bu3dfe",
        protocol="bu3dfe-I",
        n_folds=2,
        shard_size=64,
        registry_uri=f"s3://facet-{name}-models/registry",
        model_name=name,
        preset="tiny-cpu",
        epochs=epochs,
        render_size=64,
        train_overrides={"freeze_epochs": 1, "device": "cpu"},
        **branch,
    )


@pytest.mark.slow
def test_lambda_search_runs_with_kfp_local(s3, tmp_path):
    res = _run_small(
        tmp_path,
        "tune",
        subjects=6,
        seed=1,
        epochs=2,
        lambda_search=True,
        lambda_grid=[0.0, 0.1],
        tune_overrides={"val_frac": 0.3},
    )
    status = {t["task"]: t["status"] for t in res["tasks"]}
    assert status["tune-lambda"] == status["tune-report"] == "SUCCESS", status
    sel = json.loads(next((tmp_path / "root").rglob("tune_selected.json")).read_text())
    assert sel["grid"] == [0.0, 0.1] and set(sel["per_fold"]) == {"0", "1"} and sel["paper_lam"] == 0.1
    assert len(list((tmp_path / "root").rglob("point-*.json"))) == 4  # 2 λ tasks × 2 folds


@pytest.mark.slow
def test_ablations_and_fig4_run_with_kfp_local(s3, tmp_path):
    """Issue 19.5: the ablation branch of a kfp.local run, then its row of Fig. 4 beside the paper's values."""
    res = _run_small(tmp_path, "abl", subjects=4, seed=2, epochs=1, ablations=True)
    status = {t["task"]: t["status"] for t in res["tasks"]}
    assert status["ablations"] == status["fig4"] == "SUCCESS", status
    root = tmp_path / "root"
    cells = pd.read_csv(next(root.rglob("fig4.csv")))
    assert set(cells["setting"]) == {"bu3dfe-I"} and len(cells) == 6
    assert cells.set_index("column").loc["full − no_cvsa", "paper"] == pytest.approx(11.65)  # §4.4.1
    assert cells["ours"].notna().any()
    htmls = [p for p in root.rglob("report") if p.is_file() and "fig4" in str(p)]
    assert htmls and "data:image/png;base64," in htmls[0].read_text()
    mds = [p for p in root.rglob("markdown") if p.is_file() and "fig4" in str(p)]
    assert mds and "BU-3DFE (Subset I)" in mds[0].read_text() and "random backbone weights" in mds[0].read_text()
