"""File helpers shared by the dataset, bundle, registry, storage and training code: hashing and atomic writes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: str | Path, data: bytes | str | Callable[[Path], object]) -> Path:
    """Write to a temporary name beside ``path`` and rename: readers see the old file or the new one.

    ``data``: bytes, text, or a writer called with the temporary path (``torch.save(obj, p)``,
    ``save_file(tensors, p)``, a download). A failed write leaves no temporary file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if callable(data):
            data(tmp)
        elif isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
