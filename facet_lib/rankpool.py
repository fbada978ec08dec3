"""Temporal summaries of a view's frames: approximate rank pooling (dynamic images), mean, apex.

Approximate rank pooling (Bilen et al., "Dynamic Image Networks for Action Recognition", CVPR 2016,
eq. 4): d = Σ_t α_t I_t with α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1}), t = 1..T, H_k the k-th
harmonic number (H_0 = 0). The weights sum to zero, so a static sequence gives a flat image.
(Using H_t in place of H_{t−1}, as one widely copied Python port does, breaks both properties.)
"""

from __future__ import annotations

import numba
import numpy as np

from facet_lib.config.render import TEMPORAL
from facet_lib.errors import ConfigError


def rank_pool_weights(T: int) -> np.ndarray:
    """α_1..α_T of approximate rank pooling."""
    t = np.arange(1, T + 1, dtype=np.float64)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])  # H_0..H_T
    return 2 * (T - t + 1) - (T + 1) * (harmonic[T] - harmonic[t.astype(int) - 1])


def to_uint8(img: np.ndarray, flat_below: float = 1e-9) -> np.ndarray:
    """Min–max scale to uint8 over the whole image; a flat image (range < ``flat_below``) is mid-grey."""
    lo, hi = float(img.min()), float(img.max())
    if hi - lo < flat_below:
        return np.full(img.shape, 128, np.uint8)
    return ((img - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)


@numba.njit(cache=True, nogil=True)
def _weighted_sum(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_t w_t · frames[t] over (T, N) uint8 frames in one streaming pass (no float copy of the clip)."""
    acc = np.zeros(frames.shape[1], np.float32)
    for t in range(frames.shape[0]):
        w = np.float32(weights[t])
        for i in range(frames.shape[1]):
            acc[i] += w * frames[t, i]
    return acc


def dynamic_image(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, C) uint8 frames → (H, W, C) uint8 dynamic image."""
    a = rank_pool_weights(frames.shape[0])
    flat = np.ascontiguousarray(frames).reshape(frames.shape[0], -1)
    # float32 rounding leaves ~1e-7 relative residue where a static sequence should give exactly 0
    return to_uint8(_weighted_sum(flat, a).reshape(frames.shape[1:]), flat_below=1e-4 * 255 * np.abs(a).sum())


def apex_index(frames: np.ndarray) -> int:
    """The frame farthest (mean absolute difference) from the first, i.e. the expression apex."""
    f = frames.astype(np.float32)
    return int(np.argmax(np.abs(f - f[:1]).reshape(len(f), -1).mean(axis=1)))


def summarize(frames: np.ndarray, method: str = "rankpool") -> np.ndarray:
    """Temporal summary of one view's (T, H, W, C) uint8 frames."""
    if method == "rankpool":
        return dynamic_image(frames)
    if method == "mean":
        return (frames.astype(np.float32).mean(axis=0) + 0.5).astype(np.uint8)
    if method == "apex":
        return frames[apex_index(frames)].copy()
    raise ConfigError(f"render.temporal: expected one of {TEMPORAL}, got {method!r}")


def sample_uniform(n_available: int, k: int) -> np.ndarray:
    """Indices of ``k`` frames spread uniformly over ``n_available`` (all of them when fewer)."""
    if n_available <= k:
        return np.arange(n_available)
    return np.round(np.linspace(0, n_available - 1, k)).astype(int)
