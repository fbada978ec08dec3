import json

import numpy as np
import pytest

from facet_lib.data.indexers import index_dataset
from facet_lib.errors import ConfigError
from facet_lib.render import RenderConfig
from facet_lib.render import dataset as rd
from facet_lib.render.contact_sheet import contact_sheet
from facet_lib.render.dataset import RenderedDataset, merge_rendered, render_dataset

CFG = RenderConfig(size=48, frames=3)


@pytest.fixture
def index3d(synth_root):
    return index_dataset("bu3dfe", synth_root / "bu3dfe").index.iloc[:10].reset_index(drop=True)


def test_render_shards_manifest_and_reload(index3d, tmp_path):
    m = render_dataset(index3d, tmp_path / "r", CFG, shard_size=4, workers=1, progress=False)
    assert m["samples"] == 10 and len(m["shards"]) == 3 and not m["failures"]
    views, rows = RenderedDataset(tmp_path / "r").load()
    assert views.shape == (10, 3, 48, 48, 3) and views.dtype == np.uint8
    assert list(rows.sample_id) == sorted(index3d.sample_id) and {"subject", "label"} <= set(rows)
    png = contact_sheet(tmp_path / "r", tmp_path / "r" / "sheet.png")
    assert png.stat().st_size > 1000


def test_rerun_skips_and_changed_setting_refused(index3d, tmp_path):
    render_dataset(index3d, tmp_path / "r", CFG, shard_size=4, workers=1, progress=False)
    again = render_dataset(index3d, tmp_path / "r", CFG, shard_size=4, workers=1, progress=False)
    assert again["last_run"]["samples_rendered"] == 0 and again["last_run"]["shards_skipped"] == 3
    with pytest.raises(ConfigError, match="other settings"):
        render_dataset(
            index3d, tmp_path / "r", RenderConfig(size=64, frames=3), shard_size=4, workers=1, progress=False
        )


def test_corrupt_scan_reported_and_shard_kept(synth_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synth_root / "bu3dfe" / "F0001", root / "F0001")
    idx = index_dataset("bu3dfe", root).index.iloc[:6].reset_index(drop=True)
    bad = root / idx.path[2]
    bad.write_text(bad.read_text()[:5000])  # truncated mid-file, header still fine
    m = render_dataset(idx, tmp_path / "r", CFG, shard_size=6, workers=1, progress=False)
    assert m["samples"] == 5 and len(m["failures"]) == 1
    f = m["failures"][0]
    assert f["sample_id"] == idx.sample_id[2] and str(bad) in f["reason"]


def test_interrupted_run_resumes_without_losing_shards(index3d, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = rd._render_task

    def flaky(args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(rd, "_render_task", flaky)
    with pytest.raises(KeyboardInterrupt):
        render_dataset(index3d, tmp_path / "r", CFG, shard_size=4, workers=1, progress=False)
    first = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert [s["count"] for s in first["shards"]] == [4]
    assert not list((tmp_path / "r").glob(".*tmp*"))  # no half-written files
    monkeypatch.setattr(rd, "_render_task", real)
    m = render_dataset(index3d, tmp_path / "r", CFG, shard_size=4, workers=1, progress=False)
    assert m["samples"] == 10 and m["last_run"]["shards_skipped"] == 1


def test_parallel_parts_merge_to_the_full_dataset(index3d, tmp_path):
    render_dataset(index3d, tmp_path / "a", CFG, shard_size=4, shards=[0, 2], workers=1, progress=False)
    render_dataset(index3d, tmp_path / "b", CFG, shard_size=4, shards=[1], workers=1, progress=False)
    merged = merge_rendered([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    full = render_dataset(index3d, tmp_path / "f", CFG, shard_size=4, workers=1, progress=False)
    assert [s["sha256"] for s in merged["shards"]] == [s["sha256"] for s in full["shards"]]
    other = render_dataset(
        index3d, tmp_path / "o", RenderConfig(size=32, frames=3), shard_size=4, shards=[0], workers=1, progress=False
    )
    assert other["samples"] == 4
    with pytest.raises(ConfigError, match="other settings"):
        merge_rendered([tmp_path / "a", tmp_path / "o"], tmp_path / "m2")


def test_tampered_shard_refused(index3d, tmp_path):
    render_dataset(index3d, tmp_path / "r", CFG, shard_size=10, workers=1, progress=False)
    shard = next((tmp_path / "r").glob("shard-*.npz"))
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="checksum differs"):
        RenderedDataset(tmp_path / "r").load()


def test_sequence_dynamic_images_with_a_pool(synth_root, tmp_path):
    idx = index_dataset("bu4dfe", synth_root / "bu4dfe").index.iloc[:4]
    m = render_dataset(idx, tmp_path / "r", CFG, shard_size=2, workers=2, progress=False)
    views, rows = RenderedDataset(tmp_path / "r").load()
    assert m["samples"] == 4 and views.shape == (4, 3, 48, 48, 3)
    assert all(views[i, v].std() > 0 for i in range(4) for v in range(3))  # motion, not a flat image
