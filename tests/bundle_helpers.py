"""Small format-valid bundles for registry/deploy tests (the registry never loads weights)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from facet_lib.bundle_format import FILES, FORMAT, write_checksums


def fake_bundle(d: Path, tag: str) -> str:
    """A bundle folder whose every file is unique to ``tag``; returns its digest."""
    d.mkdir(parents=True)
    for f in FILES[:2]:
        (d / f).write_bytes(f"{tag}:{f}:".encode() + os.urandom(2048))
    cfg = {"format": FORMAT, "model": {"clip_model": "facet-tiny"}, "labels": ["a", "b"], "render": {}, "tag": tag}
    (d / "config.json").write_text(json.dumps(cfg))
    return write_checksums(d)
