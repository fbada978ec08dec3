# CPU pipeline steps: ingest, render, rank-pool, merge, evaluate, register, deploy.
# Build from the repository root:
#   docker build -f Dockerfiles/pipeline.Dockerfile -t "$FACET_IMAGE_PREFIX/facet-pipeline:$FACET_IMAGE_TAG" .
FROM python:3.11-slim-bookworm

# Headless OpenGL for the pyrender reference backend (EGL + Mesa llvmpipe).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglib2.0-0 git \
    && rm -rf /var/lib/apt/lists/*
ENV PYOPENGL_PLATFORM=egl PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 NUMBA_CACHE_DIR=/tmp/numba
WORKDIR /opt/facet
COPY pyproject.toml constraints.txt README.md ./
COPY facet_lib ./facet_lib
COPY components ./components
COPY pipelines ./pipelines
RUN pip install --no-cache-dir -c constraints.txt ".[model,render,pipeline,serve]" \
    && useradd --create-home --uid 1000 facet
USER 1000
