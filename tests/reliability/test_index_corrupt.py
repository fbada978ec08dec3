"""Issue 13.8 (data side): damaged scans are quarantined when the dataset is indexed, not at render."""

from __future__ import annotations

import shutil

import pandas as pd

from facet_lib.data.indexers import index_dataset


def test_damaged_files_in_native_trees_are_quarantined_at_index_time(synth_root, tmp_path):
    for ds in ("bu3dfe", "bosphorus", "bu4dfe", "bp4d"):
        shutil.copytree(synth_root / ds, tmp_path / ds)
    damaged = {
        "bu3dfe": sorted((tmp_path / "bu3dfe").rglob("*_F3D.wrl"))[3],
        "bosphorus": sorted((tmp_path / "bosphorus").rglob("*.bnt"))[2],
        "bu4dfe": sorted((tmp_path / "bu4dfe" / "F001" / "Happy").glob("*.wrl"))[2],  # one frame of a sequence
        "bp4d": sorted((tmp_path / "bp4d" / "F001" / "T1").glob("*.obj"))[0],
    }
    clean = {ds: index_dataset(ds, synth_root / ds).index for ds in damaged}
    for ds, f in damaged.items():
        f.write_bytes(f.read_bytes()[: f.stat().st_size * 2 // 3])  # a copy cut short
        res = index_dataset(ds, tmp_path / ds)
        rel = f.relative_to(tmp_path / ds).as_posix()
        q = res.quarantine.set_index("path")["reason"]
        assert rel in q and "truncated" in q[rel], (ds, q.to_dict())
        if ds in ("bu4dfe", "bp4d"):  # the sequence stays, without its bad frame
            assert len(res.index) == len(clean[ds])
            seq = res.index[res.index.path == f.parent.relative_to(tmp_path / ds).as_posix()].iloc[0]
            assert rel not in seq.frames and seq.n_frames == len(list(f.parent.glob(f"*{f.suffix}"))) - 1
        else:
            assert len(res.index) == len(clean[ds]) - 1 and f.stem not in set(res.index.sample_id)
        assert isinstance(res.quarantine, pd.DataFrame)
