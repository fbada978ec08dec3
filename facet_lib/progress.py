"""One progress helper for every loop: a tqdm bar on a terminal, a few plain lines elsewhere.

In a pod log, CI log or file, a tqdm bar writes thousands of carriage-return updates; here it writes a
line at each tenth of the work (and the last), or one line per item with ``every_item`` (training
epochs: one line per epoch with its loss and accuracy)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from tqdm import tqdm


def is_terminal(stream: IO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class LineProgress:
    """The tqdm subset the library uses (iterate, ``update``, ``set_postfix``, ``close``), as log lines."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        desc: str = "",
        total: int | None = None,
        unit: str = "it",
        every_item: bool = False,
        stream: IO | None = None,
    ):
        self.iterable, self.desc, self.unit, self.every_item = iterable, desc, unit, every_item
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.postfix = total, 0, ""
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = self.t_last = time.perf_counter()
        self._next_tenth = 1

    def __iter__(self) -> Iterator:
        for x in self.iterable:
            yield x
            self.update(1)
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = " ".join(f"{k} {v}" for k, v in kw.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.every_item:
            self._line(f"{self.unit} {self.n}/{self.total or '?'}", time.perf_counter() - self.t_last)
            return
        if self.total:
            while self._next_tenth <= 10 and self.n * 10 >= self._next_tenth * self.total:
                self._next_tenth += 1
                if self.n < self.total:
                    self._line(f"{self.n}/{self.total} {self.unit} ({100 * self.n // self.total}%)")

    def close(self) -> None:
        if self.n and not self.every_item and getattr(self, "_done", None) is None:
            self._done = True
            self._line(f"{self.n}/{self.total or self.n} {self.unit} done")

    def _line(self, what: str, seconds: float | None = None) -> None:
        now = time.perf_counter()
        secs = seconds if seconds is not None else now - self.t0
        self.t_last = now
        parts = [f"{self.desc}: {what}" if self.desc else what, self.postfix, f"{secs:.1f} s"]
        print(" ".join(p for p in parts if p), file=self.stream, flush=True)


def progress_bar(
    iterable: Iterable | None = None,
    desc: str = "",
    total: int | None = None,
    unit: str = "it",
    disable: bool = False,
    every_item: bool = False,
    stream: IO | None = None,
):
    """``tqdm(...)`` on a terminal; otherwise a ``LineProgress`` (a few lines, or one per item)."""
    if disable or is_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, file=stream)
    return LineProgress(iterable, desc, total, unit, every_item, stream)
