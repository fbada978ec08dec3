"""Training throughput on CPU with the tiny random-weight backbone (synthetic inputs).

Baselines in the same run: training without the feature cache (the frozen blocks recomputed every
step), and the backbone forward alone. Prints samples/s (3 views each), the fusion head's share of a
step, and peak resident memory.
"""

from __future__ import annotations

import random
import resource
import time

import numpy as np
import torch

from facet_lib.losses import facet_loss
from facet_lib.models.model import FacetVLM, ModelConfig

LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]
B, STEPS = 32, 8


def main() -> None:
    torch.manual_seed(0)
    model = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    bank = model.build_text_bank(LABELS)
    views = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (B, 3, 224, 224, 3), dtype=np.uint8))
    y = torch.randint(0, 6, (B,))
    opt = torch.optim.AdamW(list(model.head.parameters()), lr=1e-4)
    with torch.no_grad():
        cached = model.hidden_from_views(views).half()
        frozen_tokens = model.tokens_from_hidden(cached)

    def step(mode: str) -> None:
        with torch.no_grad():
            if mode == "uncached":
                tokens = model.tokens_from_hidden(model.hidden_from_views(views))
            elif mode == "cached":
                tokens = model.tokens_from_hidden(cached)
            else:  # "tokens": backbone fully frozen, its output cached too
                tokens = frozen_tokens
        text = bank.sample(y, random.Random(0))
        q = torch.cat([text[:, None], bank.class_embeds[None].expand(B, -1, -1)], 1)
        out = model.fuse(tokens, q)
        cond = {"embed": out["image_embed"][:, 1:], "classes": bank.class_embeds, "weight": 1.0}
        loss = sum(facet_loss(out, text, y, model.logit_scale(), 0.1, "label_aware", cond).values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    def rate(fn) -> float:
        fn()
        t0 = time.perf_counter()
        for _ in range(STEPS):
            fn()
        return STEPS * B / (time.perf_counter() - t0)

    def backbone_only() -> None:
        with torch.no_grad():
            model.tokens_from_hidden(model.hidden_from_views(views))

    r = {m: rate(lambda m=m: step(m)) for m in ("uncached", "cached", "tokens")}
    bb = rate(backbone_only)
    print(
        f"tiny backbone ({model.weights}), batch {B}, 3 views of 224x224 per sample, "
        f"CPU threads {torch.get_num_threads()}"
    )
    print(f"  no feature cache (baseline)       {r['uncached']:8.1f} samples/s")
    print(f"  lower blocks cached               {r['cached']:8.1f} samples/s  ({r['cached'] / r['uncached']:.1f}x)")
    print(f"  whole frozen backbone cached      {r['tokens']:8.1f} samples/s  ({r['tokens'] / r['uncached']:.1f}x)")
    step_s, bb_s = 1 / r["uncached"], 1 / bb
    print(
        f"  backbone forward alone            {bb:8.1f} samples/s; fusion head + loss + update = "
        f"{100 * max(0.0, step_s - bb_s) / step_s:.0f}% of an uncached step"
    )
    print(f"  peak resident memory              {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.0f} MiB")


if __name__ == "__main__":
    main()
