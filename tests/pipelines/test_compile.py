"""The compiled pipeline: every step present, fan-out/fan-in wiring, GPU and secrets, and the committed
YAML is the one the code compiles to."""

import sys
from pathlib import Path

import yaml

from pipelines.cli import PACKAGE, compile_pipeline

sys.path.insert(0, str(Path(__file__).parent))


def _spec(tmp_path):
    docs = list(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def test_committed_yaml_is_current(tmp_path):
    # compared as YAML documents: the compiler's header comment lists dict defaults in no fixed order
    fresh = list(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    assert PACKAGE.exists(), "run `facet-vlm pipeline compile` and commit pipelines/facet_vlm.yaml"
    committed = list(yaml.safe_load_all(PACKAGE.read_text()))
    assert committed == fresh, "pipelines/facet_vlm.yaml is stale: run `facet-vlm pipeline compile`"


def test_dag_structure(tmp_path):
    spec, platform = _spec(tmp_path)
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"ingest", "render-train-register"}
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


def test_gpu_images_and_secrets(tmp_path):
    spec, platform = _spec(tmp_path)
    execs = spec["deploymentSpec"]["executors"]
    train = execs["exec-train-fold"]["container"]
    assert train["resources"]["accelerator"]["resourceCount"] == "1"
    assert "facet-train" in train["image"] and "facet-pipeline" in execs["exec-ingest"]["container"]["image"]
    assert not any("pip install" in " ".join(e["container"].get("command", [])) for e in execs.values())
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-ingest", "exec-render", "exec-train-fold", "exec-register"):
        envs = {x["envVar"] for s in k8s[name]["secretAsEnv"] for x in s["keyToEnv"]}
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"} <= envs, name
    assert any(t["key"] == "nvidia.com/gpu" for t in k8s["exec-train-fold"]["tolerations"])
