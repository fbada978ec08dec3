# The two set-up commands live here: `make demo` (main job) and `make test` (tests).
# Both create/refresh .venv and system libraries first (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup demo test test-slow bench lint clean images push

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(PY) -m facet_lib.cli demo --out runs/demo

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check facet_lib components pipelines tests benchmarks

clean:
	rm -rf runs .pytest_cache

# Container images: the names components/settings.py compiles into the pipeline.
FACET_IMAGE_PREFIX ?= ghcr.io/facet-vlm-ops
FACET_IMAGE_TAG ?= 0.1.0
images:
	for i in pipeline train serve; do docker build -f Dockerfiles/$$i.Dockerfile -t $(FACET_IMAGE_PREFIX)/facet-$$i:$(FACET_IMAGE_TAG) . || exit 1; done

push:
	for i in pipeline train serve; do docker push $(FACET_IMAGE_PREFIX)/facet-$$i:$(FACET_IMAGE_TAG) || exit 1; done
