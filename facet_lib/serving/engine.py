"""Inference over a verified bundle: views → labels, probabilities, prompt scores, MTGF attention."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from facet_lib.bundle import load_bundle
from facet_lib.config import RenderConfig
from facet_lib.device import resolve_device


class Engine:
    def __init__(self, bundle_dir: str | Path, device: str = "auto", expected_digest: str | None = None):
        self.device = str(resolve_device(device, what="serve.device"))
        self.model, self.bank, self.config = load_bundle(bundle_dir, self.device, expected_digest)
        self.labels: list[str] = list(self.bank.labels)
        self.render = RenderConfig.from_dict(self.config["render"])
        self.digest = self.config.get("digest")

    @torch.no_grad()
    def infer(
        self,
        views: np.ndarray,
        prompts: list[str] | None = None,
        mode: str = "class_conditional",
        attention: bool = False,
    ) -> list[dict]:
        """views (B, 3, H, W, 3) uint8 at the bundle's render size → one result dict per sample."""
        m = self.model
        tokens = m.tokens_from_hidden(m.hidden_from_views(torch.from_numpy(views).to(self.device))).float()
        logits, out = m.scores(tokens, self.bank.class_embeds, mode)
        probs = torch.softmax(logits, dim=1).cpu().numpy()
        results = [
            {
                "label": self.labels[int(p.argmax())],
                "probabilities": {lab: round(float(x), 6) for lab, x in zip(self.labels, p)},
            }
            for p in probs
        ]
        if prompts:
            pe = m.text(prompts).to(self.device)
            plog, _ = m.scores(tokens, pe, mode)
            pp = torch.softmax(plog, dim=1).cpu().numpy()
            for r, row in zip(results, pp):
                r["prompt_scores"] = {p: round(float(x), 6) for p, x in zip(prompts, row)}
        if attention and m.cfg.head.mtgf:
            att = out["attention"].cpu().numpy()  # (B, Q, V·N)
            n_views = len(m.cfg.views)
            g = int(math.isqrt(att.shape[-1] // n_views))
            for i, r in enumerate(results):
                q = int(probs[i].argmax()) if att.shape[1] > 1 else 0
                maps = att[i, q].reshape(n_views, g, g)
                r["attention"] = {
                    "views": [["front", "left", "right"][v] for v in m.cfg.views],
                    "per_view_share": [round(float(x), 4) for x in maps.sum(axis=(1, 2))],
                    "heatmaps": np.round(maps / max(maps.max(), 1e-12), 3).tolist(),
                }
        return results
