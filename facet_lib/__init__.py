"""FACET-VLM Ops library: readers, synthetic data, folds, rendering, model, training, serving.

The library never imports kfp; only ``facet_lib.serving`` imports kserve.
"""

__version__ = "0.1.0"
