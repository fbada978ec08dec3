# GPU steps: extract-features, train-fold, cross-dataset (CUDA runtime; torch 2.14.1 brings its CUDA libraries).
#   docker build -f Dockerfiles/train.Dockerfile -t "$FACET_IMAGE_PREFIX/facet-train:$FACET_IMAGE_TAG" .
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip libegl1 libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 NUMBA_CACHE_DIR=/tmp/numba
RUN python3 -m venv /opt/venv
WORKDIR /opt/facet
COPY pyproject.toml constraints.txt README.md ./
COPY facet_lib ./facet_lib
COPY components ./components
COPY pipelines ./pipelines
RUN pip install --no-cache-dir -c constraints.txt ".[model,pipeline]" \
    && useradd --create-home --uid 1001 facet
USER 1001
