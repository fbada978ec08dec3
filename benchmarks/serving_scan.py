"""Scan latency and JSON stalls for ``bench_serving.py`` (issues 22.2 and 18.2), measured in one run.

``scan_side_by_side``: one ``.wrl`` classified in-process (read + render + infer) and served, (a) V2 with
the file's raw bytes as a BYTES element of the binary tensor extension, (b) V1 base64 JSON; the three
calls interleaved so that all see the same machine load; bodies are built once (client-side encoding is
not counted). Then where the served time goes: each stage of the request path timed on its own.
``json_stall``: valid requests (V1 views, V2 binary scans) alone, then with four loops sending 60 MB
JSON bodies (declared and streamed without a length), p50/p99 of each.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import threading
import time

import httpx
import numpy as np


def v2_scan_body(data: bytes, fmt: str = "wrl") -> tuple[bytes, dict]:
    """A binary-extension body: the JSON header, then the 4-byte length and the file (tritonclient's layout)."""
    head = {
        "inputs": [
            {"name": "scan", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(data) + 4}}
        ],
        "parameters": {"format": fmt, "binary_data_output": True},
    }
    h = json.dumps(head).encode()
    return h + len(data).to_bytes(4, "little") + data, {"Inference-Header-Content-Length": str(len(h))}


def v1_scan_body(data: bytes, fmt: str = "wrl") -> bytes:
    return json.dumps({"instances": [{"scan": base64.b64encode(data).decode(), "format": fmt}]}).encode()


def _post(client: httpx.Client, url: str, body: bytes, headers: dict | None = None) -> httpx.Response:
    r = client.post(url, content=body, headers=headers or {"Content-Type": "application/json"})
    if r.status_code != 200:
        raise RuntimeError(f"{url}: {r.status_code} {r.text[:300]}")
    return r


def _server_timing(r: httpx.Response | None) -> dict[str, float]:
    """The server's own account (``Server-Timing``, ms) of where a request's time went."""
    if r is None or "server-timing" not in r.headers:
        return {}
    out = {}
    for part in r.headers["server-timing"].split(","):
        name, _, dur = part.strip().partition(";dur=")
        out[name] = float(dur)
    return out


def _median_ms(fn, n: int) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out) * 1000)


def scan_side_by_side(engine, scan, servers: dict[str, tuple[str, str]], n: int) -> dict:
    """``servers``: label → (base URL, model name), one bundle. Returns medians (ms), ratios, the stage table."""
    import torch

    from facet_lib.io import read_scan
    from facet_lib.render import render_views

    cfg, data = engine.render, scan.read_bytes()
    v2_body, v2_headers = v2_scan_body(data)
    v1_body = v1_scan_body(data)
    client = httpx.Client(timeout=300)

    def inproc():
        engine.infer(render_views(read_scan(scan), cfg)[None])

    calls = {"in-process": inproc}
    for label, (base, name) in servers.items():
        v2, v1 = f"{base}/v2/models/{name}/infer", f"{base}/v1/models/{name}:predict"
        calls[f"V2 binary raw BYTES ({label})"] = lambda u=v2: _post(client, u, v2_body, v2_headers)
        calls[f"V1 base64 JSON ({label})"] = lambda u=v1: _post(client, u, v1_body)
    threads0 = torch.get_num_threads()
    out: dict = {"scan_bytes": len(data), "v1_body_bytes": len(v1_body), "v2_body_bytes": len(v2_body)}
    for f in calls.values():  # warm-up: connections, kernels
        f()
    lat: dict[str, list[float]] = {k: [] for k in calls}
    timing: dict[str, list[dict]] = {k: [] for k in calls}
    torch.set_num_threads(1)  # the stricter baseline: the in-process call at its fastest (one thread)
    for _ in range(n):
        for k, f in calls.items():
            t = time.perf_counter()
            r = f()
            lat[k].append(time.perf_counter() - t)
            st = _server_timing(r)
            if st:
                timing[k].append({**st, "client − server total": lat[k][-1] * 1000 - st["total"]})
    torch.set_num_threads(threads0)  # for comparison: torch's default (one thread per core)
    lat[f"in-process, torch default ({threads0} threads)"] = [
        _median_ms(inproc, 1) / 1000 for _ in range(max(n // 4, 3))
    ]
    med = {k: float(np.median(v) * 1000) for k, v in lat.items()}
    base = med["in-process"]
    out["median_ms"] = med
    out["ratio"] = {k: v / base for k, v in med.items() if k != "in-process"}
    print(f"  scan side by side, c=1, {n} interleaved rounds, {len(data) / 1e6:.1f} MB .wrl (medians):")
    for k, v in med.items():
        print(f"    {k:44s} {v:7.1f} ms  {v / base:5.2f}x in-process (goal ≤ 1.3x for served)")
    out["server_timing_ms"] = {}
    print("  the server's own account (Server-Timing, medians, ms): body read, decode, render, infer, total; and")
    print("  client-observed − server total (sending 3-4 MB over loopback, the client, connection handling):")
    for k, rows in timing.items():
        if rows:
            m = {name: float(np.median([r[name] for r in rows])) for name in rows[0]}
            out["server_timing_ms"][k] = m
            print(f"    {k:44s} " + "  ".join(f"{name} {v:.1f}" for name, v in m.items()))
    torch.set_num_threads(1)
    out["stages_ms"] = _stages(engine, scan, v1_body, v2_body, v2_headers, n)
    torch.set_num_threads(threads0)
    return out


def _stages(engine, scan, v1_body: bytes, v2_body: bytes, v2_headers: dict, n: int) -> dict:
    """Each stage of the served path on its own, in this process (medians, ms)."""
    from facet_lib.config import Limits, ServeConfig
    from facet_lib.io import read_scan
    from facet_lib.render import render_views
    from facet_lib.serving.inputs import Job
    from facet_lib.serving.protocol import decode_v1, decode_v2
    from facet_lib.serving.render_pool import RenderPool

    cfg, sc = engine.render, ServeConfig()
    hdr = {k.lower(): v for k, v in v2_headers.items()}
    mesh = read_scan(scan)
    views = render_views(mesh, cfg)
    st = {
        "decode V1 (orjson + base64)": _median_ms(lambda: decode_v1(v1_body, {}, 2**30, cfg.size, sc), n),
        "decode V2 binary": _median_ms(lambda: decode_v2(v2_body, hdr, 2**30, cfg.size, sc), n),
        "read .wrl": _median_ms(lambda: read_scan(scan), n),
        "render 3 views": _median_ms(lambda: render_views(mesh, cfg), n),
        "infer (1 thread)": _median_ms(lambda: engine.infer(views[None]), n),
    }
    pool = RenderPool(cfg, Limits(render_workers=1))
    pool.start()
    try:
        job = Job("scan", "scan", files=[scan.read_bytes()], fmt="wrl")

        async def rounds():
            for _ in range(3):
                await pool.render([job])
            out = []
            for _ in range(n):
                t = time.perf_counter()
                await pool.render([job])
                out.append(time.perf_counter() - t)
            return float(np.median(out) * 1000)

        worker = asyncio.run(rounds())
    finally:
        pool.close()
    st["render worker hop (pickle, pipe, temp file) = worker − read − render"] = (
        worker - st["read .wrl"] - st["render 3 views"]
    )
    print("  where a served scan's time goes (each stage alone, medians):")
    for k, v in st.items():
        print(f"    {k:66s} {v:7.1f} ms")
    return st


# -- JSON bodies in flight (issue 18.2) ----------------------------------------------------------------
def _big_json(kind: str, mb: int = 60) -> bytes:
    k = mb * 2**20 // 2  # "0," per element
    if kind == "v2":
        head = b'{"inputs":[{"name":"views","shape":[%d],"datatype":"UINT8","data":[' % (k + 1)
        return head + b"0," * k + b"0]}]}"
    return b'{"instances":[[' + b"0," * k + b"0]]}"


def json_stall(base: str, name: str, valid: dict[str, tuple[str, bytes, dict]], n: int, loops: int = 4) -> dict:
    """``valid``: kind → (path, body, headers). p50/p99 of each kind alone and with ``loops`` hostile loops."""
    big = {"v2": _big_json("v2"), "v1": _big_json("v1")}
    paths = {"v2": f"/v2/models/{name}/infer", "v1": f"/v1/models/{name}:predict"}
    stop, seen, lock = threading.Event(), {}, threading.Lock()

    def hostile(k: int) -> None:
        kind, streamed = ("v2", "v1")[k % 2], k >= 2
        with httpx.Client(timeout=120) as c:
            while not stop.is_set():
                body = big[kind]
                content = (body[i : i + 2**20] for i in range(0, len(body), 2**20)) if streamed else body
                try:
                    code = c.post(base + paths[kind], content=content).status_code
                except httpx.HTTPError as e:  # refused while still sending: the connection is closed on us
                    code = type(e).__name__
                with lock:
                    key = f"{kind}-60MB-{'streamed' if streamed else 'declared'}: {code}"
                    seen[key] = seen.get(key, 0) + 1

    def measure() -> dict:
        out = {}
        with httpx.Client(timeout=300) as c:
            for kind, (path, body, headers) in valid.items():
                _post(c, base + path, body, headers)
                lat = []
                for _ in range(n):
                    t = time.perf_counter()
                    _post(c, base + path, body, headers)
                    lat.append((time.perf_counter() - t) * 1000)
                out[kind] = {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}
        return out

    alone = measure()
    with concurrent.futures.ThreadPoolExecutor(loops) as ex:
        futs = [ex.submit(hostile, k) for k in range(loops)]
        time.sleep(1.0)  # the loops are sending
        loaded = measure()
        stop.set()
        for f in futs:
            f.result()
    res = {"alone": alone, "with_json_loops": loaded, "hostile_answers": seen}
    res["p99_ratio"] = {k: loaded[k]["p99_ms"] / alone[k]["p99_ms"] for k in alone}
    print(f"  valid requests alone vs with {loops} loops of 60 MB JSON bodies in flight ({n} each):")
    for k in alone:
        a, b = alone[k], loaded[k]
        print(
            f"    {k:22s} alone p50 {a['p50_ms']:6.1f} p99 {a['p99_ms']:6.1f} ms | with loops p50 {b['p50_ms']:6.1f} "
            f"p99 {b['p99_ms']:6.1f} ms → p99 {res['p99_ratio'][k]:.2f}x (issue 18 measured 800-896x)"
        )
    print(f"    hostile answers: {dict(sorted(seen.items()))}")
    return res
