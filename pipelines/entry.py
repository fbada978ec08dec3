"""The ``facet-vlm`` console script: facet_lib's commands plus the Kubeflow ones (``pipeline``, ``demo``),
mounted here so that facet_lib never imports pipelines or components."""

from __future__ import annotations

import sys

from facet_lib import cli
from pipelines import cli as pipeline_cli
from pipelines import demo


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, extensions=[pipeline_cli.add_commands, demo.add_command])


if __name__ == "__main__":
    sys.exit(main())
