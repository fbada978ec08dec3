"""FACET-VLM Ops library: readers, synthetic data, folds, rendering, model, training, serving.

The library never imports kfp; only ``facet_lib.serving`` imports kserve.
"""

from importlib import metadata as _metadata

try:  # one version string: pyproject.toml's, as installed (images and manifests use the same)
    __version__ = _metadata.version("facet-vlm-ops")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
