import numpy as np
import pytest
import torch

from facet_lib.bundle import save_bundle
from facet_lib.config import ModelConfig
from facet_lib.data.labels import prompts_for
from facet_lib.models.model import FacetVLM
from facet_lib.render import RenderConfig

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    """A random-weight tiny bundle rendering at 64 px (serving tests need a model, not a good one)."""
    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    d = tmp_path_factory.mktemp("serve") / "bundle"
    text_bank = m.build_text_bank(LABELS, prompts_for(LABELS, mode=m.cfg.prompts))
    save_bundle(d, m, text_bank, RenderConfig(size=64, frames=4).to_dict())
    return d


@pytest.fixture(scope="session")
def views():
    return np.random.default_rng(0).integers(0, 255, (2, 3, 64, 64, 3), dtype=np.uint8)


# Small limits so that slow-client and time-limit tests finish in seconds.
SERVER_ARGS = ["--header_timeout_s", "2", "--body_timeout_s", "2", "--keep_alive_s", "2", "--max_connections", "24"]


@pytest.fixture(scope="session")
def server(bundle, tmp_path_factory):
    """One real server process on 127.0.0.1 for the session (started by the deploy step's local path):
    yields ``{"url", "log", "pid", ...}``."""
    from facet_lib.serving.local import start_local, stop_local

    state = tmp_path_factory.mktemp("servestate")
    info = start_local(str(bundle), "facet-vlm", state_dir=state, extra_args=SERVER_ARGS)
    yield {**info, "log": state / "facet-vlm.log"}
    stop_local("facet-vlm", state_dir=state)


def png_b64(a: np.ndarray) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="session")
def scan_path(synth_root):
    return next((synth_root / "bu3dfe").rglob("*_HA04*_F3D.wrl"))


@pytest.fixture(scope="session")
def scan_b64(scan_path) -> str:
    import base64

    return base64.b64encode(scan_path.read_bytes()).decode()
