import shutil

import pandas as pd
import pytest

from facet_lib.data.indexers import (
    index_dataset,
    index_manifest,
    load_index,
    sample_paths,
    save_index,
    select_protocol,
)
from facet_lib.errors import DatasetLayoutError


@pytest.fixture
def tree(synth_root, tmp_path):
    """A private copy of the synthetic trees that a test may damage."""

    def _copy(ds):
        dst = tmp_path / ds
        shutil.copytree(synth_root / ds, dst)
        return dst

    return _copy


def test_bu3dfe_layout_and_subsets(synth_root):
    res = index_dataset("bu3dfe", synth_root / "bu3dfe")
    df = res.index
    assert len(df) == 4 * 25 and res.quarantine.empty
    row = df[df.sample_id.str.startswith("F0001_HA03")].iloc[0]
    assert (row.subject, row.label, row.intensity) == ("F0001", "happy", 3)
    assert row.path.startswith("F0001/") and sample_paths(row)[0].exists()
    sub1, labels = select_protocol(df, "bu3dfe-I")
    assert set(sub1.intensity) == {3, 4} and len(sub1) == 4 * 6 * 2 and "neutral" not in labels
    sub2, _ = select_protocol(df, "bu3dfe-II")
    assert len(sub2) == 4 * 24 and set(sub2.intensity) == {1, 2, 3, 4}


def test_bu3dfe_quarantine(tree):
    root = tree("bu3dfe")
    (root / "F0001" / "F0001_XX01WH_F3D.wrl").write_text("#VRML V2.0 utf8\n")
    (root / "F0001" / "F0001_HA09WH_F3D.wrl").write_text("#VRML V2.0 utf8\n")
    (root / "F0001" / "F0001_AN01WH_RAW.wrl").write_text("#VRML V2.0 utf8\n")  # not a sample
    victim = next(root.rglob("*_SA02*_F3D.wrl"))
    victim.write_bytes(b"\x00\x01garbage")
    res = index_dataset("bu3dfe", root)
    reasons = dict(zip(res.quarantine.path, res.quarantine.reason))
    assert "name does not match" in reasons["F0001/F0001_XX01WH_F3D.wrl"]
    assert "intensity 09" in reasons["F0001/F0001_HA09WH_F3D.wrl"]
    assert "VRML 2.0" in reasons[victim.relative_to(root).as_posix()]
    assert len(res.quarantine) == 3 and len(res.index) == 99


def test_bosphorus_all_six_rule(synth_root):
    df = index_dataset("bosphorus", synth_root / "bosphorus").index
    assert set(df.label) == {"anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    # the generator leaves out one emotion for every fifth subject (bs004 here is absent: 4 subjects)
    sel, labels = select_protocol(df, "bosphorus")
    assert sel.groupby("subject").label.nunique().eq(6).all() and "neutral" not in set(sel.label)


def test_bosphorus_subject_missing_emotion_is_dropped(tree):
    root = tree("bosphorus")
    for f in root.glob("bs001/bs001_E_FEAR_0.*"):
        f.unlink()
    (root / "bs001" / "bs001_LFAU_9_0.bnt").write_bytes(b"x" * 20)  # action-unit scan: not a sample
    (root / "bs001" / "bs001_E_JOY_0.bnt").write_bytes(b"x" * 20)
    res = index_dataset("bosphorus", root)
    assert "unknown emotion code 'JOY'" in res.quarantine.reason.iloc[0]
    sel, _ = select_protocol(res.index, "bosphorus")
    assert "bs001" not in set(sel.subject) and sel.subject.nunique() == 3


def test_bu4dfe_sequences_and_frame_order(tree):
    root = tree("bu4dfe")
    res = index_dataset("bu4dfe", root)
    df = res.index
    assert len(df) == 4 * 6 and (df.n_frames == 4).all()
    r = df[df.sample_id == "F001_Happy"].iloc[0]
    assert r.frames == [f"F001/Happy/{i:03d}.wrl" for i in range(4)]
    (root / "F001" / "Bored").mkdir()
    (root / "F001" / "Angry" / "notes.wrl").write_text("#VRML V2.0 utf8")
    res = index_dataset("bu4dfe", root)
    assert {"F001/Bored", "F001/Angry/notes.wrl"} == set(res.quarantine.path)
    assert len(res.index) == 24


def test_bp4d_tasks_and_cross_subset(synth_root):
    df = index_dataset("bp4d", synth_root / "bp4d").index
    assert set(df.task) == {f"T{k}" for k in range(1, 9)}
    assert df.set_index("task").loc["T6", "label"].iloc[0] == "pain"
    cross, labels = select_protocol(df, "bp4d-cross")
    assert labels == ["happy", "disgust"] and set(cross.task) == {"T1", "T8"} and len(cross) == 8


def test_4dme_annotation_table(tree):
    root = tree("4dme")
    df = index_dataset("4dme", root).index
    assert set(df.label) == {"positive", "negative", "surprise", "repression", "others"}
    assert len(df) == 4 * 10
    ann = pd.read_csv(root / "4DME_labels.csv")
    ann.loc[0, "Emotion"] = "Happiness"
    ann.to_csv(root / "4DME_labels.csv", index=False)
    res = index_dataset("4dme", root)
    assert "emotion 'Happiness' not one of" in res.quarantine.reason.iloc[0]
    (root / "4DME_labels.csv").unlink()
    with pytest.raises(DatasetLayoutError, match="no 4DME annotation table"):
        index_dataset("4dme", root)


def test_manifest_any_layout(synth_root, tmp_path):
    scans = sorted((synth_root / "bu3dfe").rglob("*_F3D.wrl"))[:3]
    seq = synth_root / "bu4dfe" / "M001" / "Sad"
    m = tmp_path / "manifest.csv"
    pd.DataFrame(
        {
            "path": [str(scans[0]), str(scans[1]), str(seq / "*.wrl"), str(seq), "missing.obj"],
            "subject": ["a", "a", "b", "b", "c"],
            "label": ["anger", "anger", "sad", "sad", "happy"],
            "intensity": ["1", "2", "", "", ""],
        }
    ).to_csv(m, index=False)
    res = index_manifest(m)
    assert len(res.index) == 4 and len(res.quarantine) == 1
    assert "row 6: file not found" in res.quarantine.reason.iloc[0]
    assert (res.index.n_frames.tolist()) == [1, 1, 4, 4]
    with pytest.raises(DatasetLayoutError, match=r"missing required column\(s\) \['label'\]"):
        pd.DataFrame({"path": ["x"], "subject": ["s"]}).to_csv(m, index=False)
        index_manifest(m)


def test_index_save_load_round_trip(synth_root, tmp_path):
    df = index_dataset("bu4dfe", synth_root / "bu4dfe").index
    back = load_index(save_index(df, tmp_path / "i.csv"))
    pd.testing.assert_frame_equal(back[["sample_id", "subject", "label"]], df[["sample_id", "subject", "label"]])
    assert back.frames.iloc[0] == df.frames.iloc[0]


def test_bad_root_and_dataset(tmp_path):
    with pytest.raises(DatasetLayoutError, match="is not a directory"):
        index_dataset("bu3dfe", tmp_path / "nope")
    with pytest.raises(DatasetLayoutError, match="unknown dataset"):
        index_dataset("casme", tmp_path)
