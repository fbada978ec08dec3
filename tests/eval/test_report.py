"""The one CV report (CLI and pipeline): table, best-fold rule, weights note, files; no torch needed."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from facet_lib.errors import ConfigError
from facet_lib.eval.report import RANDOM_WEIGHTS_NOTE, read_folds, weights_note, write_report

LABELS = ["happy", "sad"]


def _fold(root, k, correct, weights="random (untrained)", labels=LABELS):
    """A fold folder as train_one_fold writes it: ``correct`` of 4 test samples right in both modes."""
    d = root / f"fold_{k}"
    d.mkdir()
    truth = ["happy", "sad", "happy", "sad"]
    pred = [t if i < correct else ("sad" if t == "happy" else "happy") for i, t in enumerate(truth)]
    df = pd.DataFrame({"sample_id": [f"s{k}{i}" for i in range(4)], "subject": f"S{k}", "label": truth})
    for mode in ("class_conditional", "label_free"):
        df[f"pred_{mode}"] = pred
    df.to_csv(d / "predictions.csv", index=False)
    info = {"fold": k, "labels": labels, "metrics": {"accuracy": correct / 4}, "backbone_weights": weights}
    (d / "fold.json").write_text(json.dumps(info))
    return d


def test_report_files_best_fold_and_mean(tmp_path):
    dirs = [_fold(tmp_path, k, c) for k, c in enumerate([2, 4, 4, 1])]
    s = write_report(dirs, tmp_path / "out", {"variant": "full", "protocol": "bu3dfe-I"})
    for f in ("cv_table.csv", "confusion.png", "per_fold_accuracy.png", "summary.json", "report.md", "report.html"):
        assert (tmp_path / "out" / f).stat().st_size > 0, f
    assert s["best_fold"] == 1  # highest accuracy; the tie with fold 2 goes to the lower fold number
    assert s["best_fold_dir"] == str(dirs[1])
    assert s["accuracy_mean"] == pytest.approx(np.mean([0.5, 1, 1, 0.25]))
    assert s["per_fold_accuracy"] == {"0": 0.5, "1": 1.0, "2": 1.0, "3": 0.25}
    assert s["note"] == RANDOM_WEIGHTS_NOTE and RANDOM_WEIGHTS_NOTE in (tmp_path / "out" / "report.md").read_text()
    assert s["protocol"] == "bu3dfe-I" and json.loads((tmp_path / "out" / "summary.json").read_text()) == s


def test_real_weights_get_no_note(tmp_path):
    dirs = [_fold(tmp_path, k, 3, weights="openai") for k in range(2)]
    assert write_report(dirs, tmp_path / "out")["note"] is None
    assert weights_note("openai") is None and weights_note("random (untrained)") == RANDOM_WEIGHTS_NOTE


def test_bad_fold_folders_are_named(tmp_path):
    with pytest.raises(ConfigError, match="not a trained fold"):
        read_folds([tmp_path])
    dirs = [_fold(tmp_path, 0, 2), _fold(tmp_path, 1, 2, labels=["sad", "happy"])]
    with pytest.raises(ConfigError, match="differ from the first fold"):
        read_folds(dirs)


def test_report_module_loads_no_torch():
    import subprocess

    code = "import sys, facet_lib.eval.report; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
