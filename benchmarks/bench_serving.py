"""Serving latency and throughput on loopback, against calling the model in-process on the same inputs.

Views-in (V1, three 224×224 PNGs) at concurrency 1 and 8, with micro-batching (max 16, 5 ms) and
without (max batch 1); scan-in (V1, one ~20k-vertex .wrl rendered by the server) at concurrency 1 and 8.
Baseline in the same run: the same work in-process (Engine.infer on decoded views; read + render +
infer for scans). Random-weight tiny backbone, synthetic scan; the serving overhead is what matters.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

N = int(os.environ.get("BENCH_REQUESTS", "48"))


def _png(a: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _stats(lat: list[float], wall: float) -> str:
    ms = np.array(lat) * 1000
    return f"p50 {np.percentile(ms, 50):7.1f} ms  p99 {np.percentile(ms, 99):7.1f} ms  {len(lat) / wall:7.1f} req/s"


def _measure(fn, conc: int) -> tuple[list[float], float]:
    """Latency of N calls of ``fn`` from ``conc`` threads (after 3 warm-up calls) and the wall time."""

    def one(_):
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    for _ in range(3):
        one(0)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        lat = list(ex.map(one, range(N)))
    return lat, time.perf_counter() - t0


def _load(url: str, body: dict, conc: int) -> tuple[list[float], float]:
    client = httpx.Client(timeout=120)
    return _measure(lambda: client.post(url, json=body).raise_for_status(), conc)


def main() -> None:
    from facet_lib.bundle import save_bundle
    from facet_lib.data.synthetic import SynthConfig, generate
    from facet_lib.io import read_scan
    from facet_lib.models.model import FacetVLM, ModelConfig
    from facet_lib.render import RenderConfig, render_views
    from facet_lib.serving.deploy import start_local, stop_local
    from facet_lib.serving.engine import Engine

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        torch.manual_seed(0)
        m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
        labels = ["anger", "disgust", "fear", "happy", "sad", "surprise"]
        save_bundle(d / "bundle", m, m.build_text_bank(labels), RenderConfig().to_dict())
        scan = next(generate("bu3dfe", d / "data", SynthConfig(subjects=1, workers=1)).rglob("*_HA04*_F3D.wrl"))
        cfg = RenderConfig()
        views = render_views(read_scan(scan), cfg)
        engine = Engine(d / "bundle", "cpu")
        v_body = {"instances": [{"views": [_png(v) for v in views]}]}
        s_body = {"instances": [{"scan": base64.b64encode(scan.read_bytes()).decode(), "format": "wrl"}]}
        print(f"tiny random backbone, torch threads {torch.get_num_threads()}, {N} requests per row, loopback")
        rows = []
        for conc in (1, 8):
            rows.append((f"in-process infer (baseline), c={conc}", _measure(lambda: engine.infer(views[None]), conc)))
        servers = {}
        try:
            for name, batch in (("batched", "16"), ("unbatched", "1")):
                os.environ["FACET_SERVE_DIR"] = str(d / f"serve-{name}")
                servers[name] = start_local(
                    str(d / "bundle"), f"bench-{name}", timeout_s=120, extra_args=["--max-batch", batch]
                )
            for conc in (1, 8):
                for name, info in servers.items():
                    url = f"{info['url']}/v1/models/bench-{name}:predict"
                    rows.append((f"HTTP views, {name}, c={conc}", _load(url, v_body, conc)))
            for conc in (1, 8):
                rows.append(
                    (
                        f"in-process read+render+infer, c={conc}",
                        _measure(lambda: engine.infer(render_views(read_scan(scan), cfg)[None]), conc),
                    )
                )
                url = f"{servers['batched']['url']}/v1/models/bench-batched:predict"
                rows.append((f"HTTP scan (.wrl), batched, c={conc}", _load(url, s_body, conc)))
        finally:
            for name in servers:
                os.environ["FACET_SERVE_DIR"] = str(d / f"serve-{name}")
                stop_local(f"bench-{name}")
        base = {1: None, 8: None}
        for title, (lat, wall) in rows:
            print(f"  {title:40s} {_stats(lat, wall)}")
            if title.startswith("in-process infer"):
                base[int(title[-1])] = np.median(lat)
        print(
            "  serving overhead (p50 HTTP views / p50 in-process), c=1: "
            f"{np.median(rows[2][1][0]) / base[1]:.2f}x batched, {np.median(rows[3][1][0]) / base[1]:.2f}x unbatched"
        )


if __name__ == "__main__":
    sys.exit(main())
