"""Manifest indexer: bad rows are quarantined with their row number and reason, never the whole file."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from facet_lib.data.indexers import index_dataset, index_manifest
from facet_lib.errors import DatasetLayoutError


def _write(tmp_path, rows: list[dict]):
    m = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(m, index=False)
    return m


def test_bad_rows_are_quarantined_and_good_rows_kept(synth_root, tmp_path):
    scans = sorted((synth_root / "bu3dfe").rglob("*_F3D.wrl"))
    seq = synth_root / "bu4dfe" / "F001" / "Happy"
    (tmp_path / "notes.txt").write_text("not a scan")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("# no frames here")
    (tmp_path / "cut.wrl").write_bytes(scans[5].read_bytes()[:5000])
    row = {"subject": "s1", "label": "happy", "intensity": "2", "sample_id": ""}
    m = _write(
        tmp_path,
        [
            {**row, "path": str(scans[0]), "sample_id": "good_1"},  # row 2
            {**row, "path": str(scans[1]), "intensity": "abc"},  # row 3
            {**row, "path": str(scans[2]), "sample_id": "twice"},  # row 4
            {**row, "path": str(scans[3]), "sample_id": "twice"},  # row 5
            {**row, "path": "notes.txt"},  # row 6
            {**row, "path": "/etc/hostname"},  # row 7
            {**row, "path": "docs"},  # row 8
            {**row, "path": "cut.wrl"},  # row 9
            {**row, "path": str(scans[4]), "label": ""},  # row 10
            {**row, "path": str(seq), "sample_id": "good_seq"},  # row 11
            {**row, "path": ""},  # row 12
            {**row, "path": str(scans[6]), "intensity": "-1"},  # row 13
        ],
    )
    res = index_manifest(m)
    assert sorted(res.index.sample_id) == ["good_1", "good_seq"]
    reasons = " | ".join(res.quarantine.reason)
    for expected in (
        "manifest.csv row 3: intensity 'abc' is not an integer",
        "manifest.csv row 4: duplicate sample_id 'twice' (also manifest.csv row 5)",
        "manifest.csv row 5: duplicate sample_id 'twice' (also manifest.csv row 4)",
        "manifest.csv row 6: not a scan file (suffix '.txt'",
        "manifest.csv row 7: not a scan file (suffix ''",
        "manifest.csv row 8: holds no scan files",
        "manifest.csv row 9: truncated",
        "manifest.csv row 10: empty label",
        "manifest.csv row 12: empty path",
        "manifest.csv row 13: intensity -1 is negative",
    ):
        assert expected in reasons
    assert len(res.quarantine) == 10  # one per bad row
    q = dict(zip(res.quarantine.reason, res.quarantine.path))
    assert q[next(r for r in q if "row 3:" in r)] == str(scans[1])  # the quarantine row names the file


def test_bad_frames_in_a_manifest_sequence_are_dropped_one_by_one(synth_root, tmp_path):
    seq = tmp_path / "seq"
    shutil.copytree(synth_root / "bu4dfe" / "F001" / "Sad", seq)
    frames = sorted(seq.glob("*.wrl"))
    frames[1].write_bytes(frames[1].read_bytes()[:3000])
    (seq / "mixed.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    m = _write(
        tmp_path,
        [{"path": "seq/*.wrl", "subject": "s", "label": "sad"}, {"path": "seq", "subject": "t", "label": "sad"}],
    )
    res = index_manifest(m)
    assert res.index.n_frames.tolist() == [len(frames) - 1]
    assert res.index.frames.iloc[0] == [f"seq/{f.name}" for f in frames if f != frames[1]]
    assert any(f"row 2: frame {frames[1].name}: truncated" in r for r in res.quarantine.reason)
    assert any("row 3: frames of mixed formats ['.obj', '.wrl']" in r for r in res.quarantine.reason)


def test_not_a_manifest_is_refused_with_the_file_name(tmp_path):
    m = tmp_path / "m.csv"
    m.write_bytes(b"\xff\xfe\x00\x01" * 50)
    with pytest.raises(DatasetLayoutError, match=r"m\.csv"):
        index_manifest(m)


def test_native_duplicates_are_quarantined_not_fatal(tree_4dme):
    ann = pd.read_csv(tree_4dme / "4DME_labels.csv", dtype=str)
    extra = ann.iloc[[0]].assign(Emotion="surprise")  # the same sample annotated twice
    escape = ann.iloc[[1]].assign(Subject="..", Sample="..")
    pd.concat([ann, extra, escape]).to_csv(tree_4dme / "4DME_labels.csv", index=False)
    res = index_dataset("4dme", tree_4dme)
    assert len(res.index) == len(ann) - 1
    dup = [r for r in res.quarantine.reason if "duplicate sample_id" in r]
    assert len(dup) == 2 and f"row {len(ann) + 2}" in dup[0]
    assert any("is outside the dataset root" in r for r in res.quarantine.reason)


@pytest.fixture
def tree_4dme(synth_root, tmp_path):
    shutil.copytree(synth_root / "4dme", tmp_path / "4dme")
    return tmp_path / "4dme"
