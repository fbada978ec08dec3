"""manifests/katib: the λ search as a Katib Experiment, checked offline the way Katib would admit it.

Katib's Experiment CRD preserves unknown fields (its schema checks nothing inside spec), so the object is
checked (1) against the v1beta1 Go types' Swagger definitions, tightened to refuse unknown fields (the
webhook decodes into those types and would silently drop a misspelt field), and (2) against the admission
rules of Katib's webhook and grid suggestion service, restated from their source (tests/schemas/katib/
SOURCE.txt); the trial's Job is validated strictly as a Kubernetes batch/v1 Job, and its command is parsed
by the real `facet-vlm` parser.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from facet_lib import __version__
from facet_lib.config import TuneConfig
from tests.test_deploy_manifests import tool

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "tests" / "schemas" / "katib"
PARAM_REF = re.compile(r"\$\{trialParameters\..+?\}")  # consts.TrialTemplateParamReplaceFormatRegex
NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?")  # validator.go: metadata.name (and <= 40 characters)
PARAM_TYPES = {"int", "double", "categorical", "discrete", "unknown"}
DISTRIBUTIONS = {"", "uniform", "logUniform", "normal", "logNormal", "unknown"}
COLLECTORS = {"StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "None", "Push"}


@pytest.fixture(scope="module")
def experiment() -> dict:
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(ROOT / "manifests" / "katib")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert [d["kind"] for d in docs] == ["Experiment"]
    return docs[0]


def _type_schema() -> dict:
    """ExperimentSpec from Katib's swagger.json; its own types refuse unknown fields, Kubernetes types it
    only references (Container, ObjectMeta: not in that file) are left open (the Job is checked below)."""
    defs = json.loads((SCHEMAS / "swagger.json").read_text())["definitions"]
    for name, d in defs.items():
        if name.startswith("v1beta1.") and "properties" in d:
            d["additionalProperties"] = False
    text = json.dumps(defs)
    for ref in set(re.findall(r'"#/definitions/(v1\.[^"]+)"', text)):
        defs.setdefault(ref, {})
    return {"definitions": defs, "$ref": "#/definitions/v1beta1.ExperimentSpec"}


def admission_errors(exp: dict) -> list[str]:
    """Katib's webhook rules for this Experiment (validator.go) and the grid service's (optuna/service.py)."""
    errs: list[str] = []
    spec, meta = exp.get("spec", {}), exp.get("metadata", {})
    name = meta.get("name", "")
    if not NAME.match(name) or len(name) > 40:
        errs.append("metadata.name")
    max_t, par, fail = spec.get("maxTrialCount"), spec.get("parallelTrialCount"), spec.get("maxFailedTrialCount")
    if max_t is not None and max_t <= 0 or par is not None and par <= 0 or fail is not None and fail < 0:
        errs.append("trial counts")
    if max_t is not None and (par or 0) > max_t or max_t is not None and (fail or 0) > max_t:
        errs.append("parallelTrialCount/maxFailedTrialCount > maxTrialCount")
    obj = spec.get("objective") or {}
    if obj.get("type") not in ("minimize", "maximize") or not obj.get("objectiveMetricName"):
        errs.append("objective")
    if obj.get("objectiveMetricName") in obj.get("additionalMetricNames", []):
        errs.append("objective.additionalMetricNames")
    config = yaml.safe_load((SCHEMAS / "katib-config.yaml").read_text())
    algorithms = {s["algorithmName"] for s in config["runtime"]["suggestions"]}  # GetSuggestionConfigData
    if spec.get("algorithm", {}).get("algorithmName") not in algorithms:
        errs.append("algorithm.algorithmName")
    params = spec.get("parameters", [])
    if not params:
        errs.append("spec.parameters")
    combos = 1
    for p in params:
        fs, ptype = p.get("feasibleSpace", {}), p.get("parameterType")
        if ptype not in PARAM_TYPES or fs.get("distribution", "") not in DISTRIBUTIONS or not fs:
            errs.append(f"parameters.{p.get('name')}")
        if ptype in ("double", "int") and (fs.get("list") or not fs.get("min") or not fs.get("max")):
            errs.append(f"parameters.{p.get('name')}.feasibleSpace")
        if ptype in ("categorical", "discrete") and any(fs.get(k) for k in ("min", "max", "step")):
            errs.append(f"parameters.{p.get('name')}.feasibleSpace")
        combos *= len(fs.get("list", [])) or 1
    if spec.get("algorithm", {}).get("algorithmName") == "grid" and (max_t or 0) > combos:
        errs.append("maxTrialCount > grid combinations")
    tt = spec.get("trialTemplate") or {}
    if not tt.get("primaryContainerName") or not tt.get("successCondition") or not tt.get("failureCondition"):
        errs.append("trialTemplate conditions/primaryContainerName")
    text = json.dumps(tt.get("trialSpec", {}))
    names, refs = set(), set()
    for tp in tt.get("trialParameters") or []:
        n, r = tp.get("name", ""), tp.get("reference", "")
        if not n or not r or "{" in n or "}" in n or n in names or r in refs:
            errs.append(f"trialParameters.{n}")
        names.add(n)
        refs.add(r)
        if r not in {p.get("name") for p in params}:
            errs.append(f"trialParameters.{n}.reference")
        if f"${{trialParameters.{n}}}" not in text:
            errs.append(f"trialParameters.{n} not in trialSpec")
        text = text.replace(f"${{trialParameters.{n}}}", "test-value")
    if PARAM_REF.findall(text):
        errs.append("trialSpec uses undeclared trialParameters")
    run = tt.get("trialSpec", {})
    if run.get("metadata", {}).get("name") or run.get("metadata", {}).get("namespace"):
        errs.append("trialSpec metadata.name/namespace")
    if not run.get("apiVersion") or not run.get("kind"):
        errs.append("trialSpec apiVersion/kind")
    containers = run.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    if tt.get("primaryContainerName") not in {c.get("name") for c in containers}:
        errs.append("primaryContainerName not a container of the Job")
    mc = spec.get("metricsCollectorSpec", {})
    if mc.get("collector", {}).get("kind", "StdOut") not in COLLECTORS:
        errs.append("metricsCollectorSpec.collector.kind")
    for fmt in mc.get("source", {}).get("filter", {}).get("metricsFormat", []):
        re.compile(fmt)
        if not re.match(r".*\(.*\).*\(.*\).*", fmt):
            errs.append("metricsFormat needs two top subexpressions")
    return errs


def test_experiment_matches_katibs_types(experiment):
    jsonschema.Draft4Validator(_type_schema()).validate(experiment["spec"])
    assert experiment["apiVersion"] == "kubeflow.org/v1beta1" and experiment["metadata"]["namespace"]


def test_type_check_catches_a_misspelt_field(experiment):
    bad = copy.deepcopy(experiment["spec"])
    bad["objective"]["objectiveMetric"] = bad["objective"].pop("objectiveMetricName")
    with pytest.raises(jsonschema.ValidationError, match="objectiveMetric"):
        jsonschema.Draft4Validator(_type_schema()).validate(bad)


def test_experiment_passes_katibs_admission_rules(experiment):
    assert admission_errors(experiment) == []


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda e: e["metadata"].update(name="Facet_Lambda"), "metadata.name"),
        (lambda e: e["spec"].update(maxTrialCount=5), "maxTrialCount > grid combinations"),
        (lambda e: e["spec"]["algorithm"].update(algorithmName="gridsearch"), "algorithm.algorithmName"),
        (lambda e: e["spec"]["trialTemplate"].update(primaryContainerName="main"), "primaryContainerName not a"),
        (lambda e: e["spec"]["trialTemplate"]["trialParameters"][0].update(reference="lambda"), ".reference"),
        (lambda e: e["spec"]["parameters"][0]["feasibleSpace"].update(min="0"), "feasibleSpace"),
        (lambda e: e["spec"]["metricsCollectorSpec"]["source"]["filter"].update(metricsFormat=["val=(.*)"]), "two"),
    ],
)
def test_admission_rules_refuse_what_katib_refuses(experiment, change, error):
    bad = copy.deepcopy(experiment)
    change(bad)
    assert any(error in e for e in admission_errors(bad))


def test_trial_job_is_a_valid_batch_job(experiment):
    job = copy.deepcopy(experiment["spec"]["trialTemplate"]["trialSpec"])
    job["metadata"] = {"name": "trial"}  # Katib names the Job; the template must not
    job = json.loads(json.dumps(job).replace("${trialParameters.lam}", "0.1"))
    kubernetes_validate.validate(job, kubernetes_validate.utils.latest_version(), strict=True)
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["image"] == f"ghcr.io/facet-vlm-ops/facet-train:{__version__}"


def test_trial_command_is_the_cli_and_the_grid_is_tune_configs(experiment):
    from facet_lib.cli import build_parser

    (c,) = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"]
    assert c["command"][:2] == ["facet-vlm", "tune"]
    args = build_parser().parse_args([a.replace("${trialParameters.lam}", "0.1") for a in c["command"][1:]])
    assert args.grid == [0.1] and args.preset == "paper"
    grid = [float(v) for v in experiment["spec"]["parameters"][0]["feasibleSpace"]["list"]]
    assert grid == list(TuneConfig().grid) and experiment["spec"]["maxTrialCount"] == len(grid)


def test_stdout_filter_reads_what_the_tune_command_prints(experiment):
    """The line `facet-vlm tune` prints per λ (facet_lib/cli/train.py) parses to the objective metric."""
    (fmt,) = experiment["spec"]["metricsCollectorSpec"]["source"]["filter"]["metricsFormat"]
    line = f"lam={0.1:g} val_accuracy={0.4375:.6f}"  # the format string of facet_lib.cli.train._tune
    assert "val_{a.metric}={mean[lam]:.6f}" in (ROOT / "facet_lib" / "cli" / "train.py").read_text()
    name, value = re.search(fmt, line).groups()[:2]
    assert name == experiment["spec"]["objective"]["objectiveMetricName"] and float(value) == 0.4375
