"""Every HTTP route SeaweedFS registers outside its S3 API (read from seaweedfs/seaweedfs 4.44 source,
binary 4.48: weed/server/master_server.go, weed/command/master.go, weed/server/volume_server.go,
weed/server/filer_server.go, weed/admin/handlers/admin_handlers.go, weed/s3api/s3api_server.go), and a
probe that sends each of them, unauthenticated, to every TCP port a process listens on."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import psutil

ADMIN_ROUTES = [
    # master (weed/server/master_server.go; /cluster/* in weed/command/master.go)
    ("GET", "/"),
    ("GET", "/ui/index.html"),
    ("GET", "/dir/assign"),
    ("GET", "/dir/lookup?volumeId=1"),
    ("GET", "/dir/status"),
    ("GET", "/col/delete?collection={bucket}"),
    ("GET", "/vol/grow?count=1"),
    ("GET", "/vol/status"),
    ("GET", "/vol/vacuum"),
    ("POST", "/submit"),
    ("GET", "/collection/info?collection={bucket}"),
    ("GET", "/cluster/status"),
    ("GET", "/cluster/healthz"),
    ("GET", "/raft/stats"),
    ("GET", "/stats/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/1,01"),
    # volume (weed/server/volume_server.go, volume_server_handlers.go)
    ("GET", "/status"),
    ("GET", "/stats/disk"),
    ("GET", "/stats/counter"),
    ("GET", "/stats/memory"),
    ("POST", "/1,01"),
    ("DELETE", "/1,01"),
    # filer (weed/server/filer_server.go)
    ("GET", "/buckets/"),
    ("GET", "/buckets/{bucket}/"),
    ("POST", "/buckets/{bucket}/evil"),
    ("GET", "/.tus/"),
    ("GET", "/metrics"),
    # admin server (weed/admin/handlers/admin_handlers.go)
    ("GET", "/health"),
    ("GET", "/login"),
    ("GET", "/admin"),
    ("GET", "/api/cluster/topology"),
    ("GET", "/cluster/masters"),
    ("GET", "/cluster/volume-servers"),
    ("GET", "/object-store/buckets"),
    ("GET", "/files"),
]


def listening_ports(pid: int) -> set[int]:
    """The TCP ports ``pid`` listens on: its own sockets (psutil) when it shares this network, else every
    LISTEN socket of its private network namespace (/proc/PID/net/tcp{,6}: only its processes live there)."""
    if os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net"):
        return {c.laddr.port for c in psutil.Process(pid).connections(kind="inet") if c.status == "LISTEN"}
    ports = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A":  # TCP_LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def probe(port: int, bucket: str) -> dict[tuple[str, str], int | str]:
    """Send every admin route to 127.0.0.1:port without credentials: status code, or the refusal."""
    out: dict[tuple[str, str], int | str] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        for method, path in ADMIN_ROUTES:
            try:
                out[(method, path)] = c.request(method, path.format(bucket=bucket), content=b"x").status_code
            except httpx.TransportError as e:  # connection refused/reset, or not HTTP at all (gRPC)
                out[(method, path)] = type(e).__name__
    return out


def answered(results: dict[tuple[str, str], int | str]) -> set[tuple[str, str]]:
    """The routes that were not refused: any 1xx-3xx answer (a 4xx/5xx or no HTTP answer is a refusal)."""
    return {r for r, s in results.items() if isinstance(s, int) and s < 400}
