"""Kubeflow Pipelines v2 components: thin typed adapters, each calling one ``facet_lib.steps`` function."""
