"""The paper's setting on one GPU, in one call of a few minutes: ``python benchmarks/gpu_vitb16.py [--json out.json]``.

ViT-B/16 with random weights (throughput does not depend on the values), batch 32 samples × 3 views at
224×224, bf16 autocast. One table:
  - baseline: a bare open_clip image encoder forward+backward on the same 96 images (÷ 3 per sample);
  - FACET-VLM training steps as ``train_fold`` runs them: frozen phase with/without the cached backbone,
    tuned phase (top 2 blocks train) with/without the cached lower blocks; ratio to the baseline;
  - feature extraction (the cache's one-time forward);
  - served V2 requests through the in-process ``FacetPredictor`` with the bundle on the GPU: batch-1
    latency (p50/p99) and the throughput of 16 concurrent requests (micro-batching);
  - peak GPU memory per row (served: what the engine adds, "+");
then the projected wall time of a 10-fold BU-3DFE Subset II run.
``--tiny``: the facet-tiny backbone on the CPU with a few steps — a smoke test of this script, not a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# run as a script, this folder is sys.path[0]: the shared step helpers import directly
from train_steps import STEP_KINDS, build, project_cv, rate  # noqa: E402

ROWS = {
    "bare_encoder": "bare open_clip encoder fwd+bwd (baseline)",
    "frozen_uncached": "FACET step, frozen, no cache",
    "frozen_tokens": "FACET step, frozen, backbone cached",
    "tuned_uncached": "FACET step, top blocks tuned, no cache",
    "tuned_cached": "FACET step, top blocks tuned, lower cached",
    "extract": "feature extraction (lower blocks fwd)",
}


def _served(w, bundle_dir: Path, device: str, n: int, conc: int) -> dict:
    """V2 UINT8 requests of one sample each through the in-process predictor (what the server runs)."""
    from kserve import InferInput, InferRequest
    from train_steps import LABELS

    from facet_lib.bundle import save_bundle
    from facet_lib.config import Limits, RenderConfig, ServeConfig
    from facet_lib.data.labels import prompts_for
    from facet_lib.serving.predictor import FacetPredictor

    m = w.model
    text_bank = m.cpu().build_text_bank(LABELS, prompts_for(LABELS, mode=m.cfg.prompts))  # the bank on CPU, as saved
    save_bundle(bundle_dir, m, text_bank, RenderConfig().to_dict())
    m.to(w.device)
    limits = Limits(render_workers=1)  # only views are sent: one render worker is enough
    pred = FacetPredictor(ServeConfig(model=str(bundle_dir), device=device, limits=limits))
    cuda = w.device.type == "cuda"
    if cuda:  # the served row's memory: what the engine adds to the training workload still resident
        torch.cuda.synchronize(w.device)
        torch.cuda.reset_peak_memory_stats(w.device)
        before = torch.cuda.memory_allocated(w.device)
    pred.load()
    size = pred.engine.render.size
    view = np.random.default_rng(0).integers(0, 256, (1, 3, size, size, 3), dtype=np.uint8)

    def request() -> InferRequest:
        return InferRequest("facet-vlm", [InferInput("views", list(view.shape), "UINT8", view.reshape(-1))])

    async def one() -> float:
        t = time.perf_counter()
        await pred.predict(request())
        return time.perf_counter() - t

    async def run() -> dict:
        for _ in range(2):
            await one()
        lat = [await one() for _ in range(n)]
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n * conc // 4 or conc)))
        rps = (n * conc // 4 or conc) / (time.perf_counter() - t0)
        return {"p50_ms": 1000 * float(np.median(lat)), "p99_ms": 1000 * float(np.percentile(lat, 99)), "rps": rps}

    try:
        out = asyncio.run(run())
        out["peak_gib"] = (torch.cuda.max_memory_allocated(w.device) - before) / 2**30 if cuda else math.nan
        out["conc"] = conc
        return out
    finally:
        pred.stop()


def _gib(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="facet-tiny on the CPU, few steps (a smoke test)")
    ap.add_argument("--json", help="also write the figures here (bench_train.py --gpu-figures reads it)")
    a = ap.parse_args(argv)
    if a.tiny:
        clip_model, batch, steps, warmup, device, n_req = "facet-tiny", 2, 1, 1, torch.device("cpu"), 3
        torch.set_num_threads(1)  # tiny steps: one thread is faster on a shared CPU
    else:
        from facet_lib.device import resolve_device

        clip_model, batch, steps, warmup, n_req = "ViT-B-16", 32, 20, 3, 40
        device = resolve_device("cuda", what="gpu_vitb16 device")  # fails fast, naming the driver and build
        torch.backends.cuda.matmul.allow_tf32 = True
    t_start = time.perf_counter()
    w = build(clip_model, 1 if a.tiny else 2, batch, device, size=112 if a.tiny else 224)
    figures = {k: rate(w.steps[k], batch, steps, device, warmup) for k in ROWS}
    rates = {k: r for k, (r, _) in figures.items()}
    with tempfile.TemporaryDirectory() as d:
        served = _served(w, Path(d) / "bundle", str(device), n_req, 16)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (--tiny smoke run)"
    base = rates["bare_encoder"]
    print(f"{name}; {clip_model} ({w.model.weights}); batch {batch} x 3 views; {steps} timed steps per row")
    print(f"| {'row':<42} | {'samples/s':>10} | {'vs baseline':>11} | {'peak GPU GiB':>12} |")
    print(f"|{'-' * 44}|{'-' * 12}|{'-' * 13}|{'-' * 14}|")
    for k, label in ROWS.items():
        r, peak = figures[k]
        print(f"| {label:<42} | {r:10.1f} | {r / base:10.2f}x | {_gib(peak):>12} |")
    print(
        f"| {'served V2, 1 sample/request, sequential':<42} | {1000 / served['p50_ms']:10.1f} | "
        f"{'p50 %.1f ms' % served['p50_ms']:>11} | {'+' + _gib(served['peak_gib']):>12} |"
    )
    print(
        f"| {'served V2, %d concurrent (micro-batched)' % served['conc']:<42} | {served['rps']:10.1f} | "
        f"{'p99 %.1f ms' % served['p99_ms']:>11} | {'':>12} |"
    )
    p = project_cv({k: rates[k] for k in (*STEP_KINDS, "extract")}, preset="tiny-cpu" if a.tiny else "paper")
    print(
        f"projected 10-fold BU-3DFE Subset II (2,400 samples, {p['epochs']} epochs): {p['cached_h']:.2f} h with the "
        f"feature cache, {p['uncached_h']:.2f} h without ({p['ratio']:.1f}x); this script took "
        f"{time.perf_counter() - t_start:.0f} s"
    )
    out = {"device": name, "model": clip_model, "batch": batch, "rates": rates, "served": served, "projection": p}
    out["peak_gib"] = {k: pk for k, (_, pk) in figures.items()}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
