"""Fig. 4: ablation tables of several runs (one per setting) → one heatmap with the paper's six columns,
beside the paper's values (§4.4.1/§4.4.2). The runs here are written by hand; tests/train/test_cv.py and
test_cross_ablations.py run the command on tables written by real (tiny, synthetic) ablation runs."""

import json
import math

import pandas as pd
import pytest

from facet_lib.cli import main
from facet_lib.errors import ConfigError
from facet_lib.eval.fig4 import COLUMNS, SETTINGS, fig4_table, write_ablation_meta, write_fig4

WEIGHTS = "ours: backbone weights random (untrained); paper: pretrained CLIP ViT-B/16"


def _run(root, name, acc: dict, protocol=None):
    d = root / name
    d.mkdir(parents=True)
    t = pd.DataFrame({"accuracy": acc}).rename_axis("variant").assign(backbone_weights=WEIGHTS)
    t.to_csv(d / "ablation_table.csv")
    if protocol:
        write_ablation_meta(d, protocol, "random (untrained)")
    return d


ACC = {"full": 0.60, "no_cvsa": 0.40, "no_mtgf": 0.55, "no_consistency": 0.58, "front_only": 0.5}


def test_six_columns_ours_and_the_papers_cells(tmp_path):
    runs = [str(_run(tmp_path, s, ACC, protocol=s)) for s in SETTINGS]
    t, notes = fig4_table(runs)
    assert len(t) == 6 * 6 and list(t["column"].unique()) == [f"{a} − {b}" for a, b in COLUMNS]
    assert list(t["row"].unique()) == list(SETTINGS.values())  # the paper's row order
    cell = t.set_index(["setting", "column"])
    assert cell.loc[("bu3dfe-I", "full − no_cvsa"), "ours"] == pytest.approx(20.0)
    assert cell.loc[("bu3dfe-I", "no_consistency − no_mtgf"), "ours"] == pytest.approx(3.0)
    # the paper's values: §4.4.2's stated differences and those implied by §4.4.1
    paper = cell["paper"]
    assert paper[("bp4d-cross", "full − no_cvsa")] == pytest.approx(13.00)
    assert paper[("bp4d", "full − no_cvsa")] == pytest.approx(11.92)
    assert paper[("bu3dfe-I", "full − no_cvsa")] == pytest.approx(11.65)
    assert paper[("bosphorus", "full − no_cvsa")] == pytest.approx(10.34)
    assert paper[("bu4dfe", "full − no_cvsa")] == pytest.approx(99.41 - 92.93)
    assert paper[("bp4d", "full − no_mtgf")] == pytest.approx(8.33)
    assert paper[("bp4d-cross", "full − no_mtgf")] == pytest.approx(86.12 - 79.05)
    assert paper[("bu3dfe-II", "full − no_consistency")] == pytest.approx(1.91)
    assert paper[("bosphorus", "full − no_consistency")] == pytest.approx(2.15)
    assert paper[("bp4d", "no_consistency − no_mtgf")] == pytest.approx(89.65 - 84.35)
    assert paper[("bp4d", "no_mtgf − no_cvsa")] == pytest.approx(84.35 - 80.76)
    assert math.isnan(paper[("bu3dfe-II", "full − no_cvsa")])  # not printed: empty, never 0
    assert "not printed" in cell.loc[("bu3dfe-II", "full − no_cvsa"), "paper_source"]
    assert "§4.4.1" in cell.loc[("bu4dfe", "full − no_cvsa"), "paper_source"]
    assert cell.loc[("bp4d", "full − no_mtgf"), "diff_to_paper"] == pytest.approx(5.0 - 8.33)
    assert len(notes) == 6 and "random" in notes[0]


def test_command_writes_heatmap_table_and_markdown(tmp_path, capsys):
    a = _run(tmp_path, "a", ACC, protocol="bp4d")
    b = _run(tmp_path, "b", {k: v for k, v in ACC.items() if k != "no_mtgf"})  # no meta: named on the command
    assert main(["fig4", str(a), f"bosphorus={b}", "--out", str(tmp_path / "fig4")]) == 0
    out = capsys.readouterr().out
    assert "BP4D (Recognition)" in out and "Bosphorus" in out and "random backbone weights" in out
    assert "20.00 (11.92)" in out  # bp4d full − no_cvsa: ours (paper)
    assert (tmp_path / "fig4" / "fig4.png").stat().st_size > 5000
    t = pd.read_csv(tmp_path / "fig4" / "fig4.csv").set_index(["setting", "column"])
    assert math.isnan(t.loc[("bosphorus", "full − no_mtgf"), "ours"])  # that run had no no_mtgf
    assert t.loc[("bosphorus", "full − no_cvsa"), "paper"] == pytest.approx(10.34)
    res = write_fig4([str(a)], tmp_path / "only")
    assert json.dumps(res, allow_nan=False)  # strict JSON: a missing cell is null


@pytest.mark.parametrize(
    "spec, match",
    [
        ("nothing_here", "not an ablation run"),
        ("meta_less", "does not say its setting"),
        ("4dme=meta_less", "not one of Fig. 4's"),
    ],
)
def test_bad_runs_are_named(tmp_path, spec, match):
    _run(tmp_path, "meta_less", ACC)
    (tmp_path / "nothing_here").mkdir()
    with pytest.raises(ConfigError, match=match):
        fig4_table([str(tmp_path / spec) if "=" not in spec else spec.replace("=", f"={tmp_path}/")])


def test_two_runs_for_one_setting_are_refused(tmp_path):
    a, b = _run(tmp_path, "a", ACC, "bp4d"), _run(tmp_path, "b", ACC, "bp4d")
    with pytest.raises(ConfigError, match="two runs for setting 'bp4d'"):
        fig4_table([str(a), str(b)])
    assert main(["fig4", str(a), str(b), "--out", str(tmp_path / "x")]) == 2  # a clear error, exit 2


def test_two_later_settings_sit_on_their_own_rows_in_both_panels(tmp_path, monkeypatch):
    """Two runs that are not the first settings: ours has the paper's six rows too, aligned with the paper's
    panel, and both panels label their rows (a row of ours is never drawn beside another setting's paper)."""
    import matplotlib.figure

    from facet_lib.eval.fig4 import fig4_grids

    runs = [str(_run(tmp_path, "c", ACC, "bp4d-cross")), str(_run(tmp_path, "b", ACC, "bosphorus"))]
    ours, paper = fig4_grids(fig4_table(runs)[0])
    assert list(ours.index) == list(paper.index) == list(SETTINGS.values())
    assert ours.loc["Bosphorus", "full − no_cvsa"] == pytest.approx(20.0)
    assert ours.loc["BP4D (Cross-Dataset)", "full − no_cvsa"] == pytest.approx(20.0)
    assert ours.drop(["Bosphorus", "BP4D (Cross-Dataset)"]).isna().all().all()  # not run: empty rows
    assert paper.loc["BP4D (Cross-Dataset)", "full − no_cvsa"] == pytest.approx(13.00)

    drawn = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: drawn.append(self))
    write_fig4(runs, tmp_path / "fig4")
    (fig,) = drawn
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2
    for ax in panels:
        assert [t.get_text() for t in ax.get_yticklabels()] == list(SETTINGS.values()), ax.get_title()
    ours_ax = panels[0]
    cells = {(round(t.get_position()[1]), t.get_text()) for t in ours_ax.texts}
    row = list(SETTINGS).index("bosphorus")
    assert (row, "20.00") in cells and (0, "–") in cells  # bosphorus's value on bosphorus's row; row 0 not run
    md = (tmp_path / "fig4" / "fig4.md").read_text()
    assert "| Bosphorus |" in md and "| BP4D (Cross-Dataset) |" in md and "Subset I)" not in md


def test_the_pipeline_page_is_one_self_contained_html_with_ours_beside_the_paper(tmp_path):
    from facet_lib.eval.fig4 import fig4_report

    run = _run(tmp_path, "b", ACC, "bosphorus")
    res = fig4_report([str(run)], tmp_path / "out")
    page = (tmp_path / "out" / "fig4.html").read_text()
    assert "data:image/png;base64," in page and "Bosphorus" in page
    assert "10.34" in page and "20.0" in page  # the paper's full − no_cvsa and ours, in one table
    assert str(tmp_path / "out" / "fig4.html") in res["files"]
