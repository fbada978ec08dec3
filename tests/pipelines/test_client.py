"""Submit and schedule against a stub KFP API that records request bodies."""

import pytest

from pipelines.cli import PACKAGE, main, schedule, submit
from tests.pipelines.kfp_stub import Stub


def test_submit_sends_the_package_and_parameters():
    with Stub() as s:
        assert submit(s.url, {"n_folds": 3, "dataset": "bosphorus"}, run_name="r1") == "run-1"
    runs = [b for m, p, b in s.requests if m == "POST" and p.endswith("/runs")]
    assert len(runs) == 1
    body = runs[0]
    assert body["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "facet-vlm"
    assert body["runtime_config"]["parameters"] == {"n_folds": 3, "dataset": "bosphorus"}
    assert body["experiment_id"] == "exp-1" and body["display_name"] == "r1"


def test_schedule_creates_a_recurring_run_with_six_field_cron():
    with Stub() as s:
        assert schedule(s.url, "0 0 3 * * 1", {"n_folds": 10}) == "rr-1"
    body = next(b for m, p, b in s.requests if p.endswith("/recurringruns"))
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"
    assert body["runtime_config"]["parameters"] == {"n_folds": 10} and str(body["max_concurrency"]) == "1"


def test_five_field_cron_refused():
    with pytest.raises(SystemExit, match="6 fields"):
        main(["schedule", "--host", "http://127.0.0.1:9", "--cron", "0 3 * * 1", "--package", str(PACKAGE)])
