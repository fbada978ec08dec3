"""The compiled pipeline: every step present, fan-out/fan-in wiring, GPU, secrets, resources, caching,
parameter descriptions, images following the compile-time settings, and byte-stable compilation."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.cli import PACKAGE, compile_pipeline

ROOT = Path(__file__).resolve().parents[2]


def _spec(tmp_path):
    docs = list(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def _compile_in_subprocess(out: Path, **env) -> bytes:
    settings = ("FACET_IMAGE_PREFIX", "FACET_IMAGE_TAG", "FACET_IMAGE_PULL_SECRET", "FACET_GPU_TYPE", "FACET_S3_SECRET")
    env = {**{k: v for k, v in os.environ.items() if k not in settings}, **env}
    code = f"from pipelines.cli import compile_pipeline; compile_pipeline({str(out)!r})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return _spec(tmp_path_factory.mktemp("compile"))


def test_compilation_is_byte_stable_and_the_committed_yaml_is_current(tmp_path):
    a = _compile_in_subprocess(tmp_path / "a.yaml", PYTHONHASHSEED="1")
    b = _compile_in_subprocess(tmp_path / "b.yaml", PYTHONHASHSEED="2")
    assert a == b, "compiled YAML differs between PYTHONHASHSEED=1 and 2"
    assert PACKAGE.exists(), "run `facet-vlm pipeline compile` and commit pipelines/facet_vlm.yaml"
    assert PACKAGE.read_bytes() == a, "pipelines/facet_vlm.yaml is stale: run `facet-vlm pipeline compile`"


def test_every_parameter_has_a_description_and_presets_are_named(spec):
    from facet_lib.config import PRESETS

    params = spec[0]["root"]["inputDefinitions"]["parameters"]
    assert len(params) >= 20
    missing = [k for k, v in params.items() if not v.get("description", "").strip()]
    assert not missing, f"parameters without a description: {missing}"
    # the common knobs are typed parameters; unset means the preset's value
    kinds = {k: v["parameterType"] for k, v in params.items()}
    assert (
        kinds["epochs"] == "NUMBER_INTEGER" and kinds["lam"] == "NUMBER_DOUBLE" and kinds["n_folds"] == "NUMBER_INTEGER"
    )
    assert kinds["render_size"] == "NUMBER_INTEGER" and kinds["render_mode"] == "STRING" and kinds["preset"] == "STRING"
    assert params["epochs"]["defaultValue"] == -1 and "-1 = the preset" in params["epochs"]["description"]
    for name in PRESETS:
        assert name in params["preset"]["description"], f"preset {name} not listed in the run form"


def test_dag_structure(spec):
    spec, platform = spec
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"fingerprint", "configure", "fetch-weights", "ingest", "render-train-register"}
    # issue 17.2: the steps after configure get the model settings with the tag resolved to its S3 copy
    mc = root["render-train-register"]["inputs"]["parameters"]["model_config"]["taskOutputParameter"]
    assert mc["producerTask"] == "fetch-weights"
    assert root["fetch-weights"]["inputs"]["parameters"]["model_config"]["taskOutputParameter"]["producerTask"] == (
        "configure"
    )
    assert root["ingest"]["inputs"]["parameters"]["data_fingerprint"]["taskOutputParameter"]["producerTask"] == (
        "fingerprint"
    )
    sub = spec["components"]["comp-render-train-register"]["dag"]["tasks"]
    for name in ("merge-views", "extract-features", "evaluate", "register", "condition-3", "condition-4"):
        assert name in sub, name
    loops = {k: v for k, v in sub.items() if k.startswith("for-loop")}
    assert len(loops) == 2
    loop_tasks = {t for v in loops.values() for t in spec["components"][v["componentRef"]["name"]]["dag"]["tasks"]}
    assert {"render", "rank-pool", "train-fold"} <= loop_tasks
    # fan-in: evaluate and merge consume the loops' collected outputs
    ev_in = sub["evaluate"]["inputs"]["artifacts"]["fold_models"]["taskOutputArtifact"]
    assert ev_in["producerTask"].startswith("for-loop")
    merge_in = sub["merge-views"]["inputs"]["artifacts"]
    assert merge_in["scans"]["taskOutputArtifact"]["producerTask"] in loops
    assert merge_in["sequences"]["taskOutputArtifact"]["producerTask"] in loops
    assert sub["register"]["inputs"]["parameters"]["best_fold"]["taskOutputParameter"]["producerTask"] == "evaluate"
    # every task retries transient failures
    assert sub["evaluate"]["retryPolicy"]["maxRetryCount"] == 2
    # the cross-dataset run gets the pipeline's cross_protocol (not cross_step's default)
    cond = next(t for t in sub.values() if t.get("triggerPolicy", {}).get("condition", "").find("cross_data_uri") >= 0)
    cross = spec["components"][cond["componentRef"]["name"]]["dag"]["tasks"]["cross-dataset"]
    assert cross["inputs"]["parameters"]["protocol"] == {"componentInputParameter": "pipelinechannel--cross_protocol"}
    wired = cond["inputs"]["parameters"]["pipelinechannel--cross_protocol"]
    assert wired == {"componentInputParameter": "cross_protocol"}


def test_ablation_branch_draws_fig4_from_the_runs_ablation_table(spec):
    """Issue 19.5: off by default; ablations → fig4 (HTML and Markdown artifacts) inside one condition."""
    spec, platform = spec
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["ablations"]["defaultValue"] is False and params["ablations"]["parameterType"] == "BOOLEAN"
    sub = spec["components"]["comp-render-train-register"]["dag"]["tasks"]
    cond = next(t for t in sub.values() if "ablations" in t.get("triggerPolicy", {}).get("condition", ""))
    assert cond["inputs"]["parameters"]["pipelinechannel--ablations"] == {"componentInputParameter": "ablations"}
    inner = spec["components"][cond["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"ablations", "fig4"}
    src = inner["fig4"]["inputs"]["artifacts"]["ablation_table"]["taskOutputArtifact"]
    assert src == {"producerTask": "ablations", "outputArtifactKey": "ablation_table"}
    outs = spec["components"]["comp-fig4"]["outputDefinitions"]["artifacts"]
    assert outs["report"]["artifactType"]["schemaTitle"] == "system.HTML"
    assert outs["markdown"]["artifactType"]["schemaTitle"] == "system.Markdown"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(k8s["exec-ablations"]["podMetadata"]["annotations"].values()) == {"1"}  # a GPU step
    assert spec["deploymentSpec"]["executors"]["exec-ablations"]["container"]["resources"]["accelerator"]


def test_caching_policy(spec):
    spec, _ = spec
    comps = spec["components"]
    tasks = [t for c in [spec["root"], *comps.values()] if "dag" in c for t in c["dag"]["tasks"].values()]
    cached: dict[str, set] = {}
    for t in tasks:  # component → caching of each of its tasks (proto3 JSON omits false)
        comp = t["componentRef"]["name"].removeprefix("comp-")
        cached.setdefault(comp.rsplit("-", 1)[0] if comp[-1].isdigit() else comp, set()).add(
            t.get("cachingOptions", {}).get("enableCache", False)
        )
    for never in ("fingerprint", "register", "deploy"):
        assert cached[never] == {False}, never
    keyed_steps = ("ingest", "configure", "fetch-weights", "render", "rank-pool", "extract-features", "train-fold")
    for keyed in (*keyed_steps, "evaluate"):
        assert cached[keyed] == {True}, keyed


def test_gpu_resources_images_and_secrets(spec):
    spec, platform = spec
    execs = spec["deploymentSpec"]["executors"]
    train = execs["exec-train-fold"]["container"]
    assert train["resources"]["accelerator"]["resourceCount"] == "1"
    assert "facet-train" in train["image"] and "facet-pipeline" in execs["exec-ingest"]["container"]["image"]
    assert not any("pip install" in " ".join(e["container"].get("command", [])) for e in execs.values())
    for name, e in execs.items():  # every step has a memory limit above its request
        r = e["container"]["resources"]
        assert r["memoryLimit"] >= r["memoryRequest"] > 0, name
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-ingest", "exec-render", "exec-train-fold", "exec-register", "exec-fingerprint"):
        envs = {x["envVar"] for s in k8s[name]["secretAsEnv"] for x in s["keyToEnv"]}
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"} <= envs, name
    assert any(t["key"] == "nvidia.com/gpu" for t in k8s["exec-train-fold"]["tolerations"])
    # GPU steps refuse to fall back to the CPU on a cluster (env from a pod annotation; kfp.local ignores both)
    for name in ("exec-extract-features", "exec-train-fold", "exec-cross-dataset"):
        key = k8s[name]["podMetadata"]["annotations"]
        (field,) = [f for f in k8s[name]["fieldPathAsEnv"] if f["name"] == "FACET_REQUIRE_GPU"]
        assert field["fieldPath"] == "metadata.annotations['facet-vlm/require-gpu']" and set(key.values()) == {"1"}
    assert "env" not in train or not any(e["name"] == "FACET_REQUIRE_GPU" for e in train["env"])
    assert not any("imagePullSecret" in e for e in k8s.values())  # none unless configured


def test_images_and_pull_secret_follow_compile_time_settings(tmp_path):
    docs = list(
        yaml.safe_load_all(
            _compile_in_subprocess(
                tmp_path / "p.yaml",
                FACET_IMAGE_PREFIX="registry.example/team",
                FACET_IMAGE_TAG="9.9.9",
                FACET_IMAGE_PULL_SECRET="regcred",
                FACET_GPU_TYPE="nvidia.com/mig-1g.10gb",
            )
        )
    )
    spec, platform = docs
    execs = spec["deploymentSpec"]["executors"]
    assert execs["exec-ingest"]["container"]["image"] == "registry.example/team/facet-pipeline:9.9.9"
    assert execs["exec-train-fold"]["container"]["image"] == "registry.example/team/facet-train:9.9.9"
    # the serve image reaches the deploy step as a constant fixed at compile time
    cond = next(c for c in spec["components"].values() if "dag" in c and "deploy" in c["dag"]["tasks"])
    image = cond["dag"]["tasks"]["deploy"]["inputs"]["parameters"]["image"]["runtimeValue"]["constant"]
    assert image == "registry.example/team/facet-serve:9.9.9"
    # issue 17.3: the InferenceService gets the pull secret and the GPU type the steps get
    cluster = cond["dag"]["tasks"]["deploy"]["inputs"]["parameters"]["cluster"]["runtimeValue"]["constant"]
    assert cluster["pull_secret"] == "regcred" and cluster["accelerator"] == "nvidia.com/mig-1g.10gb"
    gpu = execs["exec-train-fold"]["container"]["resources"]["accelerator"]
    assert gpu["resourceType"] == cluster["accelerator"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all([s["secretName"] for s in e["imagePullSecret"]] == ["regcred"] for e in k8s.values())
    assert set(k8s) == set(execs)  # on every step


def test_default_tag_is_the_package_version(spec):
    import facet_lib

    execs = spec[0]["deploymentSpec"]["executors"]
    if not os.environ.get("FACET_IMAGE_TAG"):
        assert execs["exec-ingest"]["container"]["image"].endswith(f":{facet_lib.__version__}")
