"""The dataset table: one entry per dataset (name → reader, synthetic generator, 3D or 4D, layout).

Adding a dataset means one ``Dataset`` entry here (or ``register_dataset`` from outside), its reader and,
optionally, its generator; the CLI's choices, the pipeline's ingest, ``index_dataset`` and ``generate``
all read this table. Readers and generators are named by ``"module:function"`` so that reading the table
(argument parsing, the pipeline compiler) imports neither pandas nor the mesh stack. Label sets and
file-name codes stay data, in ``configs/labels.yaml``; an entry may carry its own ``labels`` instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from facet_lib.errors import DatasetLayoutError

CROSS_DATASET = "bp4d"  # the cross-dataset target (BU-4DFE → BP4D): its dataset and protocol
CROSS_PROTOCOL = "bp4d-cross"  # its tasks are labels.yaml's cross_dataset_tasks of CROSS_DATASET
MANIFEST = "manifest"  # not a dataset: the reader of a manifest CSV (``data.manifest.index_manifest``)


@dataclass(frozen=True)
class Dataset:
    name: str
    reader: str | Callable  # "module:function" or a function: root -> IndexResult
    four_d: bool  # samples are sequences (rank-pooled per view), not single scans
    layout: str  # what the reader recognises, for error messages
    generator: str | Callable | None = None  # "module:function" or a function: (root, SynthConfig) -> root
    labels: tuple[str, ...] | None = None  # None: the label set of configs/labels.yaml


def _load(ref: str | Callable) -> Callable:
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


_IDX, _GEN = "facet_lib.data.indexers", "facet_lib.data.synthetic"
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "bu3dfe",
            f"{_IDX}:index_bu3dfe",
            False,
            "<root>/<S>/<S>_<EX><II><ET>_F3D.wrl, e.g. F0001/F0001_HA04WH_F3D.wrl",
            f"{_GEN}:generate_bu3dfe",
        ),
        Dataset(
            "bosphorus",
            f"{_IDX}:index_bosphorus",
            False,
            "<root>/<bsNNN>/<bsNNN>_<CAT>_<CODE>_<k>.bnt, e.g. bs001/bs001_E_HAPPY_0.bnt",
            f"{_GEN}:generate_bosphorus",
        ),
        Dataset(
            "bu4dfe",
            f"{_IDX}:index_bu4dfe",
            True,
            "<root>/<S>/<Expression>/<NNN>.wrl, e.g. F001/Happy/000.wrl",
            f"{_GEN}:generate_bu4dfe",
        ),
        Dataset(
            "bp4d",
            f"{_IDX}:index_bp4d",
            True,
            "<root>/<S>/T<k>/<NNNN>.obj, e.g. F001/T1/0000.obj",
            f"{_GEN}:generate_bp4d",
        ),
        Dataset(
            "4dme",
            f"{_IDX}:index_4dme",
            True,
            "<root>/<Subject>/<Sample>/<frame>.obj and <root>/*labels*.csv (Subject, Sample, Emotion)",
            f"{_GEN}:generate_4dme",
        ),
    )
}


def register_dataset(ds: Dataset) -> Dataset:
    """Add (or replace) a table entry at run time: a reader of your own data, without editing this file."""
    if not ds.name or ds.name == MANIFEST:
        raise DatasetLayoutError(f"dataset name {ds.name!r}: reserved or empty")
    DATASETS[ds.name] = ds
    return ds


def names() -> list[str]:
    return list(DATASETS)


def get(name: str) -> Dataset:
    if name not in DATASETS:
        raise DatasetLayoutError(f"unknown dataset '{name}': expected one of {sorted(DATASETS)} or '{MANIFEST}'")
    return DATASETS[name]


def reader(name: str) -> Callable:
    return _load(get(name).reader)


def generator(name: str) -> Callable:
    ds = get(name)
    if ds.generator is None:
        raise DatasetLayoutError(f"dataset '{name}': no synthetic generator in the dataset table")
    return _load(ds.generator)


def cross_label_map() -> dict[str, str]:
    """The default cross-dataset label map: each target label of ``CROSS_PROTOCOL`` to the same source label."""
    from facet_lib.data.labels import cross_dataset_tasks

    return {lab: lab for lab in sorted(cross_dataset_tasks().values())}


def is_4d(name: str) -> bool:
    """Whether ``name``'s samples are sequences; a manifest may hold either (its rows say, via ``frames``)."""
    return name != MANIFEST and get(name).four_d
