"""The index table every indexer builds: rows, a quarantine of what was skipped and why, and the checks
they share (scan files, frame folders, duplicate sample ids)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from facet_lib.data.scan_checks import scan_problem
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
QUARANTINE_COLUMNS = ["path", "reason"]
FRAME_NUM = re.compile(r"^(\d+)$")


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


def dataset_root(root: str | Path) -> Path:
    r = Path(root).resolve()
    if not r.is_dir():
        raise DatasetLayoutError(f"dataset root {r} is not a directory")
    return r


class Collector:
    def __init__(self, dataset: str, root: Path):
        self.dataset, self.root = dataset, root
        self.rows: list[dict] = []
        self.origin: list[str] = []  # where each row came from, for duplicate reports
        self.bad: list[dict] = []

    def rel(self, p: Path) -> str:
        """Path relative to the root; absolute when outside it (manifests may point anywhere)."""
        return p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else p.resolve().as_posix()

    def quarantine(self, p: Path | str, reason: str) -> None:
        self.bad.append({"path": self.rel(p) if isinstance(p, Path) else p, "reason": reason})

    def scan_ok(self, p: Path, prefix: str = "") -> bool:
        """Quarantine ``p`` (with ``prefix`` before the reason) unless it passes the structural check."""
        why = scan_problem(p)
        if why is not None:
            self.quarantine(p, prefix + why)
        return why is None

    def frames(self, seq: Path, suffix: str) -> list[Path] | None:
        """A native sequence folder's frames ``<number><suffix>`` in numeric order; bad frames are
        quarantined one by one and the sequence keeps the others."""
        frames = []
        for f in seq.iterdir():
            if f.suffix.lower() != suffix:
                continue
            if not FRAME_NUM.match(f.stem):
                self.quarantine(f, f"frame name '{f.name}' is not a frame number")
            elif self.scan_ok(f):
                frames.append(f)
        if not frames:
            self.quarantine(seq, f"no readable {suffix} frames")
            return None
        return sorted(frames, key=lambda f: int(f.stem))

    def add(
        self,
        sample_id: str,
        subject: str,
        label: str,
        path: Path,
        frames: list[Path] | None = None,
        intensity: int | None = None,
        task: str | None = None,
        origin: str | None = None,
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
        self.origin.append(origin or self.rel(path))

    def result(self) -> IndexResult:
        """The index sorted by sample id. Rows that share a sample id are all quarantined: which of them is
        meant cannot be told, and a duplicated id would mix two scans under one name downstream."""
        df = pd.DataFrame(self.rows, columns=INDEX_COLUMNS)
        df["intensity"] = df["intensity"].astype("Int64")
        dup = df["sample_id"].duplicated(keep=False).to_numpy()
        if dup.any():
            for sid in dict.fromkeys(df.loc[dup, "sample_id"]):
                where = [self.origin[i] for i in df.index[df["sample_id"] == sid]]
                for i in df.index[df["sample_id"] == sid]:
                    others = ", ".join(w for w in where if w != self.origin[i])
                    at = "" if self.origin[i] == df.at[i, "path"] else f"{self.origin[i]}: "
                    self.quarantine(df.at[i, "path"], f"{at}duplicate sample_id '{sid}' (also {others})")
            df = df[~dup]
        df = df.sort_values("sample_id", kind="stable").reset_index(drop=True)
        return IndexResult(df, pd.DataFrame(self.bad, columns=QUARANTINE_COLUMNS))
