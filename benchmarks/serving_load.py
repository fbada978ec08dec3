"""``python benchmarks/bench_serving.py load``: the server under hostile load (issues 13, 18).

Two measurements on one server, in one run, against a baseline taken in the same run:
  - hostile loops (issue 18.4): for views and for scans, valid callers' p50/p99 alone, then with
    ``--loops`` clients each looping hostile requests from the corpus (tests/security/corpus.py,
    ``LOAD_IDS``) on its own keep-alive connection without pause; the goal is p99 ≤ 3× alone.
  - mixed rounds (issue 13): ``--clients`` callers, half valid, half hostile (including a stalled
    body over a raw socket): every valid request 200, no 5xx or dropped connection; server RSS.
Hostile bodies are serialised once up front, so the load generator's own CPU is mostly sending.
The load average is printed: on a shared 2-core machine the clients compete with the server.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np


def _corpus():
    """tests/security/corpus.py, the one corpus, imported as ``tests.security.corpus`` by file location
    (benchmarks never edit sys.path; the repository's ``tests`` packages are registered by path)."""
    import importlib
    import importlib.util

    root = Path(__file__).resolve().parents[1] / "tests"
    for name, path in (("tests", root), ("tests.security", root / "security")):
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                name, path / "__init__.py", submodule_search_locations=[str(path)]
            )
            sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[name])
    return importlib.import_module("tests.security.corpus")


def cases():
    return _corpus().cases()


def _load_ids() -> tuple:
    return _corpus().LOAD_IDS


def _rss_mb(pid: int, children: bool = True) -> float:
    """RSS of a process and (``children``) its children (the render workers), in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for t in Path(f"/proc/{p}/task").iterdir() if children else ():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except OSError:
            pass
    return total / 1024


def _stalled(port: int, path: str, content: bytes, headers: dict) -> int:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head.encode() + content)
        s.settimeout(120)
        reply = s.recv(100)
    return int(reply.split()[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def _hostile(name: str) -> list[tuple]:
    """(id, path, content, headers, socket) of the load subset of the corpus, serialised once."""
    by_id = {c.id: c for c in cases()}
    picked = [by_id[i] for i in _load_ids()]
    return [(c.id, c.path.format(m=name), c.content(), c.headers, c.socket) for c in picked]


def _pct(lat: list[float], q: float) -> float | None:
    return float(np.percentile(lat, q) * 1000) if lat else None


def _valid_latencies(url: str, body: dict, callers: int, n: int) -> tuple[list[float], int]:
    """``n`` requests from ``callers`` threads (one connection each): latencies of the 200s, failures."""
    lat, bad, lock = [], 0, threading.Lock()

    def one(_):
        nonlocal bad
        with httpx.Client(timeout=300) as c:
            c.post(url, json=body)  # warm-up: the connection
            for _ in range(n // callers):
                t = time.perf_counter()
                r = c.post(url, json=body)
                with lock:
                    if r.status_code == 200:
                        lat.append(time.perf_counter() - t)
                    else:
                        bad += 1

    with concurrent.futures.ThreadPoolExecutor(callers) as ex:
        list(ex.map(one, range(callers)))
    return lat, bad


def hostile_loops(info: dict, valid: dict, loops: int, callers: int, n: int) -> dict:
    """Valid p50/p99 alone and with ``loops`` hostile loops in flight, per valid kind."""
    hostile = [h for h in _hostile(info["name"]) if not h[4]]  # a stalled body costs no CPU: mixed rounds
    out = {}
    for kind, (path, body) in valid.items():
        url = info["url"] + path.format(name=info["name"])
        alone, bad_alone = _valid_latencies(url, body, callers, n)
        stop, counts = threading.Event(), collections.Counter()

        def loop(k: int, stop=stop, counts=counts):
            with httpx.Client(timeout=300) as c:
                i = k
                while not stop.is_set():
                    hid, hpath, content, headers, _ = hostile[i % len(hostile)]
                    try:
                        counts[c.post(info["url"] + hpath, content=content, headers=headers).status_code] += 1
                    except httpx.HTTPError:
                        counts[0] += 1
                    i += 1

        threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(loops)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the loops are in full flight
        under, bad_under = _valid_latencies(url, body, callers, n)
        stop.set()
        for t in threads:
            t.join(300)
        row = {
            "alone_p50_ms": _pct(alone, 50),
            "alone_p99_ms": _pct(alone, 99),
            "hostile_p50_ms": _pct(under, 50),
            "hostile_p99_ms": _pct(under, 99),
            "valid_failed": bad_alone + bad_under,
            "hostile_statuses": dict(sorted(counts.items())),
            "load_average": os.getloadavg()[0],
        }
        row["p99_ratio"] = row["hostile_p99_ms"] / row["alone_p99_ms"] if alone and under else None
        out[kind] = row
        print(
            f"  {kind:5s}: valid p99 alone {row['alone_p99_ms']:.0f} ms, with {loops} hostile loops "
            f"{row['hostile_p99_ms']:.0f} ms → {row['p99_ratio']:.2f}x (goal ≤ 3x); p50 {row['alone_p50_ms']:.0f} → "
            f"{row['hostile_p50_ms']:.0f} ms; hostile answers {row['hostile_statuses']}; "
            f"load average {row['load_average']:.2f}"
        )
    return out


def mixed_rounds(info: dict, valid: dict, rounds: int, clients: int, per_client: int) -> dict:
    port = int(info["url"].rsplit(":", 1)[1])
    hostile = _hostile(info["name"])
    valid_list = [(k, p.format(name=info["name"]), b) for k, (p, b) in valid.items()]
    statuses: collections.Counter = collections.Counter()
    report = {"rounds": []}

    def worker(k: int, with_hostile: bool) -> list:
        out = []
        with httpx.Client(timeout=300) as client:
            for i in range(per_client):
                t = time.perf_counter()
                if with_hostile and k % 2:
                    hid, path, content, headers, sock = hostile[(k // 2 + i) % len(hostile)]
                    if sock:
                        code = _stalled(port, path, content, headers)
                    else:
                        try:
                            code = client.post(info["url"] + path, content=content, headers=headers).status_code
                        except httpx.HTTPError:
                            code = 0  # connection refused/reset: counted, never silently dropped
                    out.append(("hostile:" + hid, code, time.perf_counter() - t))
                else:
                    name, path, body = valid_list[(k + i) % len(valid_list)]
                    try:
                        code = client.post(info["url"] + path, json=body).status_code
                    except httpx.HTTPError:
                        code = 0
                    out.append(("valid:" + name, code, time.perf_counter() - t))
        return out

    with concurrent.futures.ThreadPoolExecutor(clients // 2) as ex:  # warm-up: connections, batch shapes
        list(ex.map(lambda k: worker(2 * k, False), range(clients // 2)))
    for label, with_hostile in [("alone", False)] + [(f"round {r + 1}", True) for r in range(rounds)]:
        n = clients // 2 if not with_hostile else clients  # the same number of valid callers
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            results = [
                x for xs in ex.map(lambda k, h=with_hostile: worker(k * (1 if h else 2), h), range(n)) for x in xs
            ]
        wall = time.perf_counter() - t0
        by = collections.Counter(code for _, code, _ in results)
        statuses.update(by)
        lat = [t for kind, code, t in results if kind.startswith("valid") and code == 200]
        row = {
            "phase": label,
            "requests": len(results),
            "statuses": dict(sorted(by.items())),
            "valid_failed": sum(1 for kind, code, _ in results if kind.startswith("valid") and code != 200),
            "valid_p50_ms": _pct(lat, 50),
            "valid_p99_ms": _pct(lat, 99),
            "wall_s": wall,
            "server_rss_mb": _rss_mb(info["pid"]),
        }
        report["rounds"].append(row)
        print(
            f"  {label:8s} {row['requests']:4d} requests in {wall:5.1f} s, statuses {row['statuses']}, "
            f"valid p50 {row['valid_p50_ms']:.0f} ms p99 {row['valid_p99_ms']:.0f} ms, "
            f"server RSS {row['server_rss_mb']:.0f} MB"
        )
    alone = report["rounds"][0]["valid_p99_ms"]
    worst = max(r["valid_p99_ms"] for r in report["rounds"][1:])
    report.update(
        served=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        errors_5xx=sum(v for k, v in statuses.items() if k >= 500 or k == 0),
        valid_failed=sum(r["valid_failed"] for r in report["rounds"]),
        p99_ratio=worst / alone,
    )
    print(
        f"  served {report['served']}, 5xx/no answer {report['errors_5xx']} (goal 0), valid failed "
        f"{report['valid_failed']}, valid p99 with hostile in flight / alone: {report['p99_ratio']:.2f}x"
    )
    return report


def rss_after_heavy(info: dict, n: int = 12) -> dict:
    """Server RSS (with its workers) before and 2 s after ``n`` heavy requests, one at a time: large
    bodies that are decoded then refused (10 MB garbage scan, 96 PNGs of 2048², a 16k-sample batch)."""
    heavy = ("v2-scan-garbage-10mb", "v1-96-black-2048px-pngs", "v2-garbage-2mb", "v1-prompts-huge")
    by_id = {c.id: c for c in cases()}
    bodies = [(by_id[i].path.format(m=info["name"]), by_id[i].content(), by_id[i].headers) for i in heavy]
    before, main_before = _rss_mb(info["pid"]), _rss_mb(info["pid"], children=False)
    peak = before
    with httpx.Client(timeout=300) as c:
        for k in range(n):
            path, content, headers = bodies[k % len(bodies)]
            c.post(info["url"] + path, content=content, headers=headers)
            peak = max(peak, _rss_mb(info["pid"]))
    time.sleep(2)
    out = {"before_mb": before, "peak_mb": peak, "after_mb": _rss_mb(info["pid"])}
    out["server_process_mb"] = (main_before, _rss_mb(info["pid"], children=False))  # without the render workers
    return out


def load(
    rounds: int, clients: int, per_client: int, extra: list[str], loops: int = 4, n: int = 40, trim: bool = False
) -> dict:
    from bench_serving import _png, _setup, _start, _stop

    from facet_lib.config import RenderConfig
    from facet_lib.io import read_scan
    from facet_lib.render import render_views

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        bundle, scan = _setup(d)
        views = render_views(read_scan(scan), RenderConfig())
        valid = {
            "views": ("/v1/models/{name}:predict", {"instances": [{"views": [_png(v) for v in views]}]}),
            "scans": (
                "/v1/models/{name}:predict",
                {"instances": [{"scan": base64.b64encode(scan.read_bytes()).decode(), "format": "wrl"}]},
            ),
        }
        info = _start(bundle, "bench-load", d, extra)
        try:
            print(f"  cores {os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}")
            report = {"hostile_loops": hostile_loops(info, valid, loops, 2, n) if loops else {}}
            rss = _rss_mb(info["pid"])
            report.update(mixed_rounds(info, valid, rounds, clients, per_client) if rounds else {})
            report["rss_mb_after_loops"] = rss
        finally:
            _stop(info)
        if trim:  # malloc_trim after large bodies (the default) against a server that never trims
            report["rss"] = {}
            for label, args in (("trim", []), ("no-trim", ["--trim_after_bytes", str(2**62)])):
                srv = _start(bundle, f"bench-rss-{label}", d, extra + args)
                try:
                    r = report["rss"][label] = rss_after_heavy(srv)
                finally:
                    _stop(srv)
                print(
                    f"  RSS {label:7s}: {r['before_mb']:.0f} MB before 12 heavy requests, peak {r['peak_mb']:.0f} MB, "
                    f"{r['after_mb']:.0f} MB 2 s after (server process alone: {r['server_process_mb'][0]:.0f} → "
                    f"{r['server_process_mb'][1]:.0f} MB)"
                )
        report["load_average"] = os.getloadavg()
        return report
