"""`facet-vlm pipeline …`: compile the IR YAML, run locally, submit a run, schedule retraining."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PACKAGE = Path(__file__).with_name("facet_vlm.yaml")


def compile_pipeline(out: str | Path = PACKAGE) -> Path:
    from kfp import compiler

    from pipelines.facet_vlm import facet_vlm_pipeline

    compiler.Compiler().compile(facet_vlm_pipeline, str(out))
    return Path(out)


def _params(items: list[str]) -> dict:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _client(host: str, namespace: str | None):
    import kfp

    return kfp.Client(host=host, namespace=namespace)


def submit(
    host: str,
    params: dict,
    experiment: str = "facet-vlm",
    run_name: str | None = None,
    namespace: str | None = None,
    package: str | Path = PACKAGE,
) -> str:
    """Submit one run of the compiled package; returns the run id."""
    client = _client(host, namespace)
    run = client.create_run_from_pipeline_package(
        str(package), arguments=params, run_name=run_name, experiment_name=experiment, namespace=namespace
    )
    return run.run_id


def schedule(
    host: str,
    cron: str,
    params: dict,
    name: str = "facet-vlm-retrain",
    experiment: str = "facet-vlm",
    namespace: str | None = None,
    package: str | Path = PACKAGE,
    max_concurrency: int = 1,
) -> str:
    """A recurring run. KFP cron has six fields, seconds first: '0 0 3 * * 1' = Mondays 03:00."""
    fields = cron.split()
    if len(fields) != 6:
        raise SystemExit(f"--cron '{cron}': KFP cron needs 6 fields (seconds first), got {len(fields)}")
    client = _client(host, namespace)
    exp = client.create_experiment(experiment, namespace=namespace)
    job = client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=name,
        cron_expression=cron,
        pipeline_package_path=str(package),
        params=params,
        max_concurrency=max_concurrency,
        enabled=True,
    )
    return job.recurring_run_id


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="facet-vlm pipeline")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="write the KFP IR YAML for upload in the KFP UI")
    c.add_argument("--out", default=str(PACKAGE))
    for name in ("submit", "schedule"):
        s = sub.add_parser(name)
        s.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow")
        s.add_argument("--namespace", default=None)
        s.add_argument("--experiment", default="facet-vlm")
        s.add_argument("--param", nargs="*", default=[], help="name=value (JSON values allowed)")
        s.add_argument("--package", default=str(PACKAGE))
        if name == "schedule":
            s.add_argument("--cron", required=True, help="six fields, seconds first: '0 0 3 * * 1'")
            s.add_argument("--name", default="facet-vlm-retrain")
        else:
            s.add_argument("--run-name", default=None)
    a = p.parse_args(argv)
    if a.cmd == "compile":
        print(f"compiled: {compile_pipeline(a.out)}")
    elif a.cmd == "submit":
        print(f"run id: {submit(a.host, _params(a.param), a.experiment, a.run_name, a.namespace, a.package)}")
    else:
        rid = schedule(a.host, a.cron, _params(a.param), a.name, a.experiment, a.namespace, a.package)
        print(f"recurring run id: {rid}")
    return 0
