import pandas as pd
import pytest

from facet_lib.data.folds import check_folds, load_folds, make_folds, save_folds, split
from facet_lib.errors import FoldLeakError


def _index(n_subj=20, per=12, labels=("a", "b", "c", "d", "e", "f")):
    rows = [
        {"sample_id": f"s{s}_{k}", "subject": f"s{s}", "label": labels[k % len(labels)]}
        for s in range(n_subj)
        for k in range(per)
    ]
    return pd.DataFrame(rows)


def test_no_subject_in_two_folds_and_all_folds_used():
    f = make_folds(_index(), n_folds=10, seed=3)
    assert f.groupby("subject").fold.nunique().max() == 1
    assert sorted(f.fold.unique()) == list(range(10))
    for k in range(10):
        train, test = split(f, k)
        assert not set(train.subject) & set(test.subject)


def test_stratified_and_deterministic():
    idx = _index()
    a, b = make_folds(idx, 5, seed=1), make_folds(idx, 5, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not make_folds(idx, 5, seed=2).fold.equals(a.fold)
    counts = a.groupby(["fold", "label"]).size().unstack()
    assert counts.min().min() >= 6 and counts.max().max() <= 10  # every fold sees every label


def test_leak_refused(tmp_path):
    f = make_folds(_index(), 5)
    f.loc[0, "fold"] = (f.loc[0, "fold"] + 1) % 5
    with pytest.raises(FoldLeakError, match="subject s0 appears in folds"):
        check_folds(f)
    with pytest.raises(FoldLeakError):
        save_folds(f, tmp_path / "f.csv")
    f.to_csv(tmp_path / "f.csv", index=False)
    with pytest.raises(FoldLeakError):
        load_folds(tmp_path / "f.csv")


def test_too_many_folds():
    with pytest.raises(FoldLeakError, match="cannot make 30 subject-independent folds from 20 subjects"):
        make_folds(_index(), 30)
