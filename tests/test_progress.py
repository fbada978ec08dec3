"""One progress helper: a few lines (or one per epoch) when the output is not a terminal."""

import io

from tqdm import tqdm

from facet_lib.progress import LineProgress, progress_bar


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_a_long_loop_prints_a_few_lines_without_carriage_returns():
    s = io.StringIO()
    for _ in progress_bar(range(5000), desc="render", unit="sample", stream=s):
        pass
    lines = s.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in s.getvalue()
    assert lines[0].startswith("render: 500/5000 sample (10%)") and lines[-1].startswith(
        "render: 5000/5000 sample done"
    )


def test_one_line_per_epoch_with_the_postfix():
    s = io.StringIO()
    bar = progress_bar(range(3), desc="fold 0", unit="epoch", every_item=True, stream=s)
    for e in bar:
        bar.set_postfix(loss=f"{1 / (e + 1):.3f}", acc="0.50")
    lines = s.getvalue().splitlines()
    assert [ln.split(" s")[0].rsplit(" ", 1)[0] for ln in lines] == [
        "fold 0: epoch 1/3 loss 1.000 acc 0.50",
        "fold 0: epoch 2/3 loss 0.500 acc 0.50",
        "fold 0: epoch 3/3 loss 0.333 acc 0.50",
    ]


def test_terminal_gets_tqdm_and_disabled_prints_nothing():
    assert isinstance(progress_bar(range(3), stream=_Tty()), tqdm)
    s = io.StringIO()
    for _ in progress_bar(range(3), disable=True, stream=s):
        pass
    assert s.getvalue() == ""
    with LineProgress(total=4, desc="x", stream=s) as bar:
        bar.update(4)
    assert s.getvalue().count("done") == 1
