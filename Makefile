# The two set-up commands live here: `make demo` (main job) and `make test` (tests).
# Both create/refresh .venv and system libraries first (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup demo test test-slow bench lint compile clean

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
