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


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real SeaweedFS S3 server on loopback (credentials required), its env vars set for the session."""
    from pipelines import s3_server

    d = tmp_path_factory.mktemp("seaweedfs")
    info = s3_server.start(d)
    old = {k: os.environ.get(k) for k in info["env"]}
    os.environ.update(info["env"])
    yield info["env"]
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    s3_server.stop(d)
