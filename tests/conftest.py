from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from facet_lib.data.synthetic import SynthConfig, generate  # noqa: E402

SMALL = SynthConfig(subjects=4, frames=4, step=3.0, step_4d=4.0, seed=7, workers=1)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """Small synthetic trees of all five datasets (coarse grids so that tests stay fast)."""
    root = tmp_path_factory.mktemp("synthetic")
    for ds in ("bu3dfe", "bosphorus", "bu4dfe", "bp4d", "4dme"):
        generate(ds, root / ds, SMALL)
    return root
