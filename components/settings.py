"""The one setting for container images, shared by components, manifests and Dockerfiles' build commands.

FACET_IMAGE_PREFIX (default ghcr.io/facet-vlm-ops) and FACET_IMAGE_TAG (default: the package version)
are read when the pipeline is compiled; `make images` builds and pushes the same names.
"""

from __future__ import annotations

import os

from facet_lib import __version__

PREFIX = os.environ.get("FACET_IMAGE_PREFIX", "ghcr.io/facet-vlm-ops").rstrip("/")
TAG = os.environ.get("FACET_IMAGE_TAG", __version__)
PIPELINE_IMAGE = f"{PREFIX}/facet-pipeline:{TAG}"  # CPU steps: ingest, render, evaluate, register, deploy
TRAIN_IMAGE = f"{PREFIX}/facet-train:{TAG}"  # CUDA: features, train-fold, cross-dataset
SERVE_IMAGE = f"{PREFIX}/facet-serve:{TAG}"  # KServe predictor
ACCELERATOR = os.environ.get("FACET_GPU_TYPE", "nvidia.com/gpu")  # accelerator resource/type for GPU steps
S3_SECRET = os.environ.get("FACET_S3_SECRET", "facet-s3")  # Kubernetes secret with the S3 credentials
