# GPU steps: extract-features, train-fold, cross-dataset.
#   make images            (or: docker build -f Dockerfiles/train.Dockerfile -t facet-train .)
# The torch wheels carry their own CUDA libraries (torch 2.14.1 from PyPI: CUDA 13.0), so the base is plain
# Python 3.11 (constraints.txt's); an nvidia/cuda base would add a second, possibly different, CUDA.
# NVIDIA_REQUIRE_CUDA makes the NVIDIA container runtime refuse a node whose driver cannot run CUDA
# TORCH_CUDA (CUDA 13.0 needs driver >= 580); the build fails if the installed torch is built for another CUDA.
# For other wheels set both, e.g. --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 --build-arg TORCH_CUDA=12.8.
# The lines up to the torch install are the same in the three Dockerfiles, so the images share that layer.
ARG BASE=python:3.11-slim-bookworm
# Requirement lists, so that layers below are rebuilt only when what they install changes: torch's pins
# (torch, torchvision and their dependencies) for the big shared layer, and this image's third-party requirements.
FROM ${BASE} AS pins
COPY constraints.txt pyproject.toml Dockerfiles/deps.py /
RUN python3 /deps.py /pyproject.toml model pipeline > /requirements.txt \
    && grep -iE '^(torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z-]+|filelock|typing.extensions|sympy|mpmath|networkx|jinja2|markupsafe|fsspec|numpy|pillow)==' \
    /constraints.txt > /torch-pins.txt

FROM ${BASE}
ARG TORCH_INDEX=""
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 NUMBA_CACHE_DIR=/tmp/numba MPLCONFIGDIR=/tmp/matplotlib
COPY --from=pins /torch-pins.txt /opt/facet/torch-pins.txt
RUN python3 -c "import sys; v=sys.version_info[:2]; sys.exit(0 if v == (3, 11) else f'BASE has Python {v}, constraints.txt needs 3.11')" \
    && python3 -m venv /opt/venv \
    && pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} -c /opt/facet/torch-pins.txt torch torchvision \
    && python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"

ARG TORCH_CUDA=13.0
RUN python -c "import sys, torch; c = torch.version.cuda; sys.exit(0 if c == sys.argv[1] else f'torch {torch.__version__} is built for CUDA {c}, TORCH_CUDA={sys.argv[1]}: set TORCH_CUDA to match the wheels')" "$TORCH_CUDA"
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility NVIDIA_REQUIRE_CUDA="cuda>=${TORCH_CUDA}"

# Third-party requirements, then the project itself (no dependencies: all are in place).
COPY --from=pins /requirements.txt /opt/facet/requirements.txt
COPY constraints.txt /opt/facet/constraints.txt
RUN pip install -c /opt/facet/constraints.txt -r /opt/facet/requirements.txt
COPY facet_lib /opt/facet/src/facet_lib
COPY components /opt/facet/src/components
COPY pipelines /opt/facet/src/pipelines
COPY pyproject.toml README.md /opt/facet/src/
RUN pip install --no-deps /opt/facet/src && rm -rf /opt/facet/src \
    && useradd --create-home --uid 1000 facet

ARG BASE
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
LABEL facet.base=${BASE} org.opencontainers.image.revision=${GIT_COMMIT} org.opencontainers.image.title=facet-train
USER 1000
WORKDIR /home/facet
