"""Deployment artefacts validated offline: the deploy step's InferenceService and the kustomize
overlays against KServe's CRD schema and the Kubernetes schemas, Dockerfiles through hadolint."""

import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from facet_lib.serving.deploy import deploy_kserve, deploy_step, inference_service

ROOT = Path(__file__).resolve().parent.parent
CRD = ROOT.parent / "shared" / "schemas" / "kserve" / "serving.kserve.io_inferenceservices.yaml"


@pytest.fixture(scope="module")
def isvc_schema():
    if not CRD.exists():
        pytest.skip(f"KServe CRD schema not found at {CRD} (../shared is absent)")
    crd = yaml.safe_load(CRD.read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")["schema"]["openAPIV3Schema"]


def _unknown_fields(obj, schema, path="") -> list[str]:
    """Strict check the OpenAPI schema alone does not do: keys the schema does not define."""
    if (
        isinstance(obj, dict)
        and schema.get("type") == "object"
        and "properties" in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        bad = [f"{path}.{k}" for k in obj if k not in schema["properties"]]
        for k, v in obj.items():
            if k in schema["properties"]:
                bad += _unknown_fields(v, schema["properties"][k], f"{path}.{k}")
        return bad
    if isinstance(obj, list) and "items" in schema:
        return [b for i, x in enumerate(obj) for b in _unknown_fields(x, schema["items"], f"{path}[{i}]")]
    return []


def _validate_isvc(obj, schema):
    jsonschema.validate(obj, schema)
    assert _unknown_fields(obj, schema) == []


def test_deploy_step_inference_service_is_valid(isvc_schema):
    isvc = inference_service("facet-vlm", "team-a", "s3://facet-models/registry/facet-vlm/v0003", canary_percent=10)
    _validate_isvc(isvc, isvc_schema)
    pred = isvc["spec"]["predictor"]
    assert pred["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "s3://facet-models/registry/facet-vlm/v0003" in pred["containers"][0]["args"]
    assert pred["serviceAccountName"] == "facet-s3" and pred["canaryTrafficPercent"] == 10
    bad = {**isvc, "spec": {"predictor": {**pred, "minReplicas": "one"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, isvc_schema)
    assert _unknown_fields({**isvc, "spec": {"predictor": {**pred, "gpuCount": 1}}}, isvc_schema) == [
        ".spec.predictor.gpuCount"
    ]


class FakeKServe:
    def __init__(self, exists: bool):
        self.exists, self.calls = exists, []

    def get(self, name, namespace):
        self.calls.append(("get", name, namespace))
        if not self.exists and len(self.calls) == 1:
            raise RuntimeError("404")
        return {"status": {"url": f"http://{name}.{namespace}.example"}}

    def create(self, isvc, namespace):
        self.calls.append(("create", isvc, namespace))

    def patch(self, name, isvc, namespace):
        self.calls.append(("patch", name, isvc, namespace))

    def wait_isvc_ready(self, name, namespace, timeout_seconds):
        self.calls.append(("wait", name, namespace, timeout_seconds))


def test_deploy_creates_then_updates_and_waits_for_readiness():
    isvc = inference_service("facet-vlm", "team-a", "s3://m/v0001")
    new = FakeKServe(exists=False)
    assert deploy_kserve(isvc, client=new) == "http://facet-vlm.team-a.example"
    assert [c[0] for c in new.calls] == ["get", "create", "wait", "get"] and new.calls[1][1] is isvc
    old = FakeKServe(exists=True)
    deploy_kserve(isvc, client=old)
    assert [c[0] for c in old.calls] == ["get", "patch", "wait", "get"]
    with pytest.raises(Exception, match="kserve or local"):
        deploy_step("s3://m/v0001", "mars", "ns", "facet-vlm")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (for `kubectl kustomize`) not installed")
@pytest.mark.parametrize("overlay", ["base", "overlays/gpu", "overlays/cpu-dev", "kfp-standalone"])
def test_kustomize_overlays_validate(overlay, isvc_schema):
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "manifests" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    version = kubernetes_validate.utils.latest_version()
    kinds = set()
    for d in docs:
        kinds.add(d["kind"])
        if d["kind"] == "InferenceService":
            _validate_isvc(d, isvc_schema)
            gpu = d["spec"]["predictor"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")
            assert (gpu == "1") == (overlay != "overlays/cpu-dev")
        else:
            kubernetes_validate.validate(d, version, strict=True)
    if overlay != "kfp-standalone":
        assert {"InferenceService", "Secret", "ServiceAccount", "Role", "RoleBinding"} <= kinds
        secret = next(d for d in docs if d["kind"] == "Secret")
        assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"]


def test_strict_kubernetes_validation_catches_a_typo():
    bad = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}, "secretz": []}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.utils.latest_version(), strict=True)


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "Dockerfiles").glob("*.Dockerfile")), ids=lambda p: p.name)
def test_dockerfiles_lint_clean(dockerfile):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    r = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
    text = dockerfile.read_text()
    assert "USER " in text and "constraints.txt" in text  # non-root, pinned installs
