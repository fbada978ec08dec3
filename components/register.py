from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.settings import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def register(
    views: Input[Dataset],
    index: Input[Dataset],
    fold_models: Input[list[Model]],
    best_fold: int,
    cv_table: Input[Dataset],
    registry_uri: str,
    model_name: str,
    run_id: str,
    data_fingerprint: str,
    model: Output[Model],
) -> NamedTuple("RegisterOutputs", [("model_uri", str), ("version", str)]):
    """Bundle the best fold and register it in the S3 model registry (version + `production` alias).

    Never cached. The same data (fingerprint), folds, settings and code as a registered version registers
    nothing new and leaves the alias where it is."""
    import hashlib
    import json
    from collections import namedtuple
    from pathlib import Path

    from facet_lib.steps import register_step

    chosen = next(m for m in fold_models if json.loads((Path(m.path) / "fold.json").read_text())["fold"] == best_fold)
    summary = json.loads((Path(cv_table.path) / "summary.json").read_text())
    metrics = {k: summary[k] for k in ("accuracy_mean", "accuracy_std", "macro_f1_mean", "label_free_accuracy_mean")}
    ingest = json.loads((Path(index.path) / "ingest.json").read_text())
    prov = {
        "dataset": ingest["dataset"],
        "protocol": ingest["protocol"],
        "data_uri": ingest["data_uri"],
        "index_sha256": ingest["index_sha256"],
        "data_fingerprint": data_fingerprint,
        "folds_sha256": hashlib.sha256((Path(index.path) / "folds.csv").read_bytes()).hexdigest(),
        "best_fold": best_fold,
        "data_note": "synthetic" if "synthetic" in ingest["data_uri"] else "",
    }
    info = register_step(
        views.path,
        chosen.path,
        registry_uri,
        model_name,
        run_id or "manual",
        {**metrics, "fold": best_fold},
        prov,
        model.path,
    )
    reused = bool(info.get("reused"))
    print(f"{'already registered (same data, settings, code): ' if reused else 'registered '}{info['uri']}")
    model.metadata.update({"registry_uri": info["uri"], "version": info["version"], "digest": info["digest"]})
    model.metadata["reused"] = reused
    out = namedtuple("RegisterOutputs", ["model_uri", "version"])
    return out(info["uri"], info["version"])
