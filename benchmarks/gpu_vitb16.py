"""GPU benchmark for the paper's setting (run on a lent GPU: `python benchmarks/gpu_vitb16.py`).

ViT-B/16 (random weights unless FACET_CLIP_CHECKPOINT points at real ones — throughput does not
depend on the values), batch 32 samples × 3 views at 224×224, bf16 autocast. Compares:
  - baseline: a bare open_clip image-encoder forward+backward on the same 96 images;
  - FACET-VLM training step with the lower 10 blocks cached (top 2 + head trained);
  - FACET-VLM training step without the cache.
Prints samples/s and peak GPU memory for each.
"""

from __future__ import annotations

import os
import random
import time

import torch

from facet_lib.losses import facet_loss
from facet_lib.models.model import FacetVLM, ModelConfig

B, STEPS = 32, 20
LABELS = ["anger", "disgust", "fear", "happy", "sad", "surprise"]


def timed(fn, dev) -> tuple[float, float]:
    for _ in range(3):
        fn()
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(STEPS):
        fn()
    torch.cuda.synchronize(dev)
    return STEPS * B / (time.perf_counter() - t0), torch.cuda.max_memory_allocated(dev) / 2**30


def main() -> None:
    dev = torch.device("cuda")
    model = FacetVLM(
        ModelConfig(clip_model="ViT-B-16", unfreeze_top=2, checkpoint=os.environ.get("FACET_CLIP_CHECKPOINT"))
    ).to(dev)
    bank = model.build_text_bank(LABELS).to(dev)
    views = torch.randint(0, 255, (B, 3, 224, 224, 3), dtype=torch.uint8, device=dev)
    y = torch.randint(0, 6, (B,), device=dev)
    model.set_backbone_trainable(True)
    params = list(model.head.parameters()) + model.backbone_trainable()
    opt = torch.optim.AdamW(params, lr=1e-4)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        cached = model.hidden_from_views(views)

    def facet_step(use_cache: bool) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if use_cache:
                hidden = cached
            else:
                with torch.no_grad():
                    hidden = model.hidden_from_views(views)
            tokens = model.tokens_from_hidden(hidden)
            text = bank.sample(y.cpu(), random.Random(0)).to(dev)
            q = torch.cat([text[:, None], bank.class_embeds[None].expand(B, -1, -1)], 1)
            out = model.fuse(tokens, q)
            cond = {"embed": out["image_embed"][:, 1:], "classes": bank.class_embeds, "weight": 1.0}
            loss = sum(facet_loss(out, text, y, model.logit_scale(), 0.1, "label_aware", cond).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    visual = model.clip.visual
    for p in visual.parameters():
        p.requires_grad_(True)
    x = model.visual.preprocess(views.flatten(0, 1))

    def bare_encoder() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            visual(x).float().sum().backward()

    base, base_mem = timed(bare_encoder, dev)
    for p in visual.parameters():
        p.requires_grad_(False)
    model.set_backbone_trainable(True)
    cached_r, cached_mem = timed(lambda: facet_step(True), dev)
    fresh_r, fresh_mem = timed(lambda: facet_step(False), dev)
    print(f"{torch.cuda.get_device_name(dev)}; ViT-B-16 weights: {model.weights}; batch {B} x 3 views, bf16")
    print(f"  bare open_clip encoder fwd+bwd (baseline) {base:8.1f} samples/s  peak {base_mem:5.1f} GiB")
    print(
        f"  FACET step, lower blocks cached            {cached_r:8.1f} samples/s  peak {cached_mem:5.1f} GiB "
        f"({cached_r / base:.2f}x baseline)"
    )
    print(
        f"  FACET step, no cache                       {fresh_r:8.1f} samples/s  peak {fresh_mem:5.1f} GiB "
        f"({fresh_r / base:.2f}x baseline)"
    )


if __name__ == "__main__":
    main()
