"""Issue 13 item 8 (render side): the manifest describes exactly the current index; 4D sequences survive a
few bad frames (recorded); per-shard progress lines when stderr is not a terminal."""

import shutil

import pytest

from facet_lib.data.indexers import index_dataset
from facet_lib.errors import ConfigError, DatasetLayoutError, ScanFormatError
from facet_lib.render import RenderConfig
from facet_lib.render.dataset import RenderedDataset, merge_rendered, render_dataset
from facet_lib.render.sequence import read_sampled_frames

CFG = RenderConfig(size=32, frames=3)


@pytest.fixture
def index3d(synth_root):
    return index_dataset("bu3dfe", synth_root / "bu3dfe").index.iloc[:10].reset_index(drop=True)


def _shard_files(d):
    return sorted(f.name for f in d.glob("shard-*.npz"))


def test_rerender_of_a_changed_index_keeps_no_stale_shards(index3d, tmp_path):
    out = tmp_path / "r"
    render_dataset(index3d, out, CFG, shard_size=3, workers=1, progress=False)
    smaller = index3d.iloc[4:9].reset_index(drop=True)  # removed rows and shifted shard boundaries
    m = render_dataset(smaller, out, CFG, shard_size=3, workers=1, progress=False)
    assert m["samples"] == 5 and m["complete"] and m["last_run"]["stale_removed"]
    assert _shard_files(out) == sorted(s["file"] for s in m["shards"])
    views, rows = RenderedDataset(out).load()
    assert sorted(rows.sample_id) == sorted(smaller.sample_id) and len(views) == 5


def test_partial_render_is_marked_incomplete(index3d, tmp_path):
    m = render_dataset(index3d, tmp_path / "r", CFG, shard_size=4, shards=[1], workers=1, progress=False)
    assert m["index"]["shards"] == 3 and not m["complete"] and not RenderedDataset(tmp_path / "r").complete


def test_duplicate_sample_ids_are_refused(index3d, tmp_path):
    import pandas as pd

    dup = pd.concat([index3d, index3d.iloc[[2]]], ignore_index=True)
    with pytest.raises(DatasetLayoutError, match=f"1 duplicate sample ids .*{index3d.sample_id[2]}"):
        render_dataset(dup, tmp_path / "r", CFG, shard_size=4, workers=1, progress=False)


def test_merge_refuses_parts_of_another_index_and_cleans_the_target(index3d, tmp_path):
    render_dataset(index3d, tmp_path / "a", CFG, shard_size=4, shards=[0], workers=1, progress=False)
    render_dataset(index3d.iloc[:6], tmp_path / "b", CFG, shard_size=4, shards=[1], workers=1, progress=False)
    with pytest.raises(ConfigError, match="another index"):
        merge_rendered([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    render_dataset(index3d, tmp_path / "c", CFG, shard_size=4, shards=[1, 2], workers=1, progress=False)
    (tmp_path / "m" / "shard-00007-0123456789ab.npz").write_bytes(b"stale")
    m = merge_rendered([tmp_path / "a", tmp_path / "c"], tmp_path / "m")
    assert m["complete"] and m["samples"] == 10
    assert _shard_files(tmp_path / "m") == sorted(s["file"] for s in m["shards"])


def test_per_shard_progress_lines_when_not_a_terminal(index3d, tmp_path, capsys):
    render_dataset(index3d, tmp_path / "r", CFG, shard_size=4, workers=1, progress=True)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("render:")]
    assert len(lines) == 3 and "shard 1/3" in lines[0] and "samples_per_s" in lines[0]


def _sequence_index(synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root / "bu4dfe", root)
    return root, index_dataset("bu4dfe", root).index.iloc[:2].reset_index(drop=True)


def test_sequence_with_a_bad_frame_is_rendered_and_recorded(synth_root, tmp_path):
    root, idx = _sequence_index(synth_root, tmp_path)
    frames = idx.frames[0]
    assert len(frames) == 4  # sampled 3 of 4: frames 0, 2, 3
    bad = root / frames[2]
    bad.write_text(bad.read_text()[:3000])  # truncated, header fine
    m = render_dataset(idx, tmp_path / "r", CFG, shard_size=2, workers=1, progress=False)
    assert m["samples"] == 2 and not m["failures"]
    (rep,) = m["repaired"]
    assert rep["sample_id"] == idx.sample_id[0]
    (note,) = rep["bad_frames"]
    assert note["frame"] == 2 and note["replaced_by"] == 1 and bad.name in note["reason"]


def test_sequence_with_too_many_bad_frames_fails_with_a_clear_reason(synth_root, tmp_path):
    root, idx = _sequence_index(synth_root, tmp_path)
    for f in idx.frames[0]:
        (root / f).write_bytes(b"#VRML V2.0 utf8\n garbage {")
    m = render_dataset(idx, tmp_path / "r", CFG, shard_size=2, workers=1, progress=False)
    assert m["samples"] == 1 and len(m["failures"]) == 1
    assert "unreadable of 3 sampled frames" in m["failures"][0]["reason"]


def _fake_reader(bad):
    def read(p):
        if p in bad:
            raise ScanFormatError(p, "file", "a scan", "garbage")
        return p

    return read


def test_bad_frames_replaced_by_the_nearest_free_neighbour_or_dropped():
    paths = [f"f{i}" for i in range(10)]
    meshes, notes = read_sampled_frames(paths, 4, 0.5, read=_fake_reader({"f3", "f9", "f8"}))
    # sampled 0, 3, 6, 9: f3 → f2 (nearest, tie → earlier), f9 → f8 bad → f7
    assert meshes == ["f0", "f2", "f6", "f7"]
    assert [(n["frame"], n["replaced_by"]) for n in notes] == [(3, 2), (9, 7)]
    meshes, notes = read_sampled_frames(paths[:4], 4, 0.5, read=_fake_reader({"f1"}))
    assert meshes == ["f0", "f2", "f3"] and notes[0]["replaced_by"] is None  # no free neighbour: dropped
    with pytest.raises(ScanFormatError, match="at most 1 unreadable of 4"):
        read_sampled_frames(paths, 4, 0.25, read=_fake_reader({"f0", "f3"}))
    with pytest.raises(ScanFormatError, match="at most 0 unreadable"):
        read_sampled_frames(paths, 4, 0.0, read=_fake_reader({"f3"}))
