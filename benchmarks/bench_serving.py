"""Serving on loopback against the same work in-process, measured in the same run.

``python benchmarks/bench_serving.py [throughput]``
  - views (V1, three 224×224 PNGs): requests/s and p50/p99 for 1, 4, 8, 16, 32 concurrent callers on a
    server with micro-batching (ServeConfig's max_batch/max_wait_ms) and one without (max_batch 1);
    baseline: ``Engine.infer`` on one sample in-process (c=1) and on a batch.
  - scans (V1, one .wrl rendered by the server's worker pool) at the same concurrencies; baseline:
    read + render + infer in-process, one call at a time.
  - first request after ready (issue 12): a fresh server's first scan and views request vs the median.
``python benchmarks/bench_serving.py scan [--rounds 24]`` (issues 22.2 and 18.2; ``serving_scan.py``)
  - one .wrl in-process (read + render + infer, one torch thread) against served, interleaved: V2 binary
    extension with the raw file as BYTES, V1 base64 JSON, on the default server and on one with torch's
    default threads; the stage table of the served path; then valid V1 views / V2 scans alone and with
    four loops of 60 MB JSON bodies in flight (p99 ratio).
``python benchmarks/bench_serving.py load [--loops 4] [--rounds 3] [--clients 32]`` (``serving_load.py``)
  - valid views / scans p99 alone and with ``--loops`` hostile loops in flight (the corpus's load subset,
    tests/security/corpus.py), then 32 clients, half valid, half hostile (stalled bodies too): requests
    served, errors by status, valid p50/p99 per round, server RSS (with its render workers). Last line JSON.
Random-weight tiny backbone; the serving overhead and the scaling are what matter. On a shared 2-core
machine the client threads compete with the server for the same cores: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

N = int(os.environ.get("BENCH_REQUESTS", "48"))
CONCURRENCY = (1, 4, 8, 16, 32)


def _png(a: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _stats(lat: list[float], wall: float) -> dict:
    ms = np.array(lat) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "rps": len(lat) / wall}


def _fmt(s: dict) -> str:
    return f"p50 {s['p50_ms']:7.1f} ms  p99 {s['p99_ms']:7.1f} ms  {s['rps']:7.1f} req/s"


def _measure(fn, conc: int, n: int | None = None) -> dict:
    """Latency of ``n`` calls of ``fn`` from ``conc`` threads (after warm-up calls) and the throughput."""

    errors: list[str] = []

    def one(_):
        t = time.perf_counter()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 — counted and reported, never dropped
            errors.append(f"{type(e).__name__}: {str(e)[:200]}")
            return None
        return time.perf_counter() - t

    n = max(n or N, 2 * conc)
    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        list(ex.map(one, range(conc)))  # warm-up: one call per caller (connections opened)
        t0 = time.perf_counter()
        lat = [x for x in ex.map(one, range(n)) if x is not None]
    out = _stats(lat or [float("nan")], time.perf_counter() - t0)
    if errors:
        out["errors"] = len(errors)
        print(f"    {len(errors)} failed calls, e.g. {errors[0]}")
    return out


def _paired(a, b) -> tuple[float, float]:
    t = time.perf_counter()
    a()
    t1 = time.perf_counter()
    b()
    return t1 - t, time.perf_counter() - t1


def _setup(d: Path):
    """A tiny random-weight bundle at the default render size and one synthetic .wrl scan."""
    import torch

    from facet_lib.bundle import save_bundle
    from facet_lib.config import ModelConfig, RenderConfig
    from facet_lib.data.labels import prompts_for
    from facet_lib.data.synthetic import SynthConfig, generate
    from facet_lib.models.model import FacetVLM

    torch.manual_seed(0)
    m = FacetVLM(ModelConfig(clip_model="facet-tiny", unfreeze_top=1))
    labels = ["anger", "disgust", "fear", "happy", "sad", "surprise"]
    text_bank = m.build_text_bank(labels, prompts_for(labels, mode=m.cfg.prompts))
    save_bundle(d / "bundle", m, text_bank, RenderConfig().to_dict())
    scan = next(generate("bu3dfe", d / "data", SynthConfig(subjects=1, workers=1)).rglob("*_HA04*_F3D.wrl"))
    return d / "bundle", scan


def _start(bundle: Path, name: str, d: Path, extra: list[str]) -> dict:
    from facet_lib.serving.local import start_local

    info = start_local(str(bundle), name, state_dir=d / f"serve-{name}", timeout_s=600, extra_args=extra)
    return {**info, "state": d / f"serve-{name}"}


def _stop(info: dict) -> None:
    from facet_lib.serving.local import stop_local

    log = info["state"] / f"{info['name']}.log"
    problems = [x for x in log.read_text().splitlines() if "ERROR" in x or "-> 5" in x] if log.exists() else []
    for line in problems[:5]:
        print(f"    server {info['name']}: {line[:300]}")

    stop_local(info["name"], state_dir=info["state"])


def _post(url: str, body: dict, client: httpx.Client) -> None:
    r = client.post(url, json=body)
    if r.status_code != 200:
        raise RuntimeError(f"{url}: {r.status_code} {r.text[:300]}")


def throughput(parts: set[str]) -> dict:
    import torch

    from facet_lib.config import RenderConfig, ServeConfig
    from facet_lib.io import read_scan
    from facet_lib.render import render_views
    from facet_lib.serving.engine import Engine

    out: dict = {"views": {}, "scan": {}}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        bundle, scan = _setup(d)
        cfg = RenderConfig()
        views = render_views(read_scan(scan), cfg)
        engine = Engine(bundle, "cpu")
        v_body = {"instances": [{"views": [_png(v) for v in views]}]}
        s_body = {"instances": [{"scan": base64.b64encode(scan.read_bytes()).decode(), "format": "wrl"}]}
        sc = ServeConfig()
        print(f"tiny random backbone at {cfg.size}px, torch threads {torch.get_num_threads()}, cores {os.cpu_count()}")
        print(f"batching: max_batch {sc.max_batch}, max_wait_ms {sc.max_wait_ms:g} (ServeConfig defaults)")
        base1 = _measure(lambda: engine.infer(views[None]), 1)
        batch = np.repeat(views[None], 8, 0)
        base8 = _measure(lambda: engine.infer(batch), 1, n=12)
        print(f"  in-process infer, 1 sample (baseline)          {_fmt(base1)}")
        print(
            f"  in-process infer, batch of 8: {base8['p50_ms'] / 8:6.1f} ms/sample → ceiling ≈ "
            f"{8000 / base8['p50_ms']:.0f} samples/s vs {1000 / base1['p50_ms']:.0f} one at a time"
        )
        t_first = time.perf_counter()
        if "views" in parts:  # the default server, and the batching alternatives it was chosen against
            variants = {"wait-0ms": ["--max_wait_ms", "0"], "wait-5ms": ["--max_wait_ms", "5"]}
            variants["unbatched"] = ["--max_batch", "1"]
        else:
            variants = {}
        srv = {"default": _start(bundle, "bench-default", d, [])}
        srv.update({k: _start(bundle, f"bench-{k}", d, v) for k, v in variants.items()})
        out["start_to_ready_s"] = (time.perf_counter() - t_first) / len(srv)
        try:
            client = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=64))
            for conc in CONCURRENCY if "views" in parts else ():
                for name, info in srv.items():
                    url = f"{info['url']}/v1/models/{info['name']}:predict"
                    s = _measure(lambda u=url: _post(u, v_body, client), conc)
                    out["views"].setdefault(name, {})[conc] = s
                    print(f"  HTTP views, {name:12s} c={conc:<2d}              {_fmt(s)}")
            if "views" in parts:
                url = f"{srv['default']['url']}/v1/models/bench-default:predict"
                pairs = [
                    _paired(lambda: engine.infer(views[None]), lambda: _post(url, v_body, client)) for _ in range(N)
                ]
                a, b = np.median([p[0] for p in pairs]), np.median([p[1] for p in pairs])
                print(
                    f"  views interleaved, c=1: in-process {a * 1000:.0f} ms, served {b * 1000:.0f} ms → {b / a:.2f}x"
                )
                out["views_paired"] = {"inprocess_ms": a * 1000, "served_ms": b * 1000, "ratio": b / a}
                u = out["views"]["unbatched"][8]
                for name in ("default", "wait-0ms", "wait-5ms"):
                    b = out["views"][name][8]
                    print(
                        f"  views c=8, {name}: throughput {b['rps'] / u['rps']:.2f}x unbatched (goal ≥ 2x), "
                        f"p99 {b['p99_ms'] / u['p99_ms']:.2f}x of unbatched (goal ≤ 2x)"
                    )
            if "scans" in parts:
                inproc = _measure(lambda: engine.infer(render_views(read_scan(scan), cfg)[None]), 1)
                print(f"  in-process read+render+infer (baseline)       {_fmt(inproc)}")
                url = f"{srv['default']['url']}/v1/models/bench-default:predict"
                for conc in CONCURRENCY:
                    s = out["scan"][conc] = _measure(lambda: _post(url, s_body, client), conc)
                    print(f"  HTTP scan (.wrl), c={conc:<2d}                        {_fmt(s)}")
                print("  (served scan vs in-process, side by side: `bench_serving.py scan`)")
                out["baseline"] = {"infer_1": base1, "infer_8": base8, "scan_inprocess": inproc}
        finally:
            for info in srv.values():
                _stop(info)
        if "first" in parts:  # issue 12: ready means ready — a fresh server's first requests against later ones
            fresh = _start(bundle, "bench-first", d, [])
            try:
                url = f"{fresh['url']}/v1/models/bench-first:predict"
                with httpx.Client(timeout=300) as c:
                    lat = []
                    for body in (s_body, v_body, s_body, v_body, s_body, v_body):
                        t = time.perf_counter()
                        _post(url, body, c)
                        lat.append((time.perf_counter() - t) * 1000)
                print(
                    f"  first request after ready: scan {lat[0]:.0f} ms (later {np.median(lat[2::2]):.0f}), "
                    f"views {lat[1]:.0f} ms (later {np.median(lat[3::2]):.0f})"
                )
                out["first_request_ms"] = {"scan": lat[0], "views": lat[1], "later": lat[2:]}
            finally:
                _stop(fresh)
    return out


# -- bounded load test with hostile requests (issues 13, 18): benchmarks/serving_load.py --------------


def scan_mode(rounds: int) -> dict:
    """Issue 22.2 (served scan vs in-process) and 18.2 (JSON bodies in flight); see serving_scan.py."""
    import serving_scan as ss

    from facet_lib.serving.engine import Engine

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        bundle, scan = _setup(d)
        engine = Engine(bundle, "cpu")
        srv = {"default": _start(bundle, "bench-scan", d, [])}
        srv["torch default threads"] = _start(bundle, "bench-scan-threads", d, ["--torch_threads", "0"])
        try:
            servers = {k: (v["url"], v["name"]) for k, v in srv.items()}
            out = {"scan": ss.scan_side_by_side(engine, scan, servers, rounds)}
            from facet_lib.io import read_scan
            from facet_lib.render import render_views

            v = render_views(read_scan(scan), engine.render)
            v1 = json.dumps({"instances": [{"views": [_png(x) for x in v]}]}).encode()
            body, headers = ss.v2_scan_body(scan.read_bytes())
            valid = {
                "V1 views (PNG)": ("/v1/models/bench-scan:predict", v1, {"Content-Type": "application/json"}),
                "V2 scan (raw BYTES)": ("/v2/models/bench-scan/infer", body, headers),
            }
            out["json_stall"] = ss.json_stall(srv["default"]["url"], "bench-scan", valid, rounds)
        finally:
            for info in srv.values():
                _stop(info)
    out["load_average"] = os.getloadavg()
    print(f"  load average {out['load_average'][0]:.2f} {out['load_average'][1]:.2f} {out['load_average'][2]:.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="throughput", choices=["throughput", "load", "scan"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--per-client", type=int, default=4)
    p.add_argument("--loops", type=int, default=4, help="load: hostile loops in flight against valid callers")
    p.add_argument("--loop-requests", type=int, default=40, help="load: valid requests per kind and phase")
    p.add_argument("--rss", action="store_true", help="load: RSS after heavy requests, with and without malloc_trim")
    p.add_argument("--scan-rounds", type=int, default=24, help="scan: interleaved rounds and requests per phase")
    p.add_argument("--server-arg", action="append", default=[], help="extra server option (repeatable)")
    p.add_argument("--parts", default="views,scans,first", help="throughput: which parts to run")
    a = p.parse_args(argv)
    parts = set(a.parts.split(","))
    if a.mode == "scan":
        out = scan_mode(a.scan_rounds)
    else:
        from serving_load import load

        if a.mode == "throughput":
            out = throughput(parts)
        else:
            out = load(a.rounds, a.clients, a.per_client, a.server_arg, a.loops, a.loop_requests, a.rss)
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
