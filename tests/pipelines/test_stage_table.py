"""The stage table of a local run (the demo prints it): parallel tasks count once, gaps are kfp.local's."""

from pipelines.local_run import STAGES, format_stages, stage_times


def _t(task, start, end, status="SUCCESS"):
    return {"task": task, "started": start, "finished": end, "seconds": end - start, "status": status}


def test_stage_times_union_sum_and_gaps():
    tasks = [
        _t("configure", 0, 1),
        _t("ingest", 0.5, 3),
        _t("render", 3, 7),
        _t("render", 4, 8),  # beside the first: 5 s of wall, 8 s of task time
        _t("train-fold", 9, 12),
        _t("train-fold", 9, 11),
        _t("train-fold", 12, 14),
        _t("some-new-step", 14, 15),  # a task no stage names
        {"task": "deploy", "started": 15, "finished": None, "seconds": None, "status": "RUNNING"},
    ]
    rows = {r["stage"]: r for r in stage_times(tasks, seconds=16)}
    assert list(rows)[: len(STAGES)] == list(STAGES)
    assert rows["ingest"]["wall"] == 3 and rows["ingest"]["tasks"] == 2
    assert rows["render"]["wall"] == 5 and rows["render"]["task_seconds"] == 8
    assert rows["train"]["wall"] == 5 and rows["train"]["task_seconds"] == 7 and rows["train"]["tasks"] == 3
    assert rows["other tasks"]["wall"] == 1 and rows["deploy"]["tasks"] == 0
    assert rows["between tasks"]["wall"] == 16 - (3 + 5 + 5 + 1)  # 8→9 and 15→16
    text = format_stages(list(rows.values()), 16)
    assert "train" in text and text.splitlines()[-1].split() == ["total", "16.0"]
