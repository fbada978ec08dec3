"""One exception type per boundary; each names the file/field and what was expected."""

from __future__ import annotations

from pathlib import Path


class FacetError(Exception):
    """Base class of every error this library raises on purpose."""


class ScanFormatError(FacetError):
    """A scan or landmark file could not be read: names the file, the position and the expectation."""

    def __init__(self, path: str | Path, where: str, expected: str, got: str | None = None):
        self.path, self.where, self.expected, self.got = str(path), where, expected, got
        msg = f"{self.path}: {where}: expected {expected}"
        if got is not None:
            msg += f", got {got}"
        super().__init__(msg)


class DatasetLayoutError(FacetError):
    """A dataset root, file name or manifest row does not follow the expected layout."""


class FoldLeakError(FacetError):
    """A split puts one subject in more than one fold (or a test subject in training)."""


class ConfigError(FacetError):
    """A configuration value is missing or out of range."""
