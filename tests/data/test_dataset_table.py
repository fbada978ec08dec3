"""The dataset table (``facet_lib.data.datasets``) is the one list of datasets: a toy dataset registered
through it alone is indexed, offered by the CLI and ingested; every other list agrees with it."""

from __future__ import annotations

import inspect

import pytest

from facet_lib.data import datasets
from facet_lib.data.collect import Collector, dataset_root
from facet_lib.errors import DatasetLayoutError


def _index_toy(root):
    """Toy layout: <root>/<subject>/<label>.ply, one scan per file."""
    c = Collector("toy", dataset_root(root))
    for f in sorted(c.root.rglob("*.ply")):
        if f.stem not in ("happy", "sad"):
            c.quarantine(f, "name is not <label>.ply")
            continue
        c.add(f"{f.parent.name}_{f.stem}", f.parent.name, f.stem, f)
    return c.result()


@pytest.fixture
def toy(tmp_path):
    import trimesh

    for s in ("S1", "S2"):
        for lab in ("happy", "sad", "bogus"):
            (tmp_path / "toy" / s).mkdir(parents=True, exist_ok=True)
            trimesh.creation.icosphere(subdivisions=1).export(tmp_path / "toy" / s / f"{lab}.ply")
    spec = datasets.register_dataset(
        datasets.Dataset("toy", _index_toy, False, "<root>/<S>/<label>.ply", labels=("happy", "sad"))
    )
    yield spec, tmp_path / "toy"
    datasets.DATASETS.pop("toy")


def test_a_toy_dataset_through_the_table_alone(toy, tmp_path):
    from facet_lib.cli import build_parser, main
    from facet_lib.data.indexers import index_dataset
    from facet_lib.data.labels import dataset_labels
    from facet_lib.steps import ingest_step

    _, root = toy
    res = index_dataset("toy", root)
    assert sorted(res.index["label"]) == ["happy", "happy", "sad", "sad"]
    assert len(res.quarantine) == 2 and "bogus" in res.quarantine.iloc[0]["path"]
    assert dataset_labels("toy") == ["happy", "sad"]
    assert not datasets.is_4d("toy")
    args = build_parser().parse_args(["index", "--dataset", "toy", "--root", str(root), "--out", "x.csv"])
    assert args.dataset == "toy"
    assert main(["index", "--dataset", "toy", "--root", str(root), "--out", str(tmp_path / "i.csv")]) == 0
    info = ingest_step(str(root), "toy", "toy", 2, 0, tmp_path / "ingest")
    assert info["samples"] == 4 and info["labels"] == ["happy", "sad"] and info["is_4d"] is False
    with pytest.raises(DatasetLayoutError, match="toy.*no synthetic generator"):
        datasets.generator("toy")


def test_unknown_and_reserved_names_are_refused():
    with pytest.raises(DatasetLayoutError, match="unknown dataset 'nope'.*bu3dfe"):
        datasets.get("nope")
    with pytest.raises(DatasetLayoutError, match="reserved"):
        datasets.register_dataset(datasets.Dataset(datasets.MANIFEST, _index_toy, False, ""))


def test_every_list_of_datasets_agrees_with_the_table():
    import argparse

    from facet_lib.cli import build_parser
    from facet_lib.data.labels import load_label_config
    from pipelines.facet_vlm import facet_vlm_pipeline

    names = datasets.names()
    assert set(names) <= set(load_label_config()["datasets"])  # label sets and codes for every entry
    for ds in datasets.DATASETS.values():  # every reader and generator resolves
        assert callable(datasets.reader(ds.name)) and callable(datasets.generator(ds.name))
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    choices = {
        cmd: next(a.choices for a in sub.choices[cmd]._actions if a.dest == "dataset") for cmd in ("generate", "index")
    }
    assert list(choices["generate"]) == names
    assert list(choices["index"]) == [*names, datasets.MANIFEST]
    doc = inspect.getdoc(facet_vlm_pipeline.pipeline_func)  # the KFP UI form's help text
    line = next(x for x in doc.splitlines() if x.strip().startswith("dataset:"))
    assert all(n in line for n in [*names, datasets.MANIFEST]), line
    params = inspect.signature(facet_vlm_pipeline.pipeline_func).parameters
    assert params["cross_dataset_name"].default == datasets.CROSS_DATASET == "bp4d"
    assert params["cross_protocol"].default == datasets.CROSS_PROTOCOL
    assert params["cross_label_map"].default == datasets.cross_label_map() == {"disgust": "disgust", "happy": "happy"}
