import pandas as pd

from facet_lib.cli import main


def test_generate_index_folds(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--dataset",
                "bu3dfe",
                "--out",
                str(tmp_path / "d"),
                "--subjects",
                "3",
                "--step",
                "4",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert main(["index", "--dataset", "bu3dfe", "--root", str(tmp_path / "d"), "--out", str(tmp_path / "i.csv")]) == 0
    out = capsys.readouterr().out
    assert "75 samples, 3 subjects, 0 quarantined" in out
    assert (
        main(
            [
                "folds",
                "--index",
                str(tmp_path / "i.csv"),
                "--protocol",
                "bu3dfe-I",
                "--k",
                "3",
                "--out",
                str(tmp_path / "f.csv"),
            ]
        )
        == 0
    )
    f = pd.read_csv(tmp_path / "f.csv")
    assert len(f) == 36 and f.groupby("subject").fold.nunique().max() == 1


def test_clear_error_exit_code(tmp_path, capsys):
    args = ["index", "--dataset", "bu3dfe", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "i.csv")]
    assert main(args) == 2
    assert "is not a directory" in capsys.readouterr().err
