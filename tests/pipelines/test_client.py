"""Submit and schedule against a stub KFP API that records request bodies and headers."""

import re

import pytest

from pipelines.cli import PACKAGE, main, schedule, submit
from tests.pipelines.kfp_stub import Stub


def _caching(spec: dict) -> dict[str, bool]:
    """Task name → enableCache over every DAG of a pipeline spec (container tasks only)."""
    comps = spec["components"]
    dags = [spec["root"]["dag"]] + [c["dag"] for c in comps.values() if "dag" in c]
    return {
        name: t.get("cachingOptions", {}).get("enableCache", False)  # proto3 JSON omits false
        for d in dags
        for name, t in d["tasks"].items()
        if "dag" not in comps[t["componentRef"]["name"]]
    }


def test_submit_sends_the_package_parameters_service_account_and_token(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cr3t\n")
    with Stub() as s:
        rid = main(
            [
                "submit",
                "--host",
                s.url,
                "--param",
                "n_folds=3",
                "dataset=bosphorus",
                "epochs=5",
                "--run-name",
                "r1",
                "--service-account",
                "pipeline-runner",
                "--token-file",
                str(tok),
            ]
        )
    assert rid == 0
    runs = [b for m, p, b in s.requests if m == "POST" and p.endswith("/runs")]
    assert len(runs) == 1
    body = runs[0]
    assert body["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "facet-vlm"
    assert body["runtime_config"]["parameters"] == {"n_folds": 3, "dataset": "bosphorus", "epochs": 5}
    assert body["experiment_id"] == "exp-1" and body["display_name"] == "r1"
    assert body["service_account"] == "pipeline-runner"
    assert all(h.get("authorization") == "Bearer s3cr3t" for h in s.headers)


def test_schedule_sets_catchup_and_caching_explicitly():
    with Stub() as s:
        assert schedule(s.url, "0 0 3 * * 1", {"n_folds": 10}) == "rr-1"
    body = next(b for m, p, b in s.requests if p.endswith("/recurringruns"))
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"
    assert body["runtime_config"]["parameters"] == {"n_folds": 10} and str(body["max_concurrency"]) == "1"
    assert body["no_catchup"] is True
    cache = _caching(body["pipeline_spec"]["pipeline_spec"])
    # the data fingerprint, the registry decision and the deployment run every time; the rest is keyed
    assert not cache["fingerprint"] and not cache["register"] and not cache["deploy"]
    assert cache["ingest"] and cache["train-fold"] and cache["render"]


def test_schedule_without_cache_turns_every_task_off():
    with Stub() as s:
        schedule(s.url, "0 0 3 * * 1", {}, caching=False, catchup=True)
    body = next(b for m, p, b in s.requests if p.endswith("/recurringruns"))
    assert body["no_catchup"] is False
    assert not any(_caching(body["pipeline_spec"]["pipeline_spec"]).values())


def test_unknown_or_mistyped_params_are_refused_before_sending(capsys):
    with Stub() as s:
        with pytest.raises(SystemExit, match=r"nfolds: not an input of this pipeline; valid: .*n_folds"):
            submit(s.url, {"nfolds": 5})
        assert main(["submit", "--host", s.url, "--param", "n_folds=ten"]) == 2
        assert capsys.readouterr().err == 'error: --param n_folds="ten": expected number integer\n'
        with pytest.raises(SystemExit, match="deploy_target=local"):
            schedule(s.url, "0 0 3 * * 1", {"deploy_target": "local"})
    assert not [r for r in s.requests if r[0] == "POST"]


def test_numbers_for_string_inputs_are_sent_as_strings():
    with Stub() as s:
        submit(s.url, {"model_name": 7})
    body = next(b for m, p, b in s.requests if p.endswith("/runs"))
    assert body["runtime_config"]["parameters"] == {"model_name": "7"}


def test_unreachable_host_is_one_line():
    with pytest.raises(SystemExit) as e:
        submit("http://127.0.0.1:9", {})
    msg = str(e.value)
    assert msg.startswith("KFP API at http://127.0.0.1:9") and "\n" not in msg


def test_five_field_cron_refused(capsys):
    assert main(["schedule", "--host", "http://127.0.0.1:9", "--cron", "0 3 * * 1", "--package", str(PACKAGE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --cron '0 3 * * 1': KFP cron needs 6 fields") and err.count("\n") == 1


def test_default_run_name_is_the_pipelines_name():
    with Stub() as s:
        submit(s.url, {})
    body = next(b for m, p, b in s.requests if p.endswith("/runs"))
    name, _, stamp = body["display_name"].partition(" ")
    assert name == "facet-vlm" == body["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d-\d\d-\d\d", stamp), body["display_name"]


@pytest.mark.parametrize(
    "args, says",
    [
        (["submit", "--host", "http://127.0.0.1:9"], "KFP API at http://127.0.0.1:9: "),
        (["submit", "--host", "http://127.0.0.1:9", "--param", "nfolds=3"], "--param nfolds: not an input"),
        (
            ["submit", "--host", "http://127.0.0.1:9", "--package", "/nonexistent/p.yaml"],
            "/nonexistent/p.yaml: No such",
        ),
        (["submit", "--host", "http://127.0.0.1:9", "--token-file", "/nonexistent/t"], "/nonexistent/t: No such file"),
    ],
)
def test_facet_vlm_pipeline_errors_are_one_line_exit_2(args, says, capsys):
    from pipelines.entry import main as facet_vlm

    assert facet_vlm(["pipeline", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {says}") and err.count("\n") == 1, err


def test_console_script_mounts_pipeline_and_demo(tmp_path, capsys):
    from pipelines.entry import main as facet_vlm

    assert facet_vlm(["pipeline", "compile", "--out", str(tmp_path / "p.yaml")]) == 0
    assert (tmp_path / "p.yaml").read_bytes() == PACKAGE.read_bytes()
    with pytest.raises(SystemExit) as e:
        facet_vlm(["demo", "--help"])
    assert e.value.code == 0 and "--keep-serving" in capsys.readouterr().out
