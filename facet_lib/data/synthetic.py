"""Synthetic 3D/4D expression datasets written in the real datasets' native layouts and formats.

Each generator writes a tree that the dataset's indexer reads exactly like the real one:

- BU-3DFE   ``<root>/<S>/<S>_<EX><II><ETH>_F3D.wrl`` (+ ``.bmp`` texture, ``.bnd`` landmarks)
- Bosphorus ``<root>/<bsNNN>/<bsNNN>_E_<EMOTION>_0.bnt`` (+ ``.png`` 2D image, ``.lm3``)
- BU-4DFE   ``<root>/<S>/<Expression>/<NNN>.wrl``
- BP4D      ``<root>/<S>/T<k>/<NNNN>.obj``
- 4DME      ``<root>/<S>/<S>_<NN>/<NNNN>.obj`` + ``<root>/4DME_labels.csv`` (see ``indexers``)

All randomness flows from one seed: each file's generator is seeded from (seed, dataset, subject,
sample), so output is identical for a seed whatever the number of workers.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facet_lib.data import datasets
from facet_lib.data.face_model import (
    LANDMARKS,
    Identity,
    expression_aus,
    expression_profile,
    face_grid,
    random_hole,
)
from facet_lib.data.labels import dataset_codes
from facet_lib.io.bnt import grid_to_mesh, write_bnt
from facet_lib.io.landmarks import write_bnd, write_lm3
from facet_lib.io.wrl import write_wrl
from facet_lib.mesh import Mesh
from facet_lib.progress import progress_bar

ETHNICITIES = ("WH", "BL", "AE", "AM", "LA", "IN")


@dataclass(frozen=True)
class SynthConfig:
    """Size of a synthetic dataset. ``step`` is the grid spacing in mm (1.0 ≈ 25k vertices)."""

    subjects: int = 10
    frames: int = 24
    step: float = 1.0
    step_4d: float = 2.0
    seed: int = 0
    workers: int = 0  # 0 = all cores


def _rng(seed: int, *keys: object) -> np.random.Generator:
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _identity(seed: int, dataset: str, subject: str) -> Identity:
    return Identity.sample(_rng(seed, dataset, subject, "identity"))


def _mesh_from_grid(pts: np.ndarray) -> Mesh:
    verts, faces, kept = grid_to_mesh(pts)
    rows, cols = pts.shape[:2]
    r, c = np.divmod(kept, cols)
    uv = np.stack([c / (cols - 1), 1 - r / (rows - 1)], -1)
    return Mesh(vertices=verts.astype(np.float32), faces=faces, uv=uv.astype(np.float32))


def _texture(ident: Identity, size: int = 128) -> Image.Image:
    """A plain skin texture with darker brows and lips, laid out like the scan grid's UVs."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    x, y = xx * 168 - 84, 96 - yy * 212
    img = np.ones((size, size, 3)) * np.array(ident.skin, float)
    shade = np.zeros((size, size))
    for s in (1, -1):
        shade += 0.45 * np.exp(-(((x - s * ident.eye_sep) / 12) ** 2 + ((y - 47) / 3) ** 2) / 2)
    lips = np.exp(-(((x) / 18) ** 2 + ((y + 48) / 5) ** 2) / 2)
    img *= (1 - shade)[..., None]
    img = img * (1 - 0.3 * lips[..., None]) + np.array([150, 40, 50]) * 0.3 * lips[..., None]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _run(tasks: list[tuple], fn: Callable, workers: int, desc: str) -> None:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) < 4:
        for t in progress_bar(tasks, desc=desc, unit="file"):
            fn(*t)
        return
    with ProcessPoolExecutor(workers) as ex:
        futs = [ex.submit(fn, *t) for t in tasks]
        for f in progress_bar(futs, desc=desc, unit="file"):
            f.result()


# --------------------------------------------------------------------------------------------- #
# BU-3DFE
def _bu3dfe_one(root: str, subj: str, eth: str, code: str, inten: int, cfg: SynthConfig) -> None:
    label = dataset_codes("bu3dfe")[code]
    ident = _identity(cfg.seed, "bu3dfe", subj)
    rng = _rng(cfg.seed, "bu3dfe", subj, code, inten)
    pts, lm = face_grid(ident, expression_aus(label, inten / 4), rng, step=cfg.step)
    mesh = _mesh_from_grid(pts)
    stem = f"{subj}_{code}{inten:02d}{eth}_F3D"
    d = Path(root) / subj
    write_wrl(d / f"{stem}.wrl", mesh, texture_url=f"{stem}.bmp")
    _texture(ident).save(d / f"{stem}.bmp")
    vid = np.argmin(((mesh.vertices[None] - lm[:, None].astype(np.float32)) ** 2).sum(-1), axis=1)
    ok = np.isfinite(lm).all(axis=1)  # a landmark in a hole of a coarse grid is left out, not written as nan
    write_bnd(d / f"{stem}.bnd", vid[ok], lm[ok])


def generate_bu3dfe(root: str | Path, cfg: SynthConfig = SynthConfig()) -> Path:
    """BU-3DFE tree: per subject one neutral scan and six expressions × four intensities."""
    root = Path(root)
    tasks = []
    for k in range(cfg.subjects):
        subj = f"{'FM'[k % 2]}{k // 2 + 1:04d}"
        eth = ETHNICITIES[int(_rng(cfg.seed, "eth", subj).integers(len(ETHNICITIES)))]
        (root / subj).mkdir(parents=True, exist_ok=True)
        tasks.append((str(root), subj, eth, "NE", 0, cfg))
        for code in ("AN", "DI", "FE", "HA", "SA", "SU"):
            tasks += [(str(root), subj, eth, code, i, cfg) for i in (1, 2, 3, 4)]
    _run(tasks, _bu3dfe_one, cfg.workers, "BU-3DFE scans")
    return root


# --------------------------------------------------------------------------------------------- #
# Bosphorus
BOSPHORUS_EMOTIONS = ("ANGER", "DISGUST", "FEAR", "HAPPY", "SADNESS", "SURPRISE")


def _bosphorus_one(root: str, subj: str, stem: str, label: str, cfg: SynthConfig) -> None:
    ident = _identity(cfg.seed, "bosphorus", subj)
    rng = _rng(cfg.seed, "bosphorus", stem)
    pts, lm = face_grid(ident, expression_aus(label, float(rng.uniform(0.7, 1.0))), rng, step=cfg.step)
    d = Path(root) / subj
    rows, cols = pts.shape[:2]
    v, u = np.mgrid[0:rows, 0:cols]
    uv = np.stack([u / (cols - 1), 1 - v / (rows - 1)], -1)
    write_bnt(d / f"{stem}.bnt", pts, uv, f"{stem}.png")
    _texture(ident).convert("L").save(d / f"{stem}.png")
    write_lm3(d / f"{stem}.lm3", lm, [n for n, _, _ in LANDMARKS])


def generate_bosphorus(root: str | Path, cfg: SynthConfig = SynthConfig()) -> Path:
    """Bosphorus tree. Every fifth subject lacks one emotion, to exercise the all-six rule."""
    root = Path(root)
    codes = dataset_codes("bosphorus")
    tasks = []
    for k in range(cfg.subjects):
        subj = f"bs{k:03d}"
        (root / subj).mkdir(parents=True, exist_ok=True)
        tasks.append((str(root), subj, f"{subj}_N_N_0", "neutral", cfg))
        emotions = BOSPHORUS_EMOTIONS[:-1] if k % 5 == 4 else BOSPHORUS_EMOTIONS
        tasks += [(str(root), subj, f"{subj}_E_{e}_0", codes[e], cfg) for e in emotions]
    _run(tasks, _bosphorus_one, cfg.workers, "Bosphorus scans")
    return root


# --------------------------------------------------------------------------------------------- #
# 4D sequences (BU-4DFE, BP4D-Spontaneous, 4DME)
def _sequence_one(
    root: str, dataset: str, subj: str, rel: str, label: str, ext: str, digits: int, micro: bool, cfg: SynthConfig
) -> None:
    ident = _identity(cfg.seed, dataset, subj)
    rng = _rng(cfg.seed, dataset, subj, rel)
    amp = float(rng.uniform(0.15, 0.3)) if micro else float(rng.uniform(0.8, 1.0))
    out = Path(root) / rel
    out.mkdir(parents=True, exist_ok=True)
    # one head pose, drift and set of drop-outs per sequence: the head moves smoothly
    pose0, drift = rng.uniform(-3, 3, 3), rng.uniform(-1.5, 1.5, 3)
    shift0 = rng.uniform(-3, 3, 3)
    holes = [random_hole(rng) for _ in range(int(rng.integers(0, 2)))]
    for t, w in enumerate(expression_profile(cfg.frames, micro)):
        frng = _rng(cfg.seed, dataset, subj, rel, t)
        s = t / max(cfg.frames - 1, 1)
        pts, _ = face_grid(
            ident,
            expression_aus(label, amp * w),
            frng,
            step=cfg.step_4d,
            holes=holes,
            pose_deg=tuple(pose0 + s * drift),
            shift_mm=tuple(shift0 + s * drift / 2),
        )
        mesh = _mesh_from_grid(pts)
        path = out / f"{t:0{digits}d}.{ext}"
        if ext == "wrl":
            write_wrl(path, mesh)
        else:
            _write_obj(path, mesh)


def _write_obj(path: Path, mesh: Mesh) -> None:
    v = "\n".join("v %.4f %.4f %.4f" % tuple(r) for r in mesh.vertices.tolist())
    f = "\n".join("f %d %d %d" % tuple(r) for r in (mesh.faces + 1).tolist())
    path.write_text(f"# facet_lib synthetic frame\n{v}\n{f}\n")


def _sequences(
    root: Path,
    dataset: str,
    items: Iterable[tuple[str, str, str]],
    ext: str,
    digits: int,
    micro: bool,
    cfg: SynthConfig,
) -> None:
    tasks = [(str(root), dataset, s, rel, lab, ext, digits, micro, cfg) for s, rel, lab in items]
    _run(tasks, _sequence_one, cfg.workers, f"{dataset} sequences")


def _subjects4d(n: int) -> list[str]:
    return [f"{'FM'[k % 2]}{k // 2 + 1:03d}" for k in range(n)]


def generate_bu4dfe(root: str | Path, cfg: SynthConfig = SynthConfig()) -> Path:
    root = Path(root)
    codes = dataset_codes("bu4dfe")
    items = [(s, f"{s}/{e}", lab) for s in _subjects4d(cfg.subjects) for e, lab in codes.items()]
    _sequences(root, "bu4dfe", items, "wrl", 3, False, cfg)
    return root


def generate_bp4d(root: str | Path, cfg: SynthConfig = SynthConfig()) -> Path:
    root = Path(root)
    codes = dataset_codes("bp4d")
    items = [(s, f"{s}/{t}", lab) for s in _subjects4d(cfg.subjects) for t, lab in codes.items()]
    _sequences(root, "bp4d", items, "obj", 4, False, cfg)
    return root


def generate_4dme(root: str | Path, cfg: SynthConfig = SynthConfig()) -> Path:
    """4DME-style tree: two clips per class and subject, labelled in ``4DME_labels.csv``."""
    root = Path(root)
    classes = list(dataset_codes("4dme"))
    items, rows = [], []
    for s in (f"S{k + 1:02d}" for k in range(cfg.subjects)):
        for n, cls in enumerate(c for c in classes for _ in range(2)):
            clip = f"{s}_{n + 1:02d}"
            items.append((s, f"{s}/{clip}", cls))
            rows.append({"Subject": s, "Sample": clip, "Emotion": cls})
    _sequences(root, "4dme", items, "obj", 4, True, cfg)
    with open(root / "4DME_labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["Subject", "Sample", "Emotion"])
        w.writeheader()
        w.writerows(rows)
    return root


def generate(dataset: str, root: str | Path, cfg: SynthConfig = SynthConfig()) -> Path:
    """Write a synthetic dataset in ``dataset``'s native layout under ``root`` (the generator of ``data.datasets``)."""
    return datasets.generator(dataset)(root, cfg)
