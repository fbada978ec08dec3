"""Serving: a KServe predictor over a model bundle (the only package in facet_lib that imports kserve)."""
