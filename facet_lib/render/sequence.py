"""4D sequences: read the sampled frames once (tolerating a few bad ones) and summarise each view.

A frame that cannot be read is replaced by the nearest readable frame between its sampled
neighbours (so the summary keeps its length and time order), or dropped when there is none; the
sequence is refused only when more than ``MAX_BAD_FRAME_FRACTION`` of its sampled frames are bad
or fewer than two frames remain. What was replaced or dropped is returned as notes, which
``render_dataset`` records in the manifest (``repaired``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sized
from pathlib import Path

import numpy as np

from facet_lib.config import RenderConfig
from facet_lib.errors import FacetError, ScanFormatError
from facet_lib.io import read_scan
from facet_lib.mesh import Mesh
from facet_lib.rankpool import sample_uniform, summarize
from facet_lib.render import render_views
from facet_lib.render.geometry import face_center

MAX_BAD_FRAME_FRACTION = 0.25  # of a sequence's sampled frames that may be replaced or dropped


def read_sampled_frames(
    paths: list[Path],
    k: int,
    max_bad: float = MAX_BAD_FRAME_FRACTION,
    read: Callable[[Path], Mesh] | None = None,
) -> tuple[list[Mesh], list[dict]]:
    """Read ``k`` uniformly sampled frames of a sequence once each → (meshes in time order, notes).

    ``read`` defaults to ``read_scan``. notes: one dict per bad sampled frame: ``frame`` (index in the
    sequence), ``file``, ``reason``, ``replaced_by`` (index of the frame used instead, or None when dropped)."""
    if not paths:
        raise ScanFormatError("<sequence>", "frames", "at least one frame file", "none")
    read = read or read_scan
    idx = [int(i) for i in sample_uniform(len(paths), k)]
    allowed = max(1, int(max_bad * len(idx))) if max_bad > 0 else 0  # "a few": at least one
    used, meshes, notes = set(idx), [], []
    for j, i in enumerate(idx):
        try:
            meshes.append(read(paths[i]))
            continue
        except FacetError as e:
            note = {"frame": i, "file": Path(paths[i]).name, "reason": str(e), "replaced_by": None}
        notes.append(note)
        if len(notes) > allowed:
            raise ScanFormatError(
                Path(paths[i]).parent,
                "frames",
                f"at most {allowed} unreadable of {len(idx)} sampled frames",
                f"{len(notes)} (frame {i}: {note['reason']})",
            )
        lo = idx[j - 1] + 1 if j > 0 else 0
        hi = idx[j + 1] - 1 if j + 1 < len(idx) else len(paths) - 1
        for c in sorted(range(lo, hi + 1), key=lambda c: (abs(c - i), c)):
            if c in used:
                continue
            try:
                meshes.append(read(paths[c]))
            except FacetError:
                continue
            used.add(c)
            note["replaced_by"] = c
            break
    if len(meshes) < min(2, len(idx)):
        raise ScanFormatError(Path(paths[0]).parent, "frames", "at least 2 readable frames", str(len(meshes)))
    return meshes, notes


def render_sequence(paths: Iterable[Path | Mesh], cfg: RenderConfig) -> np.ndarray:
    """(views, H, W, 3): each view's frames summarised (rank pooling by default).

    All frames share the first frame's face centre, so head position is fixed by the sequence start
    and the summary shows the face's motion, not a re-centring jitter. Frames may be paths (read one
    at a time, each once), meshes already read, or an iterator of either (the server's lazy parse)."""
    n = len(paths) if isinstance(paths, Sized) else None
    meshes = (p if isinstance(p, Mesh) else read_scan(p) for p in paths)
    first = next(meshes, None)
    if first is None:
        raise ScanFormatError("<sequence>", "frames", "at least one frame", "none")
    center = face_center(first, cfg)
    frames: list[np.ndarray] | np.ndarray = []
    for t, m in enumerate(itertools.chain([first], meshes)):
        views = render_views(m, cfg, center)
        if n is None:
            frames.append(views)
            continue
        if t == 0:  # (T, V, H, W, 3) filled in place: no per-frame list and no stacking copy
            frames = np.empty((n,) + views.shape, np.uint8)
        frames[t] = views
    frames = np.stack(frames) if n is None else frames
    return np.stack([summarize(frames[:, v], cfg.temporal) for v in range(frames.shape[1])])
