"""Training throughput on CPU and what the feature cache buys (random weights: speed does not depend on them).

``python benchmarks/bench_train.py``                 the tiny CPU backbone (batch 32, 8 steps per row)
``python benchmarks/bench_train.py --model vitb16``  the paper's ViT-B/16 (batch 4, 2 steps per row: minutes)
``... --model vitb16 --gpu-figures gpu.json``        also project from ``gpu_vitb16.py --json gpu.json``

Rows (see ``train_steps.py``): the baseline is a step without the feature cache; then the lower blocks
cached (the tuned phase) and the whole frozen backbone cached (the frozen phase), the one-time extraction,
and the ratio a user gets over a whole 10-fold BU-3DFE Subset II run (2,400 samples) with the preset's
epochs and freeze_epochs, with the wall time projected from the same per-step figures.
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path

import torch

# run as a script, this folder is sys.path[0]: the shared step helpers import directly
from train_steps import STEP_KINDS, build, project_cv, timed  # noqa: E402

MODELS = {  # name → (open_clip model, unfreeze_top, preset for the projection, batch, steps)
    "tiny": ("facet-tiny", 1, "tiny-cpu", 32, 8),
    "vitb16": ("ViT-B-16", 2, "paper", 4, 2),
}
LABEL = {
    "frozen_uncached": "frozen phase, no cache (baseline)",
    "frozen_tokens": "frozen phase, whole backbone cached",
    "tuned_uncached": "tuned phase, no cache (baseline)",
    "tuned_cached": "tuned phase, lower blocks cached",
    "extract": "feature extraction (once per dataset)",
}


def measure(model: str, batch: int | None = None, steps: int | None = None) -> dict:
    clip_model, top, preset, b, s = MODELS[model]
    b, s = batch or b, steps or s
    w = build(clip_model, top, b, torch.device("cpu"))
    t = {k: timed(w.steps[k], b, s, w.device) for k in (*STEP_KINDS, "extract")}
    rates, cpu_rates = {k: v["wall"] for k, v in t.items()}, {k: v["cpu"] for k, v in t.items()}
    return {
        "model": clip_model,
        "weights": w.model.weights,
        "batch": b,
        "steps": s,
        "threads": torch.get_num_threads(),
        "rates": rates,
        "cpu_rates": cpu_rates,
        "projection": project_cv(rates, preset=preset),
        "cpu_projection": project_cv(cpu_rates, preset=preset),
        "preset": preset,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _projection_line(where: str, p: dict, preset: str, unit: str = "h") -> str:
    return (
        f"  10-fold BU-3DFE Subset II (2,400 samples, {p['epochs']} epochs, {p['freeze_epochs']} frozen; "
        f"preset {preset}) on {where}: {p['cached_h']:.1f} {unit} with the cache, {p['uncached_h']:.1f} {unit} "
        f"without ({p['ratio']:.1f}x)"
    )


def report(r: dict, gpu_figures: str | None = None) -> None:
    rt, ct = r["rates"], r["cpu_rates"]
    print(
        f"{r['model']} ({r['weights']}), batch {r['batch']} x 3 views of 224x224, {r['steps']} steps per row, "
        f"CPU threads {r['threads']}"
    )
    print(f"  {'':<40} {'samples/s':>10} {'per CPU-s':>10}  (per CPU-second of this process: steadier under load)")
    for k in ("frozen_uncached", "frozen_tokens", "tuned_uncached", "tuned_cached", "extract"):
        base = "tuned_uncached" if k.startswith("tuned") else "frozen_uncached"
        ratio = f"({rt[k] / rt[base]:.1f}x, {ct[k] / ct[base]:.1f}x)" if k in ("frozen_tokens", "tuned_cached") else ""
        print(f"  {LABEL[k]:<40} {rt[k]:10.2f} {ct[k]:10.2f}  {ratio}")
    print(_projection_line("this CPU", r["projection"], r["preset"]))
    print(_projection_line("one CPU core", r["cpu_projection"], r["preset"], "core-h"))
    if r["model"] == "ViT-B-16":
        if gpu_figures:
            g = json.loads(Path(gpu_figures).read_text())
            print(_projection_line(g["device"], project_cv(g["rates"], preset=r["preset"]), r["preset"]))
        else:
            print(
                "  one GPU: no per-step GPU figures yet (no GPU was lent); run benchmarks/gpu_vitb16.py --json "
                "gpu.json on one and pass --gpu-figures gpu.json"
            )
    print(f"  peak resident memory {r['peak_rss_mib']:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="tiny")
    ap.add_argument("--batch", type=int, help="samples per step (default per model)")
    ap.add_argument("--steps", type=int, help="timed steps per row (default per model)")
    ap.add_argument("--gpu-figures", help="JSON written by gpu_vitb16.py --json (ViT-B/16 only)")
    a = ap.parse_args()
    report(measure(a.model, a.batch, a.steps), a.gpu_figures)


if __name__ == "__main__":
    main()
