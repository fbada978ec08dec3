"""A stub of the KFP v2beta1 REST API on loopback that records every request body and its headers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Stub:
    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        self.headers: list[dict[str, str]] = []  # lower-case names
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, body: dict, code: int = 200):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else {}
                stub.requests.append((method, self.path, body))
                stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                path = self.path.split("?")[0]
                if path.endswith("/healthz"):
                    return self._reply({"commit_sha": "stub", "tag_name": "2.5.0", "multi_user": False})
                if path.endswith("/experiments") and method == "GET":
                    return self._reply({"experiments": [], "total_size": 0})
                if path.endswith("/experiments") and method == "POST":
                    return self._reply({"experiment_id": "exp-1", "display_name": body.get("display_name")})
                if path.endswith("/runs") and method == "POST":
                    return self._reply(
                        {"run_id": "run-1", "display_name": body.get("display_name"), "state": "PENDING"}
                    )
                if path.endswith("/recurringruns") and method == "POST":
                    return self._reply({"recurring_run_id": "rr-1", "display_name": body.get("display_name")})
                return self._reply({})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
