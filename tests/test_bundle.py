"""Serving bundles (facet_lib.bundle): a round trip gives the same predictions; a flipped byte is refused."""

import numpy as np
import pytest
import torch

from facet_lib.bundle import BundleError, load_bundle, save_bundle
from facet_lib.config import ModelConfig
from facet_lib.data.labels import prompts_for
from facet_lib.models.model import FacetVLM
from facet_lib.train.loop import predict

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]


def test_bundle_round_trip_and_tamper(tmp_path):
    torch.manual_seed(0)
    tiny = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    views = np.random.default_rng(0).integers(0, 255, (8, 3, 64, 64, 3), dtype=np.uint8)
    bank = tiny.build_text_bank(LABELS, prompts_for(LABELS, mode=tiny.cfg.prompts))
    with torch.no_grad():
        h = tiny.hidden_from_views(torch.from_numpy(views))
    digest = save_bundle(tmp_path / "b", tiny, bank, render={"size": 64}, extra={"metrics": {"accuracy": 0.5}})
    model2, bank2, cfg = load_bundle(tmp_path / "b")
    assert len(digest) == 64 and cfg["labels"] == LABELS and cfg["weights"] == tiny.weights
    a = predict(tiny, bank, lambda idx: h[idx], 8, device="cpu")
    b = predict(model2, bank2, lambda idx: h[idx], 8, device="cpu")
    np.testing.assert_allclose(a["class_conditional"], b["class_conditional"], atol=1e-5)
    w = tmp_path / "b" / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(tmp_path / "b")
