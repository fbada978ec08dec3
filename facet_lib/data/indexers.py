"""Dataset indexers: walk a root in the dataset's native layout and return one row per sample.

Every indexer returns an :class:`IndexResult` — the index DataFrame (columns ``INDEX_COLUMNS``;
paths relative to ``root``) and a quarantine DataFrame (``path``, ``reason``) of files that were
skipped because their name or header is wrong. One bad file never stops the index.

Layouts (and their sources):

- **BU-3DFE** (Yin et al., FG 2006; the database's readme): ``<root>/<S>/<S>_<EX><II><ET>_F3D.wrl``,
  S = ``F0001``…``M0044``, EX ∈ AN DI FE HA SA SU NE, II = intensity ``01``–``04`` (``00`` for NE),
  ET = ethnicity code (WH BL AE AM LA IN). ``_RAW.wrl`` full scans and ``.bmp``/``.bnd``/``.pse``
  side files are not samples.
- **Bosphorus** (Savran et al., BIOID 2008; database documentation): ``<root>/<bsNNN>/<bsNNN>_<CAT>_<CODE>_<k>.bnt``;
  CAT ``E`` = emotion (ANGER DISGUST FEAR HAPPY SADNESS SURPRISE), ``N_N`` = neutral; LFAU/UFAU/CAU
  (action units), YR/PR/CR (rotations) and O (occlusions) are valid scans but not samples here.
- **BU-4DFE** (Yin et al., FG 2008): ``<root>/<S>/<Expression>/<NNN>.wrl``, S = ``F001``/``M001``…,
  Expression ∈ Angry Disgust Fear Happy Sad Surprise; frames in numeric order.
- **BP4D-Spontaneous** (Zhang et al., IVC 2014): ``<root>/<S>/T<k>/<NNNN>.obj``, tasks T1–T8
  (T1 happy … T8 disgust; see ``configs/labels.yaml``).
- **4DME** (Li et al., IEEE TAC 2022): the public description gives no file tree. Assumed:
  ``<root>/<Subject>/<Sample>/<frame>.obj`` and an annotation table ``<root>/*labels*.csv`` (or
  ``.xlsx``) with columns Subject, Sample (or Filename/Clip) and Emotion (positive, negative,
  surprise, repression, others). Any other layout: use a manifest CSV (``index_manifest``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from facet_lib.data import datasets
from facet_lib.data.collect import INDEX_COLUMNS, Collector, IndexResult, dataset_root
from facet_lib.data.datasets import CROSS_PROTOCOL
from facet_lib.data.labels import cross_dataset_tasks, dataset_codes, dataset_labels
from facet_lib.data.manifest import index_manifest
from facet_lib.errors import DatasetLayoutError

__all__ = ["INDEX_COLUMNS", "IndexResult", "index_dataset", "index_manifest", "load_index", "save_index"]


BU3DFE_NAME = re.compile(r"^(?P<s>[FM]\d{4})_(?P<ex>AN|DI|FE|HA|SA|SU|NE)(?P<i>\d{2})(?P<eth>[A-Z]{2})_F3D\.wrl$")


def index_bu3dfe(root: str | Path) -> IndexResult:
    c = Collector("bu3dfe", dataset_root(root))
    codes = dataset_codes("bu3dfe")
    for f in sorted(c.root.rglob("*.wrl")):
        if f.name.upper().endswith("_RAW.WRL"):
            continue
        m = BU3DFE_NAME.match(f.name)
        if not m:
            c.quarantine(f, "name does not match <subject>_<EXPR><intensity><ethnicity>_F3D.wrl")
            continue
        inten = int(m["i"])
        if (m["ex"] == "NE") != (inten == 0) or inten > 4:
            c.quarantine(f, f"intensity {m['i']} invalid for {m['ex']} (01-04, or 00 for NE)")
            continue
        if f.parent.name != m["s"]:
            c.quarantine(f, f"file of subject {m['s']} inside folder {f.parent.name}")
            continue
        if not c.scan_ok(f):
            continue
        c.add(f.stem, m["s"], codes[m["ex"]], f, intensity=inten)
    return c.result()


BOSPHORUS_NAME = re.compile(r"^(?P<s>bs\d{3})_(?P<cat>[A-Z]+)_(?P<code>[A-Z0-9]+)_(?P<k>\d+)\.bnt$")


def index_bosphorus(root: str | Path) -> IndexResult:
    c = Collector("bosphorus", dataset_root(root))
    codes = dataset_codes("bosphorus")
    for f in sorted(c.root.rglob("*.bnt")):
        m = BOSPHORUS_NAME.match(f.name)
        if not m:
            c.quarantine(f, "name does not match bs<nnn>_<CATEGORY>_<CODE>_<k>.bnt")
            continue
        if m["cat"] == "E" and m["code"] not in codes:
            c.quarantine(f, f"unknown emotion code '{m['code']}' (expected {', '.join(codes)})")
            continue
        if not (m["cat"] == "E" or (m["cat"], m["code"]) == ("N", "N")):
            continue  # action-unit, rotation and occlusion scans are not expression samples
        if not c.scan_ok(f):
            continue
        label = codes[m["code"]] if m["cat"] == "E" else "neutral"
        c.add(f.stem, m["s"], label, f)
    return c.result()


def _index_sequences(
    dataset: str, root: str | Path, subj_re: str, codes: dict[str, str], suffix: str, task_col: bool
) -> IndexResult:
    c = Collector(dataset, dataset_root(root))
    for subj in sorted(p for p in c.root.iterdir() if p.is_dir()):
        if not re.fullmatch(subj_re, subj.name):
            c.quarantine(subj, f"subject folder name does not match {subj_re}")
            continue
        for seq in sorted(p for p in subj.iterdir() if p.is_dir()):
            if seq.name not in codes:
                c.quarantine(seq, f"unknown sequence folder '{seq.name}' (expected one of {', '.join(codes)})")
                continue
            frames = c.frames(seq, suffix)
            if frames:
                c.add(
                    f"{subj.name}_{seq.name}",
                    subj.name,
                    codes[seq.name],
                    seq,
                    frames,
                    task=seq.name if task_col else None,
                )
    return c.result()


def index_bu4dfe(root: str | Path) -> IndexResult:
    return _index_sequences("bu4dfe", root, r"[FM]\d{3}", dataset_codes("bu4dfe"), ".wrl", False)


def index_bp4d(root: str | Path) -> IndexResult:
    return _index_sequences("bp4d", root, r"[FM]\d{3}", dataset_codes("bp4d"), ".obj", True)


def _pick(cols: dict[str, str], names: tuple[str, ...], table: Path) -> str:
    for n in names:
        if n in cols:
            return cols[n]
    raise DatasetLayoutError(f"{table}: no column among {names}; columns are {list(cols.values())}")


def index_4dme(root: str | Path) -> IndexResult:
    c = Collector("4dme", dataset_root(root))
    tables = sorted(c.root.glob("*label*.csv")) + sorted(c.root.glob("*label*.xlsx"))
    if not tables:
        raise DatasetLayoutError(f"{c.root}: no 4DME annotation table (*labels*.csv or .xlsx) at the root")
    table = tables[0]
    try:
        ann = pd.read_csv(table, dtype=str) if table.suffix == ".csv" else pd.read_excel(table, dtype=str)
    except Exception as e:  # pandas raises many types for a damaged table
        raise DatasetLayoutError(f"{table}: not a readable annotation table ({type(e).__name__}: {e})") from None
    cols = {str(k).strip().lower(): k for k in ann.columns}
    sc = _pick(cols, ("subject", "sub"), table)
    qc = _pick(cols, ("sample", "filename", "clip", "sequence"), table)
    ec = _pick(cols, ("emotion", "label", "class", "estimated emotion"), table)
    classes = dataset_codes("4dme")
    for i, row in ann.iterrows():
        subj, sample, emo = str(row[sc]).strip(), str(row[qc]).strip(), str(row[ec]).strip().lower()
        seq = c.root / subj / sample
        if not subj or not sample or subj == "nan" or sample == "nan":
            c.quarantine(table, f"{table.name} row {i + 2}: empty subject or sample")
            continue
        if not seq.resolve().is_relative_to(c.root):
            c.quarantine(table, f"{table.name} row {i + 2}: folder '{subj}/{sample}' is outside the dataset root")
            continue
        if emo not in classes:
            c.quarantine(seq, f"{table.name} row {i + 2}: emotion '{row[ec]}' not one of {', '.join(classes)}")
            continue
        if not seq.is_dir():
            c.quarantine(seq, f"{table.name} row {i + 2}: sequence folder missing")
            continue
        frames = c.frames(seq, ".obj")
        if frames:
            sid = sample if sample.startswith(subj) else f"{subj}_{sample}"
            c.add(sid, subj, classes[emo], seq, frames, origin=f"{table.name} row {i + 2}")
    return c.result()


def index_dataset(dataset: str, root: str | Path) -> IndexResult:
    """Index ``root`` in ``dataset``'s native layout (the reader of ``data.datasets``); ``dataset='manifest'``
    reads a manifest CSV."""
    if dataset == datasets.MANIFEST:
        return index_manifest(root)
    return datasets.reader(dataset)(root)


# Protocols: which rows and labels an experiment uses.
PROTOCOLS = {
    "bu3dfe-I": "BU-3DFE Subset I: six emotions, the two highest intensities (3, 4)",
    "bu3dfe-II": "BU-3DFE Subset II: six emotions, all four intensities, no neutral",
    "bosphorus": "Bosphorus: six emotions, subjects who have all six (65 in the real database)",
    "bu4dfe": "BU-4DFE: six emotion sequences",
    "bp4d": "BP4D-Spontaneous: eight task sequences",
    CROSS_PROTOCOL: "BP4D-Spontaneous tasks T1/T8 (happy/disgust), the cross-dataset target",
    "4dme": "4DME: five micro-expression classes",
}


def protocol_labels(protocol: str) -> list[str]:
    """Label order of an evaluation protocol (see ``PROTOCOLS``)."""
    known = {*PROTOCOLS, *datasets.names()}  # a table entry without a protocol of its own: all its labels
    if protocol not in known:
        raise DatasetLayoutError(f"unknown protocol '{protocol}': expected one of {sorted(known)}")
    if protocol == CROSS_PROTOCOL:
        return list(cross_dataset_tasks().values())
    return dataset_labels(protocol.split("-")[0])


def select_protocol(index: pd.DataFrame, protocol: str) -> tuple[pd.DataFrame, list[str]]:
    """Rows and label order of an evaluation protocol (see ``PROTOCOLS``)."""
    labels = protocol_labels(protocol)
    df = index[index["label"].isin(labels)]
    if protocol == "bu3dfe-I":
        df = df[df["intensity"].isin([3, 4])]
    elif protocol == "bosphorus":
        per = df.groupby("subject")["label"].nunique()
        df = df[df["subject"].isin(per[per == len(labels)].index)]
    elif protocol == CROSS_PROTOCOL:
        df = df[df["task"].isin(set(cross_dataset_tasks()))]
    return df.reset_index(drop=True), labels


def save_index(df: pd.DataFrame, path: str | Path) -> Path:
    out = df.copy()
    out["frames"] = out["frames"].map(json.dumps)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


def load_index(path: str | Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"subject": str, "sample_id": str, "task": str, "label": str})
    missing = set(INDEX_COLUMNS) - set(df.columns)
    if missing:
        raise DatasetLayoutError(f"{path}: not a facet_lib index (missing columns {sorted(missing)})")
    df["frames"] = df["frames"].map(json.loads)
    df["intensity"] = df["intensity"].astype("Int64")
    return df


def sample_paths(row: pd.Series, root: str | Path | None = None) -> list[Path]:
    """Absolute scan path(s) of an index row: its frames for 4D, else the scan itself."""
    base = Path(root) if root else Path(row["root"])
    return [base / f for f in row["frames"]] if row["frames"] else [base / row["path"]]
