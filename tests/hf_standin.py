"""A stand-in Hugging Face Hub on loopback, for huggingface_hub's own client (``HF_ENDPOINT=<url>``).

It answers what ``hf_hub_download`` asks (huggingface_hub 2.x ``file_download.py``): ``HEAD`` then ``GET`` of
``/{repo_id}/resolve/{revision}/{filename}``, with ``X-Repo-Commit`` (the commit the file is cached under),
``ETag`` (the cache's blob name) and ``Content-Length``; a missing file answers 404 with
``X-Error-Code: EntryNotFound`` (huggingface_hub raises EntryNotFoundError, open_clip then tries the next name).
No Xet headers: the client falls back to a plain HTTP download. Every request is recorded.

``vit_b16_openai`` writes random weights with the exact names and shapes of open_clip's ``ViT-B-16`` (what the
``openai`` tag's ``open_clip_model.safetensors`` holds, in float16 as published): a real-shaped stand-in, never
a pretrained result.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OPENAI_REPO = "timm/vit_base_patch16_clip_224.openai"  # open_clip's hf_hub entry for ViT-B-16 / openai
OPENAI_FILE = "open_clip_model.safetensors"  # the safetensors name open_clip asks for first


def vit_b16_openai(path: Path, seed: int = 0) -> Path:
    """Random float16 ViT-B-16 weights (open_clip's names and shapes), as a safetensors file."""
    if path.exists():
        return path
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-16")
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


class StandInHub:
    """``with StandInHub({"org/name": {"file": Path}}) as hub: hub.url, hub.requests``."""

    def __init__(self, repos: dict[str, dict[str, Path]]):
        self.repos, self.requests = repos, []
        self._etags = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _file(self) -> Path | None:
                hub.requests.append((self.command, self.path))
                parts = self.path.split("?")[0].lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return None
                repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                return hub.repos.get(repo, {}).get(name)

            def _head(self, f: Path | None) -> bool:
                if f is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(f.stat().st_size))
                self.send_header("ETag", f'"{hub.etag(f)}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.end_headers()
                return True

            def do_HEAD(self):
                self._head(self._file())

            def do_GET(self):
                f = self._file()
                if self._head(f):
                    with open(f, "rb") as src:
                        shutil.copyfileobj(src, self.wfile, 1 << 20)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def etag(self, f: Path) -> str:
        if f not in self._etags:
            self._etags[f] = hashlib.sha256(f.read_bytes()).hexdigest()
        return self._etags[f]

    def file_requests(self) -> list[tuple[str, str]]:
        """Requests for repository files (``/resolve/``), leaving out the client's other calls (e.g.
        huggingface_hub's daily ``/api/agent-harnesses`` look-up)."""
        return [r for r in self.requests if "/resolve/" in r[1]]

    def downloads(self) -> list[str]:
        """Paths of the files sent (GET answered 200)."""
        return [p for m, p in self.requests if m == "GET" and self._served(p)]

    def _served(self, p: str) -> bool:
        parts = p.split("?")[0].lstrip("/").split("/")
        return len(parts) >= 5 and "/".join(parts[4:]) in self.repos.get("/".join(parts[:2]), {})

    def __enter__(self) -> StandInHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
