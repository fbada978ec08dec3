"""The predictor in-process: load/warm-up, V1 and V2 decoding, server-side rendering, batching, errors."""

import asyncio
import base64
import shutil

import numpy as np
import pytest
from kserve import InferInput, InferRequest

from facet_lib.bundle_format import BundleError
from facet_lib.config import Limits, ServeConfig
from facet_lib.serving.batcher import MicroBatcher
from facet_lib.serving.decoding import RequestError
from facet_lib.serving.predictor import FacetPredictor
from tests.serving.conftest import png_b64


@pytest.fixture(scope="module")
def pred(bundle):
    p = FacetPredictor(ServeConfig(model=str(bundle), limits=Limits(render_workers=1, render_timeout_s=60)))
    assert p.load() and p.ready
    yield p
    p.pool.close()


def test_load_warms_model_and_renderers(pred):
    assert set(pred.warmup_s) == {"model", "renderers"}
    assert pred.pool.size == 1 and all(w.proc.is_alive() for w in pred.pool._all)


def test_v1_views_prompts_and_attention(pred, views):
    out = asyncio.run(
        pred.predict(
            {
                "instances": [{"views": [png_b64(v) for v in views[0]]}],
                "parameters": {"prompts": ["a happy face", "a bored face"], "return_attention": True},
            }
        )
    )
    p = out["predictions"][0]
    assert p["label"] in out["labels"] and abs(sum(p["probabilities"].values()) - 1) < 1e-4
    assert set(p["prompt_scores"]) == {"a happy face", "a bored face"}
    att = p["attention"]
    assert len(att["heatmaps"]) == 3 and abs(sum(att["per_view_share"]) - 1) < 1e-3


def test_v1_scan_and_sequence_rendered_server_side(pred, synth_root, scan_b64):
    seq = sorted((synth_root / "bu4dfe" / "F001" / "Happy").glob("*.wrl"))
    bnt = next((synth_root / "bosphorus").rglob("*_E_FEAR_0.bnt")).read_bytes()
    out = asyncio.run(
        pred.predict(
            {
                "instances": [
                    {"scan": scan_b64, "format": "wrl"},
                    {"scan": base64.b64encode(bnt).decode(), "format": "bnt"},
                    {"sequence": [base64.b64encode(f.read_bytes()).decode() for f in seq], "format": "wrl"},
                ]
            }
        )
    )
    assert len(out["predictions"]) == 3


def test_served_scan_equals_in_process_render(pred, synth_root):
    from facet_lib.io import read_scan
    from facet_lib.render import render_views

    f = next((synth_root / "bu3dfe").rglob("*_SU04*_F3D.wrl"))
    direct = pred.engine.infer(render_views(read_scan(f), pred.engine.render)[None])[0]
    served = asyncio.run(
        pred.predict({"instances": [{"scan": base64.b64encode(f.read_bytes()).decode(), "format": "wrl"}]})
    )
    got = served["predictions"][0]
    assert got["label"] == direct["label"]
    np.testing.assert_allclose(list(got["probabilities"].values()), list(direct["probabilities"].values()), atol=2e-3)


def test_v2_tensor_bytes_and_request_level_format(pred, views, scan_b64):
    t = InferInput("views", list(views.shape), "UINT8", views.flatten().tolist())
    res = asyncio.run(pred.predict(InferRequest("facet-vlm", [t], request_id="r1")))
    outs = {o.name: o for o in res.outputs}
    assert outs["label"].shape == [2] and outs["probabilities"].shape == [2, 6]
    s = InferInput("scan", [1], "BYTES", [scan_b64])
    res = asyncio.run(pred.predict(InferRequest("facet-vlm", [s], request_id="r2", parameters={"format": "wrl"})))
    assert res.outputs[0].data[0] in pred.engine.labels
    p = {"prompts": '["a happy face", "a sad face"]', "format": "wrl"}
    res = asyncio.run(pred.predict(InferRequest("facet-vlm", [s], parameters=p)))
    assert {o.name for o in res.outputs} == {"label", "probabilities", "details"}


def test_batched_equals_direct(pred, views):
    direct = pred.engine.infer(views)
    out = asyncio.run(pred.predict({"instances": [{"views": [png_b64(v) for v in views[i]]} for i in range(2)]}))
    for a, b in zip(direct, out["predictions"]):
        assert a["label"] == b["label"]
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=2e-3)


def test_micro_batcher_merges_concurrent_callers():
    calls = []

    def fn(batch):
        calls.append(len(batch))
        return [int(x) for x in batch[:, 0]]

    async def main():
        b = MicroBatcher(fn, max_batch=8, max_wait_ms=50)
        res = await asyncio.gather(*[b.submit(np.full((1, 1), i)) for i in range(6)])
        return res, b.batches

    res, batches = asyncio.run(main())
    assert res == [[i] for i in range(6)] and batches == 1 and calls == [6]


@pytest.mark.parametrize(
    "payload, status, text",
    [
        ({"inst": []}, 400, "expected a JSON object with an 'instances' list"),
        ({"instances": []}, 400, "at least one instance"),
        ({"instances": [{"views": ["a", "b"]}]}, 400, "expected 3 base64 images"),
        ({"instances": [{"views": ["!!", "a", "b"]}]}, 400, "instances[0].views[0]: not valid base64"),
        ({"instances": [{"views": [base64.b64encode(b"notanimage").decode()] * 3}]}, 400, "undecodable image"),
        ({"instances": [{"scan": "QUJD", "format": "stl"}]}, 400, "format: expected one of"),
        ({"instances": [{"scan": "QUJD"}]}, 400, "format: required"),
        (
            {"instances": [{"scan": base64.b64encode(b"#VRML V2.0 utf8\nShape {").decode(), "format": "wrl"}]},
            400,
            "instances[0]: scan",
        ),
        ({"instances": [{"views": []}] * 40}, 413, "exceed the limit of 32"),
        ({"instances": [{"sequence": ["QUJD"] * 200, "format": "obj"}]}, 413, "200 sequence frames"),
        ({"instances": [{"views": [png_b64(np.zeros((4000, 8, 3), np.uint8))] * 3}]}, 413, "limit of 2048 px"),
        ({"instances": [{"scan": "QUJD", "format": "wrl"}], "parameters": {"mode": "x"}}, 400, "parameters.mode"),
        ({"instances": [{"scan": "QUJD", "format": "wrl"}], "parameters": {"prompts": "a"}}, 400, "prompts:"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(pred, payload, status, text):
    with pytest.raises(RequestError) as e:
        asyncio.run(pred.predict(payload))
    assert e.value.status == status and text in str(e.value), str(e.value)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no CHECKSUMS.json: not a FACET-VLM bundle"):
        FacetPredictor(ServeConfig(model=str(tmp_path))).load()


def test_tampered_bundle_refused(bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("anger", "angry"))
    with pytest.raises(BundleError, match="checksum mismatch"):
        FacetPredictor(ServeConfig(model=str(copy))).load()


def test_micro_batcher_without_wait_takes_what_queued_during_the_last_batch():
    import time

    calls = []

    def fn(batch):
        calls.append(len(batch))
        time.sleep(0.3)
        return list(range(len(batch)))

    async def main():
        b = MicroBatcher(fn, max_batch=8, max_wait_ms=0)
        first = asyncio.ensure_future(b.submit(np.zeros((1, 1))))
        await asyncio.sleep(0.1)  # the first batch is running: these five queue up behind it
        rest = [asyncio.ensure_future(b.submit(np.zeros((1, 1)))) for _ in range(5)]
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    assert calls == [1, 5]


def test_pinned_digest_mismatch_refused(bundle):
    with pytest.raises(BundleError, match="differs from the expected"):
        FacetPredictor(ServeConfig(model=str(bundle), digest="0" * 64)).load()
