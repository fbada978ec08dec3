"""One front door for the data half (issue 20.3): the CLI's index/folds/render and the pipeline's ingest/render
steps are built from the same functions and write the same files; the shards are planned once, at ingest,
and every render task reads that record."""

import json

import pandas as pd

from facet_lib import storage
from facet_lib.cli import main
from facet_lib.config import RenderConfig, to_params
from facet_lib.render import dataset as rd
from facet_lib.steps import ingest_step, quarantine_path, render_step

RENDER = to_params(RenderConfig(size=32))


def _spoil(root):
    """One unreadable scan in a copy of a synthetic tree: it must be quarantined, not kill the run."""
    bad = sorted(root.rglob("*.wrl"))[0]
    bad.write_text("#VRML V2.0 utf8\nShape { geometry IndexedFaceSet { coord Coordinate { point [ 1 2")
    return bad


def test_cli_index_and_ingest_write_the_same_files(synth_root, tmp_path):
    import shutil

    root = tmp_path / "bu3dfe"
    shutil.copytree(synth_root / "bu3dfe", root)
    bad = _spoil(root)
    assert main(["index", "--dataset", "bu3dfe", "--root", str(root), "--out", str(tmp_path / "cli" / "i.csv")]) == 0
    info = ingest_step(str(root), "bu3dfe", "bu3dfe-II", 2, 0, tmp_path / "ingest")
    for index_csv in (tmp_path / "cli" / "i.csv", tmp_path / "ingest" / "index.csv"):
        q = pd.read_csv(quarantine_path(index_csv))
        assert quarantine_path(index_csv).name == index_csv.stem + "_quarantine.csv"
        assert [p.endswith(bad.name) for p in q["path"]] == [True], q
    assert info["quarantined"] == 1


def test_shards_are_planned_once_and_render_tasks_read_the_record(synth_root, tmp_path, s3, monkeypatch):
    storage.upload_dir(synth_root / "bu3dfe", "s3://facet-front/raw/bu3dfe")
    info = ingest_step("s3://facet-front/raw/bu3dfe", "bu3dfe", "bu3dfe-I", 2, 0, tmp_path / "ingest", shard_size=10)
    members = pd.read_csv(tmp_path / "ingest" / "shards.csv", dtype={"sample_id": str})
    assert sorted(members["shard"].unique()) == sorted(s for g in info["shard_groups"] for s in g)
    assert len(members) == info["samples"] and members["sample_id"].is_unique

    plans, fetched = [], []
    real_rows, real_download = rd.shard_rows, storage.download_prefix

    def count(*a, **k):
        plans.append(1)
        return real_rows(*a, **k)

    def spy(uri, dest, only=None, **k):
        fetched.extend(only or ["<everything>"])
        return real_download(uri, dest, only=only, **k)

    monkeypatch.setattr(rd, "shard_rows", count)
    monkeypatch.setattr(storage, "download_prefix", spy)
    res = render_step(tmp_path / "ingest", "s3://facet-front/raw/bu3dfe", [1], RENDER, tmp_path / "v1", kind="scans")
    assert len(plans) == 1  # only the renderer's own keying; the task's members come from shards.csv
    wanted = set(members["sample_id"][members["shard"] == 1])
    index = pd.read_csv(tmp_path / "ingest" / "index.csv", dtype={"sample_id": str})
    stems = {p.rsplit(".", 1)[0] for p in index[index["sample_id"].isin(wanted)]["path"]}
    assert fetched and {f.rsplit(".", 1)[0] for f in fetched} == stems  # this shard's scans and side files only
    manifest = json.loads((tmp_path / "v1" / "manifest.json").read_text())
    assert [s["shard"] for s in manifest["shards"]] == [1] and res["samples"] == len(wanted)
