"""Serving settings: the model server's options and its request limits (used by facet_lib/serving)."""

from __future__ import annotations

from dataclasses import dataclass

from facet_lib.config.codec import setting

LIVENESS_PATH = "/v2/health/live"  # answers 200 while the process serves (a pod's livenessProbe)
READINESS_PATH = "/v2/models/{name}/ready"  # 200 once the model is loaded and warmed up


@dataclass(frozen=True)
class Limits:
    """Request limits: over a limit → 413 naming it. All inputs of a request count against one budget."""

    max_body_bytes: int = setting(64 * 2**20, "largest request body in bytes")
    max_json_bytes: int = setting(
        16 * 2**20, "largest JSON inference body in bytes (decompressed); larger tensors and scans: V2 binary extension"
    )
    max_json_elements: int = setting(1_000_000, "most array elements in a JSON inference body (counted before parsing)")
    max_instances: int = setting(32, "most samples per request, all V1 instances / V2 inputs together")
    max_scan_bytes: int = setting(32 * 2**20, "largest decoded scan file in bytes")
    max_vertices: int = setting(400_000, "most vertices of a scan or frame")
    max_frames: int = setting(120, "most frames per request, all sequences together")
    max_image_side: int = setting(2048, "largest side of an input view image")
    max_pixels: int = setting(
        32 * 3 * 512 * 512, "most decoded view pixels per request, all images together (read from the image headers)"
    )
    max_prompts: int = setting(16, "most open-vocabulary prompts per request")
    max_prompt_chars: int = setting(300, "longest prompt in characters (CLIP reads 77 tokens)")
    render_workers: int = setting(0, "processes rendering scans/sequences server-side (0: one per CPU core)")
    render_timeout_s: float = setting(30.0, "longest server-side rendering of one request, in s (then 413)")
    suspect_penalty_s: float = setting(
        10.0, "a connection whose request was refused (4xx) is suspect this many seconds (until a 200)"
    )
    suspect_slots: int = setting(1, "inference requests of suspect connections in flight at once; more get 429")
    suspect_hold_s: float = setting(
        1.0, "a 429 to a suspect connection is sent after this many seconds (a client looping without pause waits)"
    )
    trim_after_bytes: int = setting(4 * 2**20, "return freed memory to the OS (malloc_trim) after a body this large")


@dataclass(frozen=True)
class ServeConfig:
    model: str = setting("/mnt/models", "bundle: s3://…/name@production, s3://…/vNNNN, an s3:// prefix or a folder")
    name: str = setting("facet-vlm", "model name in the V1/V2 URLs")
    host: str = setting("127.0.0.1", "address to bind (0.0.0.0 inside a cluster pod)")
    port: int = setting(8080, "HTTP port")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N")
    digest: str = setting("", "expected bundle digest (SHA-256 of its CHECKSUMS.json, the registry's); empty: no check")
    max_batch: int = setting(16, "most requests the micro-batcher joins into one forward pass")
    max_wait_ms: float = setting(0.0, "extra wait for a micro-batch to fill, in ms (0: only what queued meanwhile)")
    max_connections: int = setting(64, "most concurrent connections; more get 503")
    keep_alive_s: float = setting(5.0, "idle keep-alive connections are closed after this many seconds")
    header_timeout_s: float = setting(10.0, "a client must send its request headers within this many seconds")
    body_timeout_s: float = setting(30.0, "a client must send its request body within this many seconds (else 408)")
    model_repository: bool = setting(False, "expose KServe's model-repository routes (load/unload; unauthenticated)")
    torch_threads: int = setting(1, "torch threads of the server process (0: torch's default, one per core)")
    ui: bool = setting(True, "serve the page for people at /ui/ (read-only; calls only the V1 route); --no-ui: off")
    limits: Limits = setting(Limits(), "request limits")
