"""Fast checks of the image definitions (no Docker engine): the shared torch layer, the build context,
the requirement lists, the apt list shared with bootstrap, the CUDA the train image declares."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = {n: (ROOT / "Dockerfiles" / f"{n}.Dockerfile").read_text() for n in ("pipeline", "train", "serve")}
sys.path.insert(0, str(ROOT / "Dockerfiles"))
from deps import requirements  # noqa: E402


def _torch_prefix(text: str) -> str:
    main = text[text.index("\nFROM ${BASE}\n") :]
    return main[: main.index('torch.version.cuda)"\n')]


def test_torch_layer_is_the_same_in_the_three_images():
    prefixes = {n: _torch_prefix(t) for n, t in DOCKERFILES.items()}
    assert len(set(prefixes.values())) == 1, "the lines up to the torch install differ: the layer is not shared"
    grep = {re.search(r"grep -iE '([^']+)'", t).group(1) for t in DOCKERFILES.values()}
    assert len(grep) == 1  # same torch pins → same COPY checksum


def test_torch_pins_select_torch_and_its_dependencies():
    pattern = re.search(r"grep -iE '([^']+)'", DOCKERFILES["serve"]).group(1)
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    picked = {line.split("==")[0].lower() for line in lines if re.match(pattern, line, re.I)}
    assert {"torch", "torchvision", "numpy", "pillow", "sympy", "filelock"} <= picked
    assert not picked & {"kserve", "kfp", "pandas", "boto3"}


def test_build_context_admits_what_the_dockerfiles_copy_and_nothing_big():
    lines = [x.strip() for x in (ROOT / ".dockerignore").read_text().splitlines() if x.strip() and x[0] != "#"]
    assert lines[0] == "*", ".dockerignore should start by excluding everything"
    allowed = {x[1:] for x in lines if x.startswith("!")}
    for name, text in DOCKERFILES.items():
        for m in re.finditer(r"^COPY (?!--from)(.+)$", text, re.M):
            for src in m.group(1).split()[:-1]:
                assert src in allowed or src.split("/")[0] in allowed, f"{name}.Dockerfile copies {src}: not in context"
    assert not allowed & {".venv", ".git", "runs", "tests"}


def test_requirements_expand_extras_and_refuse_unknown_ones():
    pyproject = str(ROOT / "pyproject.toml")
    serve = requirements(pyproject, ["model", "serve"])
    assert any(r.startswith("kserve") for r in serve) and not any(r.startswith("kfp") for r in serve)
    every = requirements(pyproject, ["all"])  # self-reference facet-vlm-ops[...] expanded
    assert {"pyrender", "kfp", "kserve", "torch"} <= {re.split(r"[<>=\[ ]", r)[0] for r in every}
    with pytest.raises(SystemExit, match="no optional-dependencies extra 'gpu'"):
        requirements(pyproject, ["gpu"])


def test_bootstrap_and_pipeline_image_install_the_same_system_libraries():
    boot = re.search(r'APT_PKGS="([^"]+)"', (ROOT / "scripts" / "bootstrap.sh").read_text()).group(1).split()
    image = re.search(r"--no-install-recommends ([^\\\n]+)", DOCKERFILES["pipeline"]).group(1).split()
    assert sorted(boot) == sorted(image) and "libxrender1" in boot  # pyrender imports pyglet → libXrender


def test_train_image_declares_the_cuda_of_the_pinned_torch():
    torch = pytest.importorskip("torch")  # the same torch==… pin as the images
    default = re.search(r"^ARG TORCH_CUDA=(\S+)$", DOCKERFILES["train"], re.M).group(1)
    assert torch.version.cuda is None or default == torch.version.cuda
    assert 'NVIDIA_REQUIRE_CUDA="cuda>=${TORCH_CUDA}"' in DOCKERFILES["train"]


def test_images_pass_git_commit_and_run_non_root():
    for name, text in DOCKERFILES.items():
        assert "ARG GIT_COMMIT" in text and "ENV GIT_COMMIT=${GIT_COMMIT}" in text, name
        assert re.search(r"^USER 1000$", text, re.M), name
        assert "python3 -m venv /opt/venv" in text, name


def test_make_passes_build_args_and_commit():
    out = subprocess.run(
        ["make", "-n", "images", "IMAGES=serve", "IMAGE_BUILD_ARGS=--build-arg TORCH_INDEX=https://x/cpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "build --build-arg TORCH_INDEX=https://x/cpu --build-arg GIT_COMMIT=" in out
    assert "-f Dockerfiles/$i.Dockerfile" in out


def test_no_image_bakes_hub_offline():
    """Issue 17.2: a pretrained tag must be fetchable inside the images (HF_HUB_OFFLINE only in tests/CI)."""
    for name, text in DOCKERFILES.items():
        assert "HF_HUB_OFFLINE" not in text and "TRANSFORMERS_OFFLINE" not in text, name
