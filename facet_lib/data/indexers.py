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

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from facet_lib.data.labels import dataset_codes, dataset_labels
from facet_lib.errors import DatasetLayoutError

INDEX_COLUMNS = [
    "dataset",
    "sample_id",
    "subject",
    "label",
    "intensity",
    "task",
    "path",
    "frames",
    "n_frames",
    "root",
]
_FRAME_NUM = re.compile(r"^(\d+)$")


@dataclass
class IndexResult:
    index: pd.DataFrame
    quarantine: pd.DataFrame

    def summary(self) -> str:
        df = self.index
        lines = [
            f"{len(df)} samples, {df['subject'].nunique() if len(df) else 0} subjects, "
            f"{len(self.quarantine)} quarantined"
        ]
        if len(df):
            counts = df["label"].value_counts().sort_index()
            lines.append("per label: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        for _, q in self.quarantine.head(10).iterrows():
            lines.append(f"  quarantined {q['path']}: {q['reason']}")
        if len(self.quarantine) > 10:
            lines.append(f"  … {len(self.quarantine) - 10} more in the quarantine table")
        return "\n".join(lines)


class _Collector:
    def __init__(self, dataset: str, root: Path):
        self.dataset, self.root = dataset, root
        self.rows: list[dict] = []
        self.bad: list[dict] = []

    def rel(self, p: Path) -> str:
        """Path relative to the root; absolute when outside it (manifests may point anywhere)."""
        return p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else p.resolve().as_posix()

    def quarantine(self, p: Path, reason: str) -> None:
        self.bad.append({"path": self.rel(p), "reason": reason})

    def add(
        self,
        sample_id: str,
        subject: str,
        label: str,
        path: Path,
        frames: list[Path] | None = None,
        intensity: int | None = None,
        task: str | None = None,
    ) -> None:
        self.rows.append(
            {
                "dataset": self.dataset,
                "sample_id": sample_id,
                "subject": subject,
                "label": label,
                "intensity": intensity,
                "task": task,
                "path": self.rel(path),
                "frames": [self.rel(f) for f in frames] if frames else [],
                "n_frames": len(frames) if frames else 1,
                "root": str(self.root),
            }
        )

    def result(self) -> IndexResult:
        df = pd.DataFrame(self.rows, columns=INDEX_COLUMNS)
        df["intensity"] = df["intensity"].astype("Int64")
        df = df.sort_values("sample_id", kind="stable").reset_index(drop=True)
        if df["sample_id"].duplicated().any():
            dup = df.loc[df["sample_id"].duplicated(), "sample_id"].iloc[0]
            raise DatasetLayoutError(f"{self.root}: duplicate sample id '{dup}'")
        return IndexResult(df, pd.DataFrame(self.bad, columns=["path", "reason"]))


def _header_problem(p: Path) -> str | None:
    """Cheap check of a scan file's header; the full parse happens when the scan is read."""
    try:
        head = p.open("rb").read(16)
    except OSError as e:
        return f"unreadable: {e}"
    if not head:
        return "empty file"
    if p.suffix.lower() == ".wrl" and not head.startswith(b"#VRML V2.0"):
        return "not a VRML 2.0 file (header must start with '#VRML V2.0')"
    if p.suffix.lower() == ".bnt" and len(head) < 14:
        return "truncated .bnt header (needs 14 bytes)"
    return None


def _root(root: str | Path) -> Path:
    r = Path(root).resolve()
    if not r.is_dir():
        raise DatasetLayoutError(f"dataset root {r} is not a directory")
    return r


def _frames(c: _Collector, seq: Path, suffix: str) -> list[Path] | None:
    frames, bad = [], 0
    for f in seq.iterdir():
        if f.suffix.lower() != suffix:
            continue
        if not _FRAME_NUM.match(f.stem):
            c.quarantine(f, f"frame name '{f.name}' is not a frame number")
            bad += 1
        elif (why := _header_problem(f)) is not None:
            c.quarantine(f, why)
        else:
            frames.append(f)
    if not frames:
        c.quarantine(seq, f"no readable {suffix} frames")
        return None
    return sorted(frames, key=lambda f: int(f.stem))


BU3DFE_NAME = re.compile(r"^(?P<s>[FM]\d{4})_(?P<ex>AN|DI|FE|HA|SA|SU|NE)(?P<i>\d{2})(?P<eth>[A-Z]{2})_F3D\.wrl$")


def index_bu3dfe(root: str | Path) -> IndexResult:
    c = _Collector("bu3dfe", _root(root))
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
        if (why := _header_problem(f)) is not None:
            c.quarantine(f, why)
            continue
        c.add(f.stem, m["s"], codes[m["ex"]], f, intensity=inten)
    return c.result()


BOSPHORUS_NAME = re.compile(r"^(?P<s>bs\d{3})_(?P<cat>[A-Z]+)_(?P<code>[A-Z0-9]+)_(?P<k>\d+)\.bnt$")


def index_bosphorus(root: str | Path) -> IndexResult:
    c = _Collector("bosphorus", _root(root))
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
        if (why := _header_problem(f)) is not None:
            c.quarantine(f, why)
            continue
        label = codes[m["code"]] if m["cat"] == "E" else "neutral"
        c.add(f.stem, m["s"], label, f)
    return c.result()


def _index_sequences(
    dataset: str, root: str | Path, subj_re: str, codes: dict[str, str], suffix: str, task_col: bool
) -> IndexResult:
    c = _Collector(dataset, _root(root))
    for subj in sorted(p for p in c.root.iterdir() if p.is_dir()):
        if not re.fullmatch(subj_re, subj.name):
            c.quarantine(subj, f"subject folder name does not match {subj_re}")
            continue
        for seq in sorted(p for p in subj.iterdir() if p.is_dir()):
            if seq.name not in codes:
                c.quarantine(seq, f"unknown sequence folder '{seq.name}' (expected one of {', '.join(codes)})")
                continue
            frames = _frames(c, seq, suffix)
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
    c = _Collector("4dme", _root(root))
    tables = sorted(c.root.glob("*label*.csv")) + sorted(c.root.glob("*label*.xlsx"))
    if not tables:
        raise DatasetLayoutError(f"{c.root}: no 4DME annotation table (*labels*.csv or .xlsx) at the root")
    table = tables[0]
    ann = pd.read_csv(table) if table.suffix == ".csv" else pd.read_excel(table)
    cols = {str(k).strip().lower(): k for k in ann.columns}
    sc = _pick(cols, ("subject", "sub"), table)
    qc = _pick(cols, ("sample", "filename", "clip", "sequence"), table)
    ec = _pick(cols, ("emotion", "label", "class", "estimated emotion"), table)
    classes = dataset_codes("4dme")
    for i, row in ann.iterrows():
        subj, sample, emo = str(row[sc]).strip(), str(row[qc]).strip(), str(row[ec]).strip().lower()
        seq = c.root / subj / sample
        if emo not in classes:
            c.quarantine(seq, f"{table.name} row {i + 2}: emotion '{row[ec]}' not one of {', '.join(classes)}")
            continue
        if not seq.is_dir():
            c.quarantine(seq, f"{table.name} row {i + 2}: sequence folder missing")
            continue
        frames = _frames(c, seq, ".obj")
        if frames:
            c.add(sample if sample.startswith(subj) else f"{subj}_{sample}", subj, classes[emo], seq, frames)
    return c.result()


def index_manifest(manifest: str | Path, dataset: str = "custom") -> IndexResult:
    """Any layout: a CSV with ``path`` (a scan file, a folder of frames or a frame glob), ``subject``,
    ``label`` and optional ``sample_id``, ``intensity``, ``task``. Relative paths are relative to
    the manifest's folder."""
    manifest = Path(manifest).resolve()
    try:
        m = pd.read_csv(manifest, dtype=str)
    except Exception as e:
        raise DatasetLayoutError(f"{manifest}: not a readable CSV manifest ({e})") from None
    missing = {"path", "subject", "label"} - set(m.columns)
    if missing:
        raise DatasetLayoutError(f"{manifest}: missing required column(s) {sorted(missing)}")
    c = _Collector(dataset, manifest.parent)
    for i, row in m.iterrows():
        where = f"{manifest.name} row {i + 2}"
        p = manifest.parent / str(row["path"])
        if any(ch in str(row["path"]) for ch in "*?["):
            frames = sorted((Path(x) for x in glob.glob(str(p))), key=lambda f: (len(f.stem), f.stem))
            seq, frames = (frames[0].parent if frames else p.parent), frames
        elif p.is_dir():
            seq, frames = (
                p,
                sorted(
                    (f for f in p.iterdir() if f.suffix.lower() in (".wrl", ".obj", ".ply", ".bnt")),
                    key=lambda f: (len(f.stem), f.stem),
                ),
            )
        else:
            seq, frames = p, None
        if frames is not None and not frames:
            c.quarantine(p, f"{where}: no frames found")
            continue
        if frames is None and not p.is_file():
            c.quarantine(p, f"{where}: file not found")
            continue
        if frames is None and (why := _header_problem(p)):
            c.quarantine(p, f"{where}: {why}")
            continue
        inten = row.get("intensity")
        sid = row.get("sample_id") if isinstance(row.get("sample_id"), str) else f"{dataset}_{i:06d}"
        c.add(
            sid,
            str(row["subject"]),
            str(row["label"]).strip(),
            seq,
            frames,
            intensity=int(inten) if isinstance(inten, str) and inten.strip() else None,
            task=row.get("task") if isinstance(row.get("task"), str) else None,
        )
    return c.result()


INDEXERS = {
    "bu3dfe": index_bu3dfe,
    "bosphorus": index_bosphorus,
    "bu4dfe": index_bu4dfe,
    "bp4d": index_bp4d,
    "4dme": index_4dme,
}


def index_dataset(dataset: str, root: str | Path) -> IndexResult:
    """Index ``root`` in ``dataset``'s native layout; ``dataset='manifest'`` reads a manifest CSV."""
    if dataset == "manifest":
        return index_manifest(root)
    if dataset not in INDEXERS:
        raise DatasetLayoutError(f"unknown dataset '{dataset}': expected one of {sorted(INDEXERS)} or 'manifest'")
    return INDEXERS[dataset](root)


# Protocols: which rows and labels an experiment uses.
PROTOCOLS = {
    "bu3dfe-I": "BU-3DFE Subset I: six emotions, the two highest intensities (3, 4)",
    "bu3dfe-II": "BU-3DFE Subset II: six emotions, all four intensities, no neutral",
    "bosphorus": "Bosphorus: six emotions, subjects who have all six (65 in the real database)",
    "bu4dfe": "BU-4DFE: six emotion sequences",
    "bp4d": "BP4D-Spontaneous: eight task sequences",
    "bp4d-cross": "BP4D-Spontaneous tasks T1/T8 (happy/disgust), the cross-dataset target",
    "4dme": "4DME: five micro-expression classes",
}


def protocol_labels(protocol: str) -> list[str]:
    """Label order of an evaluation protocol (see ``PROTOCOLS``)."""
    if protocol not in PROTOCOLS:
        raise DatasetLayoutError(f"unknown protocol '{protocol}': expected one of {sorted(PROTOCOLS)}")
    return ["happy", "disgust"] if protocol == "bp4d-cross" else dataset_labels(protocol.split("-")[0])


def select_protocol(index: pd.DataFrame, protocol: str) -> tuple[pd.DataFrame, list[str]]:
    """Rows and label order of an evaluation protocol (see ``PROTOCOLS``)."""
    labels = protocol_labels(protocol)
    df = index[index["label"].isin(labels)]
    if protocol == "bu3dfe-I":
        df = df[df["intensity"].isin([3, 4])]
    elif protocol == "bosphorus":
        per = df.groupby("subject")["label"].nunique()
        df = df[df["subject"].isin(per[per == len(labels)].index)]
    elif protocol == "bp4d-cross":
        df = df[df["task"].isin({"T1", "T8"})]
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
