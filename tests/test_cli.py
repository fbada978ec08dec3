import pandas as pd
import pytest

from facet_lib.cli import main


def test_generate_index_folds(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--dataset",
                "bu3dfe",
                "--out",
                str(tmp_path / "d"),
                "--subjects",
                "3",
                "--step",
                "4",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert main(["index", "--dataset", "bu3dfe", "--root", str(tmp_path / "d"), "--out", str(tmp_path / "i.csv")]) == 0
    out = capsys.readouterr().out
    assert "75 samples, 3 subjects, 0 quarantined" in out
    assert (
        main(
            [
                "folds",
                "--index",
                str(tmp_path / "i.csv"),
                "--protocol",
                "bu3dfe-I",
                "--k",
                "3",
                "--out",
                str(tmp_path / "f.csv"),
            ]
        )
        == 0
    )
    f = pd.read_csv(tmp_path / "f.csv")
    assert len(f) == 36 and f.groupby("subject").fold.nunique().max() == 1


def test_clear_error_exit_code(tmp_path, capsys):
    args = ["index", "--dataset", "bu3dfe", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "i.csv")]
    assert main(args) == 2
    assert "is not a directory" in capsys.readouterr().err


def _all_actions(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {n}".strip(), a) for n, a in _all_actions(sub))
        else:
            yield "", action


def test_every_option_has_help_and_defaults_come_from_the_dataclasses():
    from facet_lib.cli import build_parser
    from facet_lib.config import RenderConfig, ServeConfig
    from facet_lib.config.options import from_args

    p = build_parser()
    missing = [f"{cmd}: {a.option_strings}" for cmd, a in _all_actions(p) if a.option_strings and not a.help]
    assert missing == []
    args = p.parse_args(["render", "--index", "i.csv", "--out", "o"])
    assert from_args(RenderConfig, args) == RenderConfig()
    serve = p.parse_args(["serve"])
    assert (serve.model, serve.port, serve.max_batch) == (
        ServeConfig().model,
        ServeConfig().port,
        ServeConfig().max_batch,
    )


def test_version_and_help_show_defaults(capsys):
    import pytest

    import facet_lib

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"facet-vlm {facet_lib.__version__}"
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    out = capsys.readouterr().out
    assert "(default: 224)" in out and "(default: rankpool)" in out


def test_settings_resolve_preset_and_overrides(capsys):
    import json

    assert main(["settings", "--preset", "tiny-cpu", "--set", "head.cvsa=False", "epochs=3"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (
        s["model"]["clip_model"] == "facet-tiny" and s["model"]["head"]["cvsa"] is False and s["train"]["epochs"] == 3
    )
    assert main(["settings", "--set", "epochz=3"]) == 2
    assert "key 'epochz' matches none" in capsys.readouterr().err


def test_paper_preset_without_weights_is_refused(capsys):
    assert main(["settings", "--preset", "paper"]) == 2
    assert "--pretrained" in capsys.readouterr().err
    assert main(["settings", "--preset", "paper", "--allow-random-weights"]) == 0


def test_registry_without_credentials_names_the_variables(monkeypatch, tmp_path, capsys):
    import os

    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["registry", "list", "--registry", "s3://facet-models/registry"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AWS_ACCESS_KEY_ID" in err and "AWS_SECRET_ACCESS_KEY" in err


@pytest.mark.slow
def test_cv_then_export_end_to_end(synth_root, tmp_path, capsys, monkeypatch):
    """cv and export through the same step functions as the pipeline; a fold folder holds that fold's
    model and predictions only; export reads the views' manifest, never the views."""
    import json

    from facet_lib.render.dataset import RenderedDataset

    t = tmp_path
    assert main(["index", "--dataset", "bu3dfe", "--root", str(synth_root / "bu3dfe"), "--out", str(t / "i.csv")]) == 0
    assert (
        main(["folds", "--index", str(t / "i.csv"), "--protocol", "bu3dfe-I", "--k", "2", "--out", str(t / "f.csv")])
        == 0
    )
    assert main(["render", "--index", str(t / "i.csv"), "--out", str(t / "v"), "--size", "64", "--workers", "1"]) == 0
    cv = ["cv", "--views", str(t / "v"), "--folds", str(t / "f.csv"), "--protocol", "bu3dfe-I", "--out", str(t / "cv")]
    assert main([*cv, "--preset", "tiny-cpu", "--set", "epochs=2", "freeze_epochs=1", "device=cpu"]) == 0
    out = capsys.readouterr().out
    assert "best fold" in out and "NOTE: random backbone weights" in out
    files = {p.name for p in (t / "cv" / "fold_0").iterdir()} - {"checkpoint.pt"}
    assert files == {"fold.json", "predictions.csv", "trainable.safetensors", "baseline_predictions.csv"}
    summary = json.loads((t / "cv" / "summary.json").read_text())
    assert summary["protocol"] == "bu3dfe-I" and summary["folds"] == 2

    def no_views(self):
        raise AssertionError("export loaded the rendered views")

    monkeypatch.setattr(RenderedDataset, "load", no_views)
    monkeypatch.setattr(RenderedDataset, "shards", no_views)
    assert main(["export", "--cv", str(t / "cv"), "--views", str(t / "v"), "--out", str(t / "bundle")]) == 0
    cfg = json.loads((t / "bundle" / "config.json").read_text())
    assert cfg["fold"] == summary["best_fold"] and cfg["model"]["clip_model"] == "facet-tiny"


def _one_line_exit_2(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_missing_inputs_and_unusable_outputs_are_one_line_exit_2(tmp_path, capsys):
    t, afile = tmp_path, tmp_path / "afile"
    afile.write_text("x")
    (t / "cv").mkdir()
    cases = [
        (
            ["folds", "--index", str(t / "none.csv"), "--out", str(t / "f.csv")],
            f"--index {t / 'none.csv'}: no such file",
        ),
        (["render", "--index", str(t / "none.csv"), "--out", str(t / "v")], f"--index {t / 'none.csv'}: no such file"),
        (["render", "--index", str(t), "--out", str(t / "v")], f"--index {t}: not a file"),
        (["export", "--cv", str(t / "nocv"), "--views", str(t), "--out", str(t / "b")], "--cv " + str(t / "nocv")),
        (["export", "--cv", str(t / "cv"), "--views", str(t), "--out", str(t / "b")], "no summary.json"),
        (["generate", "--out", str(afile), "--subjects", "1"], f"--out {afile}: exists and is not a folder"),
    ]
    for args, says in cases:
        assert says in _one_line_exit_2(args, capsys), args


def test_index_with_the_wrong_dataset_is_refused(synth_root, tmp_path, capsys):
    args = ["index", "--dataset", "bosphorus", "--root", str(synth_root / "bu3dfe"), "--out", str(tmp_path / "i.csv")]
    err = _one_line_exit_2(args, capsys)
    assert "no bosphorus samples recognised" in err and "<bsNNN>_<CAT>_<CODE>_<k>.bnt" in err
    assert "wrong --dataset?" in err and not (tmp_path / "i.csv").exists()


def test_registry_fetch_to_an_unusable_folder_is_one_line_exit_2(s3, tmp_path, capsys):
    from facet_lib import registry
    from tests.bundle_helpers import fake_bundle

    fake_bundle(tmp_path / "b", "cli")
    reg = "s3://facet-reg/cli"
    info = registry.register(tmp_path / "b", reg, "m", "run-1", {}, {}, {})
    afile = tmp_path / "afile"
    afile.write_text("x")
    for dest in (afile, afile / "sub", "/proc/facet-no"):
        err = _one_line_exit_2(["registry", "fetch", f"{reg}/m@production", "--dest", str(dest)], capsys)
        assert f"cannot write into {dest}" in err
    assert main(["registry", "fetch", info["uri"], "--dest", str(tmp_path / "ok")]) == 0


def _boom(a):
    if a.what == "exit":
        raise SystemExit("went wrong\nsecond")
    if a.what == "disk":
        raise OSError(28, "No space left on device", "/x/shard")
    return 1 / 0  # a bug


def _boom_command(sub):
    p = sub.add_parser("boom")
    p.add_argument("--what")
    p.set_defaults(func=_boom)


def test_os_errors_and_messages_from_extensions_exit_2(capsys):
    from facet_lib.cli import _one_line

    assert main(["boom", "--what", "exit"], extensions=[_boom_command]) == 2
    assert capsys.readouterr().err == "error: went wrong\n"
    assert main(["boom", "--what", "disk"], extensions=[_boom_command]) == 2
    assert capsys.readouterr().err == "error: /x/shard: No space left on device\n"
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        main(["boom", "--what", "bug"], extensions=[_boom_command])
    assert _one_line(SystemExit(0)) is None
