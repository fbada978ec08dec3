# CPU pipeline steps: fingerprint, configure, ingest, render, rank-pool, merge, evaluate, register, deploy.
#   make images            (or: docker build -f Dockerfiles/pipeline.Dockerfile -t facet-pipeline .)
# BASE / TORCH_INDEX: as in serve.Dockerfile (a CPU index makes this a CPU-only image).
# The lines up to the torch install are the same in the three Dockerfiles, so the images share that layer.
ARG BASE=python:3.11-slim-bookworm
# Requirement lists, so that layers below are rebuilt only when what they install changes: torch's pins
# (torch, torchvision and their dependencies) for the big shared layer, and this image's third-party requirements.
FROM ${BASE} AS pins
COPY constraints.txt pyproject.toml Dockerfiles/deps.py /
RUN python3 /deps.py /pyproject.toml model render pipeline serve > /requirements.txt \
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

# Headless OpenGL for the pyrender reference backend (EGL + Mesa llvmpipe); pyglet needs libXrender.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglib2.0-0 libxrender1 \
    && rm -rf /var/lib/apt/lists/*
ENV PYOPENGL_PLATFORM=egl

# Third-party requirements, then the project itself (no dependencies: all are in place).
COPY --from=pins /requirements.txt /opt/facet/requirements.txt
COPY constraints.txt /opt/facet/constraints.txt
RUN pip install -c /opt/facet/constraints.txt -r /opt/facet/requirements.txt
COPY facet_lib /opt/facet/src/facet_lib
COPY components /opt/facet/src/components
COPY pipelines /opt/facet/src/pipelines
COPY pyproject.toml README.md /opt/facet/src/
RUN pip install --no-deps /opt/facet/src && rm -rf /opt/facet/src \
    && python -c "import pyrender, facet_lib.render, components, pipelines" \
    && useradd --create-home --uid 1000 facet

ARG BASE
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
LABEL facet.base=${BASE} org.opencontainers.image.revision=${GIT_COMMIT} org.opencontainers.image.title=facet-pipeline
USER 1000
WORKDIR /home/facet
