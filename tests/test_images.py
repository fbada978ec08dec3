"""The three container images, built and proven from inside (slow; skipped unless `docker info` answers).

`make images-check` builds the images (`make images`, IMAGE_BUILD_ARGS passed through) and runs this file;
`make pipeline-docker` runs only the kfp.local DockerRunner pipeline on images already built. FACET_IMAGES_BUILD=0
skips the build; DOCKER names the docker CLI (default: `docker` on PATH).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DOCKER = os.environ.get("DOCKER") or shutil.which("docker") or "docker"
MODEL = "facet-vlm"


def docker(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise AssertionError(
            f"docker {shlex.join(args[:6])} ... exit {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        )
    return r


@pytest.fixture(scope="module")
def engine() -> None:
    try:
        r = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"`{DOCKER} info` did not answer ({e}): no Docker engine here")
    if r.returncode:
        pytest.skip(f"`{DOCKER} info` did not answer: {(r.stderr.strip().splitlines() or ['?'])[-1]}")


@pytest.fixture(scope="module")
def images(engine) -> dict[str, str]:
    """The images the compiled pipeline names (components/settings.py), built by `make images` unless told not to."""
    from components import settings

    names = {"pipeline": settings.PIPELINE_IMAGE, "train": settings.TRAIN_IMAGE, "serve": settings.SERVE_IMAGE}
    if os.environ.get("FACET_IMAGES_BUILD", "1") != "0":
        args = os.environ.get("IMAGE_BUILD_ARGS", "--network=host")
        cmd = ["make", "images", f"DOCKER={DOCKER}", f"IMAGE_BUILD_ARGS={args}"]
        cmd += [f"FACET_IMAGE_PREFIX={settings.PREFIX}", f"FACET_IMAGE_TAG={settings.TAG}"]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, timeout=3 * 3600)
        print(f"\nmake images: {time.perf_counter() - t0:.0f} s")
    return names


def _need(images: dict[str, str], *kinds: str) -> None:
    for kind in kinds:
        if docker("image", "inspect", images[kind], check=False).returncode:
            pytest.fail(f"image {images[kind]} ({kind}) is missing: build it with `make images`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_users_sizes_and_labels(images):
    _need(images, *images)
    print()
    for name in images.values():
        info = json.loads(docker("image", "inspect", name).stdout)[0]
        cfg = info["Config"]
        assert cfg["User"] == "1000", f"{name}: USER {cfg['User']!r}, expected the non-root uid 1000"
        uid = docker("run", "--rm", "--entrypoint", "id", name, "-u").stdout.strip()
        assert uid == "1000", f"{name} runs as uid {uid}"
        env = dict(e.split("=", 1) for e in cfg["Env"])
        assert env.get("GIT_COMMIT") and cfg["Labels"]["org.opencontainers.image.revision"] == env["GIT_COMMIT"]
        assert cfg["Labels"].get("facet.base"), f"{name}: no facet.base label (the push guard reads it)"
        print(f"  {name:55s} {info['Size'] / 1e9:5.2f} GB  user {uid}  commit {env['GIT_COMMIT'][:12]}")


def test_train_image_cuda_matches_torch_and_gpu_request_fails_fast(images):
    _need(images, "train")
    name = images["train"]
    env = dict(e.split("=", 1) for e in json.loads(docker("image", "inspect", name).stdout)[0]["Config"]["Env"])
    cuda = docker("run", "--rm", name, "python", "-c", "import torch; print(torch.version.cuda)").stdout.strip()
    assert env["NVIDIA_REQUIRE_CUDA"] == f"cuda>={cuda}", (env["NVIDIA_REQUIRE_CUDA"], cuda)
    code = "from facet_lib.device import resolve_device; resolve_device('auto', what='train.device')"
    r = docker("run", "--rm", "-e", "FACET_REQUIRE_GPU=1", name, "python", "-c", code, check=False)
    assert r.returncode != 0 and "CUDA is not available" in r.stderr and f"CUDA {cuda}" in r.stderr, r.stderr[-800:]
    assert "no driver" in r.stderr or "driver " in r.stderr


@pytest.fixture
def tiny_bundle(tmp_path) -> Path:
    import torch

    from facet_lib.bundle import save_bundle
    from facet_lib.config import ModelConfig, RenderConfig
    from facet_lib.data.labels import prompts_for
    from facet_lib.models.model import FacetVLM

    labels = ["anger", "disgust", "fear", "happy", "sad", "surprise"]
    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    d = tmp_path / "bundle"
    text_bank = m.build_text_bank(labels, prompts_for(labels, mode=m.cfg.prompts))
    save_bundle(d, m, text_bank, RenderConfig(size=64, frames=4).to_dict())
    return d


def _wait_ready(url: str, cid: str, timeout: float = 180) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if httpx.get(f"{url}/v2/models/{MODEL}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if docker("inspect", "-f", "{{.State.Running}}", cid, check=False).stdout.strip() != "true":
            raise AssertionError("serve container exited:\n" + docker("logs", cid, check=False).stderr[-3000:])
        time.sleep(0.2)
    raise AssertionError(f"not ready after {timeout} s:\n" + docker("logs", cid, check=False).stderr[-3000:])


def test_serve_image_read_only_loopback_v1_v2_scan_and_errors(images, tiny_bundle, synth_root):
    import tritonclient.http as triton

    _need(images, "serve")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    cid = docker(
        "run", "-d", "--read-only", "--tmpfs", "/tmp", "-e", "HOME=/tmp", "--network", "host",
        "-v", f"{tiny_bundle}:/mnt/models:ro", images["serve"],
        "--model", "/mnt/models", "--host", "127.0.0.1", "--http_port", str(port), "--device", "cpu",
    ).stdout.strip()  # fmt: skip
    try:
        _wait_ready(url, cid)
        ready_s = time.perf_counter() - t0  # from `docker run` to the model answering ready
        scan = next((synth_root / "bu3dfe").rglob("*_F3D.wrl"))
        body = {"instances": [{"scan": base64.b64encode(scan.read_bytes()).decode(), "format": "wrl"}]}
        t1 = time.perf_counter()
        r = httpx.post(f"{url}/v1/models/{MODEL}:predict", json=body, timeout=120)
        first_scan_s = time.perf_counter() - t1
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1, r.text[:300]
        t1 = time.perf_counter()
        assert httpx.post(f"{url}/v1/models/{MODEL}:predict", json=body, timeout=120).status_code == 200
        second_scan_s = time.perf_counter() - t1
        print(
            f"\nserve container: start→ready {ready_s:.1f} s; first .wrl request after ready"
            f" {first_scan_s * 1e3:.0f} ms, second {second_scan_s * 1e3:.0f} ms"
        )
        assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        meta = httpx.get(f"{url}/v2/models/{MODEL}").json()
        assert meta["inputs"][0]["shape"] == [-1, 3, 64, 64, 3]
        views = np.random.default_rng(0).integers(0, 255, (2, 3, 64, 64, 3), dtype=np.uint8)
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        assert client.is_server_live() and client.is_model_ready(MODEL)
        assert client.get_model_metadata(MODEL)["name"] == MODEL
        inp = triton.InferInput("views", list(views.shape), "UINT8")
        inp.set_data_from_numpy(views, binary_data=False)
        res = client.infer(MODEL, [inp])
        assert res.as_numpy("probabilities").shape == (2, 6)
        r = httpx.post(
            f"{url}/v1/models/{MODEL}:predict", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and "error" in r.json(), r.text[:300]
        assert httpx.get(f"{url}/v2/models/{MODEL}/ready").status_code == 200  # still serving after a bad request
        # bound to loopback: no answer on the host's other addresses (host networking)
        addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None) if a[0] == socket.AF_INET}
        for addr in addrs - {"127.0.0.1"}:
            with socket.socket() as s:
                s.settimeout(1)
                assert s.connect_ex((addr, port)) != 0, f"serve container answers on {addr}"
        assert docker("exec", cid, "id", "-u").stdout.strip() == "1000"
        r = docker("exec", cid, "sh", "-c", "touch /opt/venv/x", check=False)
        assert r.returncode != 0 and "Read-only" in r.stderr
    finally:
        logs = docker("logs", cid, check=False)
        docker("rm", "-f", cid, check=False)
    assert "Traceback" not in logs.stderr, logs.stderr[-3000:]


def _run_step(image: str, work: Path, env: dict, *args: str) -> float:
    t0 = time.perf_counter()
    mounts = ["-v", f"{work}:{work}", "-v", f"{ROOT / 'tests' / 'image_steps.py'}:/checks/image_steps.py:ro"]
    envs = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
    docker(
        "run", "--rm", "--network", "host", *mounts, *envs, image, "python", "/checks/image_steps.py", *args, str(work)
    )
    return time.perf_counter() - t0


def test_pipeline_and_train_images_run_the_components(images, s3, synth_root, tmp_path):
    from facet_lib import storage

    _need(images, "pipeline", "train")
    storage.upload_dir(synth_root / "bu3dfe", "s3://facet-images/bu3dfe")
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)  # the images run as uid 1000
    t_pipe = _run_step(images["pipeline"], work, s3, "pipeline", str(work), "s3://facet-images/bu3dfe")
    state = json.loads((work / "state.json").read_text())
    assert state["pipeline"]["samples"] == 48 and state["pipeline"]["views_samples"] == 48
    assert state["pipeline"]["views_failures"] == 0 and len(state["pipeline"]["fingerprint"]) == 64
    assert state["pipeline"]["pyrender"]["lit"] == 1
    t_train = _run_step(images["train"], work, s3, "train", str(work))
    state = json.loads((work / "state.json").read_text())
    assert "fold0_accuracy" in state["train"]["fold0_metrics"]
    t_eval = _run_step(images["pipeline"], work, s3, "evaluate", str(work))
    state = json.loads((work / "state.json").read_text())
    assert 0 <= state["evaluate"]["accuracy"] <= 1 and state["evaluate"]["report_bytes"] > 0
    assert set(state["uid"].values()) == {1000}
    print(
        f"\ncomponents in images: pipeline steps {t_pipe:.0f} s, train steps {t_train:.0f} s, evaluate {t_eval:.0f} s"
    )


def test_pipeline_docker_runner_each_task_in_its_image(images, s3, tmp_path):
    """The same pipeline definition under kfp.local's DockerRunner (each task in its image) and, as the baseline
    on the same inputs, the SubprocessRunner."""
    from kfp import local

    from facet_lib import registry, storage
    from facet_lib.data.synthetic import SynthConfig, generate
    from pipelines.local_run import run_local

    _need(images, "pipeline", "train")
    data = generate("bu3dfe", tmp_path / "data", SynthConfig(subjects=4, step=3.0, seed=1, workers=1))
    storage.upload_dir(data, "s3://facet-docker/bu3dfe")
    args = dict(
        data_uri="s3://facet-docker/bu3dfe",
        dataset="bu3dfe",
        protocol="bu3dfe-I",
        n_folds=2,
        shard_size=16,
        preset="tiny-cpu",
        epochs=1,
        render_size=64,
        model_overrides={"unfreeze_top": 1},
        train_overrides={"freeze_epochs": 1, "device": "cpu"},
    )
    reg_docker = "s3://facet-docker-models/registry"
    root = tmp_path / "docker-root"
    root.mkdir()
    root.chmod(0o777)  # tasks run as the images' uid 1000 and write their outputs here
    # S3 on loopback: host networking, credentials as env (kfp merges them with each task's own env)
    runner = local.DockerRunner(network_mode="host", environment=dict(s3))
    log_file = tmp_path / "docker.log"
    try:
        res = run_local(root, log_file=log_file, runner=runner, registry_uri=reg_docker, model_name="d", **args)
    except RuntimeError as e:
        raise AssertionError(f"{e}\n--- kfp.local log (tail) ---\n{log_file.read_text()[-4000:]}") from e
    status = {t["task"]: t["status"] for t in res["tasks"]}
    assert status and set(status.values()) == {"SUCCESS"}, status
    assert registry.versions(reg_docker, "d") == ["v0001"]
    log = log_file.read_text()
    for image in (images["pipeline"], images["train"]):
        assert f"Found image {image!r}" in log  # the task ran in its image (kfp pulls when it is absent)
    assert "facet: train.device: cpu (requested" in log  # the GPU tasks log the device they resolved
    reg_sub = "s3://facet-docker-models/registry-sub"
    base = run_local(tmp_path / "sub-root", log_file=tmp_path / "sub.log", registry_uri=reg_sub, model_name="s", **args)
    assert registry.versions(reg_sub, "s") == ["v0001"]
    print(
        f"\npipeline wall time on the same tiny inputs: DockerRunner {res['seconds']:.0f} s,"
        f" SubprocessRunner {base['seconds']:.0f} s ({len(status)} tasks)",
        file=sys.stderr,
    )


def test_pipeline_image_fetches_a_tag_once_and_the_train_image_loads_the_copy(images, s3, tmp_path):
    """Issue 17.2 inside the images: fetch-weights' library call in the pipeline image downloads ViT-B-16/openai
    (real shapes, random stand-in weights) through huggingface_hub from a stand-in hub (HF_ENDPOINT), stores it
    in S3 once; a second run downloads nothing; the train image loads exactly those tensors from S3."""
    from facet_lib.files import sha256_file
    from facet_lib.weights import content_uri
    from tests.hf_standin import OPENAI_FILE, OPENAI_REPO, StandInHub, vit_b16_openai

    _need(images, "pipeline", "train")
    for kind in ("pipeline", "train", "serve"):
        env = json.loads(docker("image", "inspect", images[kind]).stdout)[0]["Config"]["Env"]
        assert not any(e.startswith("HF_HUB_OFFLINE=") for e in env), (kind, env)
    weights = vit_b16_openai(tmp_path / OPENAI_FILE)
    digest, store = sha256_file(weights), "s3://facet-images-weights/weights"
    code = (
        "import sys; from facet_lib.weights import weights_step; "
        "m = {'clip_model': 'ViT-B-16', 'pretrained': 'openai', 'unfreeze_top': 1}; "
        "out = weights_step(m, sys.argv[1]); "
        "print('RESULT', out['model_config']['checkpoint'], out['weights']['fetched'])"
    )
    with StandInHub({OPENAI_REPO: {OPENAI_FILE: weights}}) as hub:
        envs = [x for k, v in {**s3, "HF_ENDPOINT": hub.url}.items() for x in ("-e", f"{k}={v}")]
        runs = []
        for _ in range(2):
            t0 = time.perf_counter()
            r = docker("run", "--rm", "--network", "host", *envs, images["pipeline"], "python", "-c", code, store)
            runs.append((time.perf_counter() - t0, r.stdout.split("RESULT", 1)[1].split()))
        downloads = hub.downloads()
    copy = content_uri(store, digest, OPENAI_FILE)
    assert runs[0][1] == [copy, "True"] and runs[1][1] == [copy, "False"], runs
    assert downloads == [f"/{OPENAI_REPO}/resolve/main/{OPENAI_FILE}"]
    check = (
        "import hashlib, sys; from facet_lib import storage; from facet_lib.models.backbone import create_clip; "
        "clip, w = create_clip('ViT-B-16', checkpoint=sys.argv[1], cache_dir='/tmp/w', fetch=storage.local_path); "
        "print('RESULT', w, hashlib.sha256(clip.visual.proj.detach().half().numpy().tobytes()).hexdigest())"
    )
    envs = [x for k, v in s3.items() for x in ("-e", f"{k}={v}")]
    r = docker("run", "--rm", "--network", "host", *envs, images["train"], "python", "-c", check, copy)
    from safetensors.torch import load_file

    want = hashlib.sha256(load_file(str(weights))["visual.proj"].numpy().tobytes()).hexdigest()
    assert r.stdout.split("RESULT", 1)[1].split() == ["checkpoint", copy, want]
    print(f"\nfetch-weights in the pipeline image: first run {runs[0][0]:.0f} s (download), second {runs[1][0]:.0f} s")
