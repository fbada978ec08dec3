"""`facet-vlm pipeline …`: compile the IR YAML, submit a run, schedule retraining (and `demo`).

Runs and recurring runs are checked before anything is sent: every ``--param`` must be a pipeline input
of the right type (a typo such as ``nfolds=5`` is refused with the list of valid names).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

PACKAGE = Path(__file__).with_name("facet_vlm.yaml")
_DEFAULT = re.compile(r"^(#\s+\w+: \w+ \[Default: )(.*)(\])$")
_TYPES = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "STRUCT": (dict,),
    "LIST": (list,),
}


def _sorted(v):
    if isinstance(v, dict):
        return {k: _sorted(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v


def _stable_header(text: str) -> str:
    """kfp writes dict defaults into the YAML's header comment in protobuf map order, which changes with
    PYTHONHASHSEED; rewrite them with sorted keys so recompiling gives identical bytes."""
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") and (m := _DEFAULT.match(line.rstrip("\n"))) and m[2].startswith("{"):
            line = f"{m[1]}{_sorted(ast.literal_eval(m[2]))!r}{m[3]}\n"
        out.append(line)
    return "".join(out)


def compile_pipeline(out: str | Path = PACKAGE) -> Path:
    """Compile the pipeline to KFP IR YAML (byte-identical for the same code and settings)."""
    from kfp import compiler

    from pipelines.facet_vlm import facet_vlm_pipeline

    out = Path(out)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / "p.yaml"
        compiler.Compiler().compile(facet_vlm_pipeline, str(tmp))
        out.write_text(_stable_header(tmp.read_text()))
    return out


def pipeline_name(package: str | Path = PACKAGE) -> str:
    """The name the package's pipeline was compiled with (``pipelineInfo.name``)."""
    return next(yaml.safe_load_all(Path(package).read_text()))["pipelineInfo"]["name"]


def default_run_name(package: str | Path = PACKAGE) -> str:
    """``<pipeline name> <timestamp>``, the shape of kfp's own default (which names the package file)."""
    return f"{pipeline_name(package)} {datetime.datetime.now().strftime('%Y-%m-%d %H-%M-%S')}"


def pipeline_inputs(package: str | Path = PACKAGE) -> dict[str, dict]:
    """The pipeline's input parameters as compiled: name → {"parameterType", "defaultValue"?, "description"}."""
    spec = next(yaml.safe_load_all(Path(package).read_text()))
    return spec["root"]["inputDefinitions"]["parameters"]


def parse_params(items: list[str]) -> dict:
    """``name=value`` items; values are JSON when they parse as JSON, else strings."""
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise SystemExit(f"--param '{item}': expected name=value")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def check_params(params: dict, package: str | Path = PACKAGE, cluster: bool = True) -> dict:
    """Refuse names that are not pipeline inputs and values of the wrong type (numbers given for a string
    input are sent as strings). ``cluster``: also refuse deploy_target=local (kfp.local runs only)."""
    inputs = pipeline_inputs(package)
    unknown = sorted(set(params) - set(inputs))
    if unknown:
        raise SystemExit(f"--param {', '.join(unknown)}: not an input of this pipeline; valid: {', '.join(inputs)}")
    out = {}
    for k, v in params.items():
        kind = inputs[k]["parameterType"]
        if kind == "STRING" and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = json.dumps(v)
        ok = isinstance(v, _TYPES[kind]) and not (isinstance(v, bool) and kind.startswith("NUMBER"))
        if not ok:
            raise SystemExit(f"--param {k}={json.dumps(v)}: expected {kind.lower().replace('_', ' ')}")
        out[k] = v
    if cluster and out.get("deploy_target") == "local":
        raise SystemExit("--param deploy_target=local: 'local' is for kfp.local runs; use kserve or none on a cluster")
    return out


def with_caching(package: str | Path, enabled: bool, out: str | Path) -> Path:
    """The package with every task's caching set explicitly: ``enabled`` keeps the compiled choices
    (fingerprint, register and deploy never cached, the rest keyed by the data fingerprint); otherwise no
    task is cached. (kfp.Client's own enable_caching only reaches the top-level tasks, not the sub-DAG.)"""
    docs = list(yaml.safe_load_all(Path(package).read_text()))
    spec = docs[0]
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    for dag in dags:
        for task in dag["tasks"].values():
            if "componentRef" in task and "dag" not in spec["components"][task["componentRef"]["name"]]:
                opts = task.setdefault("cachingOptions", {})
                opts["enableCache"] = bool(enabled and opts.get("enableCache", False))
    Path(out).write_text(yaml.safe_dump_all(docs, sort_keys=True))
    return Path(out)


@contextlib.contextmanager
def _api(host: str):
    """KFP API failures (unreachable host, refused credentials) as one line instead of a traceback."""
    try:
        yield
    except SystemExit:
        raise
    except Exception as e:  # urllib3/kfp_server_api errors carry long bodies: keep the first line
        reason = str(getattr(e, "reason", None) or e).strip().splitlines()[0][:300]
        raise SystemExit(f"KFP API at {host}: {type(e).__name__}: {reason}") from None


def _client(host: str, namespace: str | None, token: str | None):
    import kfp

    return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=token or None)


def submit(
    host: str,
    params: dict,
    experiment: str = "facet-vlm",
    run_name: str | None = None,
    namespace: str | None = None,
    package: str | Path = PACKAGE,
    service_account: str | None = None,
    token: str | None = None,
    caching: bool = True,
) -> str:
    """Submit one run of the compiled package; returns the run id. The run is named ``run_name``, by
    default ``<pipeline name> <timestamp>``."""
    params = check_params(params, package)
    run_name = run_name or default_run_name(package)
    with tempfile.TemporaryDirectory() as d, _api(host):
        pkg = with_caching(package, caching, Path(d) / "p.yaml")
        run = _client(host, namespace, token).create_run_from_pipeline_package(
            str(pkg),
            arguments=params,
            run_name=run_name,
            experiment_name=experiment,
            namespace=namespace,
            service_account=service_account,
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
    service_account: str | None = None,
    token: str | None = None,
    caching: bool = True,
    catchup: bool = False,
) -> str:
    """A recurring run. KFP cron has six fields, seconds first: '0 0 3 * * 1' = Mondays 03:00.
    Missed intervals are not back-filled unless ``catchup``; caching is set explicitly on every task."""
    fields = cron.split()
    if len(fields) != 6:
        raise SystemExit(f"--cron '{cron}': KFP cron needs 6 fields (seconds first), got {len(fields)}")
    params = check_params(params, package)
    with tempfile.TemporaryDirectory() as d, _api(host):
        pkg = with_caching(package, caching, Path(d) / "p.yaml")
        client = _client(host, namespace, token)
        exp = client.create_experiment(experiment, namespace=namespace)
        job = client.create_recurring_run(
            experiment_id=exp.experiment_id,
            job_name=name,
            cron_expression=cron,
            pipeline_package_path=str(pkg),
            params=params,
            max_concurrency=max_concurrency,
            no_catchup=not catchup,
            service_account=service_account,
            enabled=True,
        )
        return job.recurring_run_id


def _token(a: argparse.Namespace) -> str | None:
    if a.token_file:
        return Path(a.token_file).read_text().strip()
    return os.environ.get("KFP_TOKEN") or None


def _fill(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="write the KFP IR YAML for upload in the KFP UI", formatter_class=fmt)
    c.add_argument("--out", default=str(PACKAGE), help="where to write the YAML")
    for name in ("submit", "schedule"):
        s = sub.add_parser(
            name, formatter_class=fmt, help="start one run" if name == "submit" else "create a recurring run"
        )
        s.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow")
        s.add_argument("--namespace", default=None, help="Kubeflow profile namespace (multi-user clusters)")
        s.add_argument("--experiment", default="facet-vlm", help="KFP experiment the run(s) belong to")
        s.add_argument("--param", nargs="*", default=[], help="pipeline input name=value (JSON values allowed)")
        s.add_argument("--package", default=str(PACKAGE), help="compiled pipeline YAML")
        s.add_argument("--service-account", default=None, help="Kubernetes service account the run's pods use")
        s.add_argument(
            "--token-file", default=None, help="file holding a bearer token for the KFP API (else $KFP_TOKEN)"
        )
        s.add_argument(
            "--no-cache", action="store_true", help="cache no task (otherwise: the compiled per-task choices)"
        )
        if name == "schedule":
            s.add_argument("--cron", required=True, help="six fields, seconds first: '0 0 3 * * 1'")
            s.add_argument("--name", default="facet-vlm-retrain", help="recurring run name")
            s.add_argument("--catchup", action="store_true", help="back-fill intervals missed while paused")
            s.add_argument("--max-concurrency", type=int, default=1, help="runs of this schedule at once")
        else:
            s.add_argument(
                "--run-name", default=None, help="display name of the run (default: '<pipeline name> <timestamp>')"
            )
    p.set_defaults(func=run_args)
    return p


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``facet-vlm pipeline compile|submit|schedule`` (mounted by pipelines.entry)."""
    help = "Kubeflow pipeline: compile | submit | schedule"
    _fill(sub.add_parser("pipeline", help=help, description=__doc__, formatter_class=argparse.RawTextHelpFormatter))


def run_args(a: argparse.Namespace) -> int:
    if a.cmd == "compile":
        print(f"compiled: {compile_pipeline(a.out)}")
        return 0
    common = dict(
        namespace=a.namespace,
        package=a.package,
        service_account=a.service_account,
        token=_token(a),
        caching=not a.no_cache,
    )
    params = parse_params(a.param)
    if a.cmd == "submit":
        print(f"run id: {submit(a.host, params, a.experiment, a.run_name, **common)}")
    else:
        rid = schedule(
            a.host, a.cron, params, a.name, a.experiment, max_concurrency=a.max_concurrency, catchup=a.catchup, **common
        )
        print(f"recurring run id: {rid}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone ``python -m pipelines.cli``: the same one-line errors and exit 2 as ``facet-vlm``."""
    from facet_lib.cli import _one_line

    p = argparse.ArgumentParser(prog="facet-vlm pipeline", description=__doc__)
    a = _fill(p).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run_args(a)
    except (OSError, SystemExit) as e:
        if (msg := _one_line(e)) is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
