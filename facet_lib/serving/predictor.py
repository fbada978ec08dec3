"""The KServe predictor: ``load()`` fetches and verifies a bundle; ``predict()`` answers V1 and V2.

V1 ``{"instances": [...], "parameters": {...}}`` — each instance is one of
``{"views": [png_b64 front, left, right]}``, ``{"scan": b64, "format": "wrl|obj|ply|bnt"}`` or
``{"sequence": [b64 frame, ...], "format": ...}``. Parameters (optional): ``prompts`` (open-vocabulary
scores), ``return_attention`` (MTGF attention over the views), ``mode`` (class_conditional | label_free).
V2 — input ``views`` UINT8 [B, 3, H, W, C], or BYTES ``scan`` [B] (base64 files) or ``sequence`` [T]
(one sequence's base64 frames), with the file format in the input's ``parameters.format``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import numpy as np
from fastapi import HTTPException
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput, ModelMissingError

from facet_lib import storage
from facet_lib.bundle import FILES
from facet_lib.errors import FacetError
from facet_lib.serving.batcher import MicroBatcher
from facet_lib.serving.engine import Engine
from facet_lib.serving.inputs import (
    Job,
    Limits,
    RequestError,
    b64decode,
    check_views_array,
    parse_prompts,
    parse_v1_instance,
    render_scan,
    render_scan_sequence,
)

MODES = ("class_conditional", "label_free")


def fetch_bundle(model_uri: str, cache_dir: str | Path) -> Path:
    """A local bundle folder for a registry reference (s3://…/name@alias, …/vNNNN), an s3:// bundle
    prefix, a local folder, or KServe's /mnt/models."""
    if storage.is_s3(model_uri):
        from facet_lib import registry

        if "@" in model_uri or storage.get_json(f"{model_uri.rstrip('/')}/_COMPLETE") is not None:
            return registry.fetch(model_uri, Path(cache_dir))
        return storage.download_prefix(model_uri, Path(cache_dir), only=list(FILES) + ["CHECKSUMS.json"])
    p = Path(model_uri)
    if not (p / "CHECKSUMS.json").exists():
        raise ModelMissingError(str(p))
    return p


class FacetPredictor(Model):
    def __init__(
        self,
        name: str,
        model_uri: str = "/mnt/models",
        device: str = "auto",
        limits: Limits = Limits(),
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
    ):
        super().__init__(name)
        self.model_uri, self.device, self.limits = model_uri, device, limits
        self.max_batch, self.max_wait_ms = max_batch, max_wait_ms
        self.engine: Engine | None = None
        self.batcher: MicroBatcher | None = None
        self._renders: asyncio.Semaphore | None = None
        self._cache = tempfile.mkdtemp(prefix="facet-bundle-")

    def load(self) -> bool:
        bundle = fetch_bundle(self.model_uri, self._cache)
        self.engine = Engine(bundle, self.device)  # verifies every checksum; safetensors only
        size = self.engine.render.size
        self.engine.infer(np.zeros((1, 3, size, size, 3), np.uint8))  # warm-up before reporting ready
        self.batcher = MicroBatcher(self.engine.infer, self.max_batch, self.max_wait_ms)
        self.ready = True
        return self.ready

    # -- metadata (V2 GET /v2/models/<name>) ---------------------------------------------------------
    def get_input_types(self) -> list[dict]:
        s = self.engine.render.size if self.engine else -1
        return [
            {"name": "views", "datatype": "UINT8", "shape": [-1, 3, s, s, 3]},
            {"name": "scan", "datatype": "BYTES", "shape": [-1]},
            {"name": "sequence", "datatype": "BYTES", "shape": [-1]},
        ]

    def get_output_types(self) -> list[dict]:
        n = len(self.engine.labels) if self.engine else -1
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, n]},
        ]

    # -- request handling --------------------------------------------------------------------------
    @staticmethod
    def _raise(e: RequestError):
        if e.status == 413:
            raise HTTPException(status_code=413, detail=str(e))
        raise InvalidInput(str(e))

    def _parse_v2(self, req: InferRequest) -> tuple[list[Job], dict]:
        if not req.inputs:
            raise RequestError("inputs: expected one input named 'views', 'scan' or 'sequence'")
        size = self.engine.render.size
        jobs: list[Job] = []
        for inp in req.inputs:
            fmt = (inp.parameters or {}).get("format") if isinstance(inp.parameters, dict) else None
            if inp.name == "views":
                if inp.datatype != "UINT8":
                    raise RequestError(f"inputs[views].datatype: expected UINT8, got {inp.datatype}")
                try:
                    arr = np.asarray(inp.data, dtype=np.uint8).reshape(inp.shape)
                except (ValueError, TypeError):
                    raise RequestError(f"inputs[views]: data does not match shape {inp.shape}") from None
                if arr.shape[0] > self.limits.max_instances:
                    raise RequestError(
                        f"inputs[views]: batch {arr.shape[0]} exceeds the limit of {self.limits.max_instances}", 413
                    )
                views = check_views_array(arr, "inputs[views]", size)
                jobs += [Job(views=v) for v in views]
            elif inp.name in ("scan", "sequence"):
                if inp.datatype != "BYTES":
                    raise RequestError(f"inputs[{inp.name}].datatype: expected BYTES, got {inp.datatype}")
                if not isinstance(fmt, str):
                    raise RequestError(f"inputs[{inp.name}].parameters.format: required (wrl, obj, ply or bnt)")
                items = [x.decode() if isinstance(x, bytes) else x for x in list(inp.data)]
                files = [b64decode(x, f"inputs[{inp.name}].data[{k}]") for k, x in enumerate(items)]
                if inp.name == "scan":
                    jobs += [Job(scan=(f, fmt)) for f in files]
                else:
                    if len(files) > self.limits.max_frames:
                        raise RequestError(
                            f"inputs[sequence]: {len(files)} frames exceed the limit of {self.limits.max_frames}", 413
                        )
                    jobs.append(Job(sequence=(files, fmt)))
            else:
                raise RequestError(f"inputs[{inp.name}]: unknown input (expected views, scan or sequence)")
        params = req.parameters if isinstance(req.parameters, dict) else {}
        return jobs, params

    def _parse_v1(self, payload: dict) -> tuple[list[Job], dict]:
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise RequestError("body: expected a JSON object with an 'instances' list")
        inst = payload["instances"]
        if not inst:
            raise RequestError("instances: expected at least one instance")
        if len(inst) > self.limits.max_instances:
            raise RequestError(f"instances: {len(inst)} exceed the limit of {self.limits.max_instances}", 413)
        size = self.engine.render.size
        params = payload.get("parameters") or {}
        if not isinstance(params, dict):
            raise RequestError("parameters: expected an object")
        return [parse_v1_instance(x, i, size, self.limits) for i, x in enumerate(inst)], params

    async def _views(self, jobs: list[Job]) -> np.ndarray:
        """Render scans / sequences server-side (bounded concurrency), in worker threads."""
        if self._renders is None:
            self._renders = asyncio.Semaphore(self.limits.max_concurrent_renders)
        loop = asyncio.get_running_loop()
        cfg, out = self.engine.render, []
        for i, j in enumerate(jobs):
            if j.views is not None:
                out.append(j.views)
                continue
            async with self._renders:
                if j.scan is not None:
                    out.append(
                        await loop.run_in_executor(None, render_scan, *j.scan, f"instances[{i}].scan", cfg, self.limits)
                    )
                else:
                    frames, fmt = j.sequence
                    out.append(
                        await loop.run_in_executor(
                            None, render_scan_sequence, frames, fmt, f"instances[{i}].sequence", cfg, self.limits
                        )
                    )
        return np.stack(out)

    async def predict(self, payload, headers=None, response_headers=None):
        v2 = isinstance(payload, InferRequest)
        try:
            jobs, params = self._parse_v2(payload) if v2 else self._parse_v1(payload)
            prompts = parse_prompts(params.get("prompts"), self.limits)
            mode = params.get("mode", "class_conditional")
            if mode not in MODES:
                raise RequestError(f"parameters.mode: expected one of {MODES}, got {mode!r}")
            attention = bool(params.get("return_attention", False))
            views = await self._views(jobs)
        except RequestError as e:
            self._raise(e)
        except FacetError as e:  # a scan the readers refuse is the caller's mistake
            raise InvalidInput(str(e)) from None
        if prompts or attention or mode != "class_conditional":
            results = await asyncio.get_running_loop().run_in_executor(
                None, self.engine.infer, views, prompts, mode, attention
            )
        else:
            results = await self.batcher.submit(views)
        if not v2:
            return {"predictions": results, "labels": self.engine.labels}
        probs = np.array([[r["probabilities"][lab] for lab in self.engine.labels] for r in results], np.float32)
        outputs = [
            InferOutput("label", [len(results)], "BYTES", [r["label"] for r in results]),
            InferOutput("probabilities", list(probs.shape), "FP32", probs.flatten().tolist()),
        ]
        extra = {k: [r.get(k) for r in results] for k in ("prompt_scores", "attention") if k in results[0]}
        if extra:
            outputs.append(
                InferOutput(
                    "details",
                    [len(results)],
                    "BYTES",
                    [json.dumps({k: v[i] for k, v in extra.items()}) for i in range(len(results))],
                )
            )
        return InferResponse(
            response_id=payload.id or "",
            model_name=self.name,
            infer_outputs=outputs,
            parameters={"labels": json.dumps(self.engine.labels)},
        )
