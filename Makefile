# The two set-up commands live here: `make demo` (main job) and `make test` (tests).
# Both create/refresh .venv and system libraries first (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup demo test test-slow bench lint clean images images-check pipeline-docker push ui-check

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(PY) -m pipelines.entry demo --out runs/demo

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

# The page for people (/ui/) in headless Chromium: bootstrap --browser installs chromium, chromium-driver and
# selenium; the test starts a server on a tiny random bundle and writes screenshots under runs/ui/.
ui-check: setup
	@bash scripts/bootstrap.sh --browser
	$(PY) -m pytest -q -m slow tests/serving/test_ui_browser.py

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check facet_lib components pipelines tests benchmarks

clean:
	rm -rf runs .pytest_cache

# Container images: the names components/settings.py compiles into the pipeline (Dockerfiles/, README "Container images").
# IMAGE_BUILD_ARGS passes flags to every `docker build`, e.g.
#   make images IMAGE_BUILD_ARGS="--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu --network=host"
DOCKER ?= docker
FACET_IMAGE_PREFIX ?= ghcr.io/facet-vlm-ops
FACET_IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGES ?= pipeline train serve
IMAGE_BUILD_ARGS ?=
GIT_COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git status --porcelain 2>/dev/null | grep -q . && echo -dirty)
export FACET_IMAGE_PREFIX FACET_IMAGE_TAG

images:
	@for i in $(IMAGES); do \
	  echo "== build facet-$$i"; start=$$(date +%s); \
	  $(DOCKER) build $(IMAGE_BUILD_ARGS) --build-arg GIT_COMMIT=$(GIT_COMMIT) \
	    -f Dockerfiles/$$i.Dockerfile -t $(FACET_IMAGE_PREFIX)/facet-$$i:$(FACET_IMAGE_TAG) . || exit 1; \
	  echo "== facet-$$i built in $$(( $$(date +%s) - start )) s"; \
	done
	@$(DOCKER) images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^$(FACET_IMAGE_PREFIX)/facet-' || true

# Build the three images, then prove each from inside: serve (read-only, loopback, V1/V2/scan/4xx), pipeline steps
# against SeaweedFS, train steps (CPU), non-root users, sizes. Needs a Docker engine (`docker info`).
images-check:
	DOCKER='$(DOCKER)' IMAGE_BUILD_ARGS='$(IMAGE_BUILD_ARGS)' FACET_IMAGES_BUILD=1 $(PY) -m pytest -q -m slow -s tests/test_images.py

# The whole pipeline with kfp.local's DockerRunner: every task in its own image (built by `make images`).
pipeline-docker:
	DOCKER='$(DOCKER)' FACET_IMAGES_BUILD=0 $(PY) -m pytest -q -m slow -s tests/test_images.py -k docker_runner

# Refuses images whose base was never pulled from a registry (the offline stand-in base is for checks only).
push:
	@for i in $(IMAGES); do \
	  base=$$($(DOCKER) image inspect -f '{{index .Config.Labels "facet.base"}}' $(FACET_IMAGE_PREFIX)/facet-$$i:$(FACET_IMAGE_TAG)); \
	  [ -n "$$($(DOCKER) image inspect -f '{{join .RepoDigests " "}}' $$base 2>/dev/null)" ] \
	    || { echo "push: base $$base was not pulled from a registry (offline stand-in?): not pushing" >&2; exit 1; }; \
	done
	for i in $(IMAGES); do $(DOCKER) push $(FACET_IMAGE_PREFIX)/facet-$$i:$(FACET_IMAGE_TAG) || exit 1; done
