"""The bundle format without the model code (stdlib only, no torch): file layout, checksums, config.

A bundle folder holds ``weights.safetensors`` (CLIP towers, FACET head, temperature),
``text.safetensors`` (cached class and prompt embeddings), ``config.json`` (model and render
settings, label order, prompts, provenance) and ``CHECKSUMS.json`` (SHA-256 of each file). The
bundle's digest is the SHA-256 of ``CHECKSUMS.json``; the registry records it and every consumer
compares it. ``facet_lib.bundle`` writes and loads the weights on top of this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from facet_lib.errors import FacetError
from facet_lib.files import atomic_write, sha256_file

FORMAT = "facet-bundle/1"
FILES = ("weights.safetensors", "text.safetensors", "config.json")
CHECKSUMS = "CHECKSUMS.json"
ALL_FILES = (*FILES, CHECKSUMS)


class BundleError(FacetError):
    """A bundle is missing a file, fails its checksum or has an unknown format."""


def file_mode() -> int:
    """0666 under the process umask (0644 for the usual 022): bundle files must be readable by the
    non-root server they are mounted into; safetensors' ``save_file`` writes 0600."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_checksums(out: str | Path) -> str:
    """Write CHECKSUMS.json for the bundle files in ``out`` (atomically, last); returns the digest."""
    out = Path(out)
    mode = file_mode()
    for name in FILES:
        os.chmod(out / name, mode)
    sums = json.dumps({name: sha256_file(out / name) for name in FILES}, indent=1, sort_keys=True)
    atomic_write(out / CHECKSUMS, sums.encode())
    os.chmod(out / CHECKSUMS, mode)
    return digest_of(sums)


def _read_checksums(path: Path) -> tuple[str, dict]:
    sums_path = path / CHECKSUMS
    if not sums_path.is_file():
        raise BundleError(f"{path}: no {CHECKSUMS}: not a FACET-VLM bundle (or an incomplete one)")
    try:
        text = sums_path.read_text()
        sums = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{sums_path}: not valid JSON ({e}); expected {{file name: sha256 hex}}") from None
    if not isinstance(sums, dict) or not all(isinstance(sums.get(n), str) for n in FILES):
        raise BundleError(f"{sums_path}: expected a SHA-256 string for each of {', '.join(FILES)}")
    return text, sums


def digest_of(checksums_text: str) -> str:
    """The bundle digest: SHA-256 of the CHECKSUMS.json text (the one rule; the registry records it)."""
    return hashlib.sha256(checksums_text.encode()).hexdigest()


def bundle_digest(path: str | Path) -> str:
    """The digest of the bundle in ``path`` (its CHECKSUMS.json only; ``verify_bundle`` checks the files)."""
    return digest_of(_read_checksums(Path(path))[0])


def verify_bundle(path: str | Path, expected_digest: str | None = None) -> str:
    """Check every file against CHECKSUMS.json (and the digest against ``expected_digest``, e.g. the
    one the registry recorded); returns the bundle digest."""
    path = Path(path)
    text, sums = _read_checksums(path)
    digest = digest_of(text)
    if expected_digest is not None and digest != expected_digest:
        raise BundleError(
            f"{path}: bundle digest {digest} differs from the expected {expected_digest}; refusing a swapped bundle"
        )
    for name in FILES:
        f = path / name
        if not f.is_file():
            raise BundleError(f"{path}: missing {name}")
        if sha256_file(f) != sums[name]:
            raise BundleError(f"{f}: checksum mismatch (expected {sums[name]}); refusing a tampered bundle")
    return digest


def read_config(path: str | Path) -> dict:
    """The bundle's config.json, checked for the known format."""
    f = Path(path) / "config.json"
    try:
        cfg = json.loads(f.read_text())
    except FileNotFoundError:
        raise BundleError(f"{f}: missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{f}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise BundleError(f"{path}: unknown bundle format {got!r} (expected {FORMAT})")
    return cfg
