"""Compile-time settings of the pipeline: container images, pull secret, GPU type, S3 secret, caching.

One version string: the package version in pyproject.toml (``facet_lib.__version__``, read through
importlib.metadata) is the default image tag here, in ``make images`` and in the manifests' kustomize image.
FACET_IMAGE_PREFIX (default ghcr.io/facet-vlm-ops) and FACET_IMAGE_TAG (default: that version) are read
when the pipeline is compiled; the serve image is passed into the deploy step as a constant, so the
InferenceService the cluster runs uses the same name as the images `make images` builds and pushes.
"""

from __future__ import annotations

import os

from facet_lib import __version__
from facet_lib.config.deploy import DEPLOY

PREFIX = os.environ.get("FACET_IMAGE_PREFIX", "ghcr.io/facet-vlm-ops").rstrip("/")
TAG = os.environ.get("FACET_IMAGE_TAG", __version__)
PIPELINE_IMAGE = f"{PREFIX}/facet-pipeline:{TAG}"  # CPU steps: ingest, render, evaluate, register, deploy
TRAIN_IMAGE = f"{PREFIX}/facet-train:{TAG}"  # CUDA: features, train-fold, cross-dataset
SERVE_IMAGE = f"{PREFIX}/facet-serve:{TAG}"  # KServe predictor (passed to the deploy step at compile time)
IMAGE_PULL_SECRET = os.environ.get("FACET_IMAGE_PULL_SECRET", DEPLOY.pull_secret)  # private registry; "" = none
ACCELERATOR = os.environ.get("FACET_GPU_TYPE", DEPLOY.accelerator)  # GPU resource of the GPU steps and the predictor
GPU_NODE_SELECTOR = os.environ.get("FACET_GPU_NODE_SELECTOR", DEPLOY.gpu_node_selector)  # predictor, raw mode
# what the deploy step's InferenceService gets of the above (facet_lib.config.deploy.DeployConfig fields)
GPU_TAINT = os.environ.get("FACET_GPU_TAINT", DEPLOY.gpu_taint)  # tolerated by the GPU steps and the predictor
DEPLOY_CLUSTER = {
    "accelerator": ACCELERATOR,
    "pull_secret": IMAGE_PULL_SECRET,
    "gpu_node_selector": GPU_NODE_SELECTOR,
    "gpu_taint": GPU_TAINT,
}
S3_SECRET = os.environ.get("FACET_S3_SECRET", "facet-s3")  # Kubernetes secret with the S3 credentials
