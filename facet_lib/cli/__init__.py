"""``facet-vlm`` command line. Each subcommand parses its flags and calls one library or step function.

By job: ``cli.data`` (generate, index, folds, render), ``cli.train`` (cv, cross, tune, fig4, settings),
``cli.serve`` (export, serve, registry), ``cli.common`` (what they share).

Options that are settings come from the settings dataclasses (``facet_lib.config``): render options are
built from ``RenderConfig``'s fields, serve options from ``ServeConfig``'s, and model/train settings are
a preset plus ``--set key=value`` (``facet-vlm settings`` lists every key with its default and help).
The Kubeflow commands (``pipeline``, ``demo``) are mounted by ``pipelines`` (facet_lib never imports it):
``main(argv, extensions=[...])``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from facet_lib.cli import data, serve, train
from facet_lib.cli.common import formatter
from facet_lib.errors import FacetError

Extension = Callable[[argparse._SubParsersAction], None]  # adds subparsers whose func(args) -> int | None


def build_parser(extensions: list[Extension] | tuple = ()) -> argparse.ArgumentParser:
    from facet_lib import __version__

    p = argparse.ArgumentParser(
        prog="facet-vlm", description="FACET-VLM 3D/4D facial expression recognition", formatter_class=formatter
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    data.add_commands(sub)  # generate, index, folds, render
    train.add_commands(sub)  # cv, cross, tune, fig4
    serve.add_export_command(sub)
    train.add_settings_command(sub)
    serve.add_commands(sub)  # serve, registry
    for ext in extensions:
        ext(sub)
    return p


def _one_line(e: BaseException) -> str | None:
    """The message of an error a user can act on, or None for a bug (which keeps its traceback)."""
    if isinstance(e, FacetError):
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, OSError):  # a path that is missing, not a folder, not writable, disk full …
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}" + (f" -> {e.filename2}" if e.filename2 else "")
    if isinstance(e, SystemExit) and isinstance(e.code, str):  # extensions and scripts exiting with a message
        return e.code.strip().splitlines()[0]
    return None


def main(argv: list[str] | None = None, extensions: list[Extension] | tuple = ()) -> int:
    """Run one command. Errors a user can act on (``FacetError``, ``OSError``, ``SystemExit('message')``)
    print one ``error: …`` line and exit 2, like argparse's usage errors; ``FACET_TRACEBACK=1`` re-raises."""
    args = build_parser(extensions).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args) or 0)
    except (FacetError, OSError, SystemExit) as e:
        msg = _one_line(e)
        if msg is None or os.environ.get("FACET_TRACEBACK") == "1":
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
