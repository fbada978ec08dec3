"""The KServe predictor: ``load()`` fetches and verifies a bundle, warms the model and the renderers;
``predict()`` answers V1 and V2 (decoding in ``inputs.py``, server-side rendering in ``render_pool.py``).

V1 ``{"instances": [...], "parameters": {...}}`` — each instance is one of
``{"views": [png_b64 front, left, right]}``, ``{"scan": b64, "format": "wrl|obj|ply|bnt"}`` or
``{"sequence": [b64 frame, ...], "format": ...}``. Parameters (optional): ``prompts`` (open-vocabulary
scores), ``return_attention`` (MTGF attention over the views), ``return_views`` (the views classified, as
base64 PNGs front/left/right: the server's rendering of a scan or sequence), ``mode`` (class_conditional |
label_free).
V2 — input ``views`` UINT8 [B, 3, H, W, C], or BYTES ``scan`` [B] or ``sequence`` [T] (one sequence's
frames): each element the file's raw bytes in the binary tensor extension, base64 text in JSON; the file
format in the input's or the request's ``parameters.format``; prompts as a BYTES input ``prompts`` [P] or
``parameters.prompts`` (a JSON array in a string). Outputs ``label``, ``probabilities``, ``details``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model

from facet_lib import storage
from facet_lib.bundle_format import ALL_FILES
from facet_lib.config import ServeConfig
from facet_lib.serving.batcher import MicroBatcher
from facet_lib.serving.decoding import views_png_b64
from facet_lib.serving.engine import Engine
from facet_lib.serving.inputs import Request, parse_v1, parse_v2, v2_inputs
from facet_lib.serving.render_pool import RenderPool
from facet_lib.serving.wire import Output

log = logging.getLogger("facet_lib.serving")
OUTPUTS = ("label", "probabilities", "details")  # V2 output names (details: JSON per sample)
DETAIL_KEYS = ("prompt_scores", "attention", "views")


def fetch_bundle(model_uri: str, cache_dir: str | Path) -> Path:
    """A local bundle folder for a registry reference (s3://…/name@alias, …/vNNNN; the registry checks
    completeness and the digest), an s3:// bundle prefix, a local folder, or KServe's /mnt/models.
    Every checksum is verified when the bundle is loaded."""
    if storage.is_s3(model_uri):
        if "@" in model_uri or re.search(r"/v\d{4,}/?$", model_uri):
            from facet_lib import registry

            return registry.fetch(model_uri, Path(cache_dir))
        return storage.download_prefix(model_uri, Path(cache_dir), only=list(ALL_FILES))
    return Path(model_uri)


class FacetPredictor(Model):
    def __init__(self, config: ServeConfig = ServeConfig()):
        super().__init__(config.name)
        self.config, self.limits = config, config.limits
        self.engine: Engine | None = None
        self.batcher: MicroBatcher | None = None
        self.pool: RenderPool | None = None
        self.warmup_s: dict[str, float] = {}
        self.bundle_dir: Path | None = None
        self._cache = tempfile.mkdtemp(prefix="facet-bundle-")

    def load(self) -> bool:
        """Fetch, verify and load the bundle, then warm the model and every render worker: ready means ready."""
        t = time.perf_counter()
        bundle = self.bundle_dir = fetch_bundle(self.config.model, self._cache)
        # verifies every checksum (and the digest the deployment pinned); safetensors only
        self.engine = Engine(bundle, self.config.device, self.config.digest or None)
        size = self.engine.render.size
        self.engine.infer(np.zeros((1, 3, size, size, 3), np.uint8))
        self.warmup_s["model"] = time.perf_counter() - t
        self.pool = RenderPool(self.engine.render, self.limits)
        self.warmup_s["renderers"] = self.pool.start()
        self.batcher = MicroBatcher(self.engine.infer, self.config.max_batch, self.config.max_wait_ms)
        self.ready = True
        return self.ready

    def stop(self) -> None:
        if self.pool:
            self.pool.close()
        super().stop()

    # -- metadata (V2 GET /v2/models/<name>) ---------------------------------------------------------
    def get_input_types(self) -> list[dict]:
        return v2_inputs(self.engine.render.size if self.engine else -1)  # one per request kind, and prompts

    def get_output_types(self) -> list[dict]:
        n = len(self.engine.labels) if self.engine else -1
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, n]},
        ]

    # -- request handling --------------------------------------------------------------------------
    async def _views(self, req: Request) -> np.ndarray:
        todo = [j for j in req.jobs if j.needs_render]
        rendered = iter(await self.pool.render(todo)) if todo else iter(())
        return np.stack([next(rendered) if j.needs_render else j.views for j in req.jobs])

    async def predict(self, payload, headers=None, response_headers=None):
        """KServe's entry (in-process callers; the HTTP routes decode in ``protocol.py`` and call ``run``).
        RequestError (→ 400/413 with ``{"error": ...}``) for every caller mistake; see the module docstring."""
        v2 = isinstance(payload, InferRequest)
        size = self.engine.render.size
        loop = asyncio.get_running_loop()  # decoding (PNG, large tensors) runs off the event loop
        req = await loop.run_in_executor(None, parse_v2 if v2 else parse_v1, payload, size, self.limits)
        results = await self.run(req)
        if not v2:
            return {"predictions": results, "labels": self.engine.labels}
        outputs = [
            InferOutput(o.name, o.shape, o.datatype, o.data if isinstance(o.data, list) else o.data.ravel().tolist())
            for o in self.v2_outputs(results)
        ]
        return InferResponse(
            response_id=payload.id or "",
            model_name=self.name,
            infer_outputs=outputs,
            parameters={"labels": json.dumps(self.engine.labels)},
            use_binary_outputs=req.binary_output,
        )

    async def run(self, req: Request, timings: dict | None = None) -> list[dict]:
        """A decoded request → one result dict per sample (rendering, batching, prompts, return_views);
        ``timings`` (if given) gets the seconds spent rendering and inferring."""
        loop = asyncio.get_running_loop()
        t = time.perf_counter()
        views = await self._views(req)
        t1 = time.perf_counter()
        if req.prompts or req.attention or req.mode != "class_conditional":
            results = await loop.run_in_executor(None, self.engine.infer, views, req.prompts, req.mode, req.attention)
        else:
            results = await self.batcher.submit(views)
        if timings is not None:
            timings.update(render=t1 - t, infer=time.perf_counter() - t1)
        if req.return_views:
            pngs = await loop.run_in_executor(None, views_png_b64, views)
            for r, p in zip(results, pngs):
                r["views"] = p
        return results

    def v2_outputs(self, results: list[dict]) -> list[Output]:
        """V2 outputs of ``results``: label, probabilities and, with prompts/attention/views, details (JSON)."""
        labels = self.engine.labels
        probs = np.array([[r["probabilities"][lab] for lab in labels] for r in results], np.float32)
        outputs = [
            Output("label", [len(results)], "BYTES", [r["label"] for r in results]),
            Output("probabilities", list(probs.shape), "FP32", probs),
        ]
        extra = {k: [r.get(k) for r in results] for k in DETAIL_KEYS if k in results[0]}
        if extra:
            details = [json.dumps({k: v[i] for k, v in extra.items()}) for i in range(len(results))]
            outputs.append(Output("details", [len(results)], "BYTES", details))
        return outputs
