from typing import NamedTuple

from kfp import dsl

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def fingerprint(data_uri: str) -> NamedTuple("FingerprintOutputs", [("fingerprint", str), ("files", int)]):
    """Content fingerprint of the data (object listing with sizes and ETags, or a local folder's paths,
    sizes and mtimes). Never cached: it keys the cached ingest, so unchanged data reuses every cached
    step and changed data retrains."""
    from collections import namedtuple

    from facet_lib.steps import fingerprint_step

    info = fingerprint_step(data_uri)
    print(f"data {data_uri}: {info['files']} files, {info['bytes']} bytes, fingerprint {info['fingerprint']}")
    return namedtuple("FingerprintOutputs", ["fingerprint", "files"])(info["fingerprint"], info["files"])
