import asyncio
import base64
import io
import shutil

import numpy as np
import pytest
from fastapi import HTTPException
from kserve import InferInput, InferRequest
from kserve.errors import InvalidInput
from PIL import Image

from facet_lib.bundle import BundleError
from facet_lib.serving.batcher import MicroBatcher
from facet_lib.serving.predictor import FacetPredictor


def _png(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def pred(bundle):
    p = FacetPredictor("facet-vlm", str(bundle))
    assert p.load() and p.ready
    return p


def _scan(synth_root, ds="bu3dfe", pattern="*_HA04*_F3D.wrl"):
    return base64.b64encode(next((synth_root / ds).rglob(pattern)).read_bytes()).decode()


def test_v1_views_prompts_and_attention(pred, views):
    out = asyncio.run(
        pred.predict(
            {
                "instances": [{"views": [_png(v) for v in views[0]]}],
                "parameters": {"prompts": ["a happy face", "a bored face"], "return_attention": True},
            }
        )
    )
    p = out["predictions"][0]
    assert p["label"] in out["labels"] and abs(sum(p["probabilities"].values()) - 1) < 1e-4
    assert set(p["prompt_scores"]) == {"a happy face", "a bored face"}
    att = p["attention"]
    assert len(att["heatmaps"]) == 3 and abs(sum(att["per_view_share"]) - 1) < 1e-3


def test_v1_scan_and_sequence_rendered_server_side(pred, synth_root):
    seq = sorted((synth_root / "bu4dfe" / "F001" / "Happy").glob("*.wrl"))
    out = asyncio.run(
        pred.predict(
            {
                "instances": [
                    {"scan": _scan(synth_root), "format": "wrl"},
                    {"scan": _scan(synth_root, "bosphorus", "*_E_FEAR_0.bnt"), "format": "bnt"},
                    {"sequence": [base64.b64encode(f.read_bytes()).decode() for f in seq], "format": "wrl"},
                ]
            }
        )
    )
    assert len(out["predictions"]) == 3


def test_v2_tensor_and_bytes(pred, views, synth_root):
    t = InferInput("views", list(views.shape), "UINT8", views.flatten().tolist())
    res = asyncio.run(pred.predict(InferRequest("facet-vlm", [t], request_id="r1")))
    outs = {o.name: o for o in res.outputs}
    assert outs["label"].shape == [2] and outs["probabilities"].shape == [2, 6]
    s = InferInput("scan", [1], "BYTES", [_scan(synth_root)], parameters={"format": "wrl"})
    res = asyncio.run(pred.predict(InferRequest("facet-vlm", [s], request_id="r2")))
    assert res.outputs[0].data[0] in pred.engine.labels


def test_batched_equals_direct(pred, views):
    direct = pred.engine.infer(views)
    out = asyncio.run(pred.predict({"instances": [{"views": [_png(v) for v in views[i]]} for i in range(2)]}))
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
            "closing Shape",
        ),
        ({"instances": [{"views": []}] * 40}, 413, "exceed the limit of 32"),
        ({"instances": [{"sequence": ["QUJD"] * 200, "format": "obj"}]}, 413, "200 frames exceed the limit of 120"),
        ({"instances": [{"views": [_png(np.zeros((4000, 8, 3), np.uint8))] * 3}]}, 413, "exceeds the limit of 2048 px"),
        ({"instances": [{"scan": "QUJD", "format": "wrl"}], "parameters": {"mode": "x"}}, 400, "parameters.mode"),
        ({"instances": [{"scan": "QUJD", "format": "wrl"}], "parameters": {"prompts": "a"}}, 400, "prompts:"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(pred, payload, status, text):
    with pytest.raises((InvalidInput, HTTPException)) as e:
        asyncio.run(pred.predict(payload))
    got = e.value.status_code if isinstance(e.value, HTTPException) else 400
    msg = str(e.value.detail if isinstance(e.value, HTTPException) else e.value)
    assert got == status and text in msg, msg


def test_v2_wrong_shape_and_dtype(pred):
    bad = InferInput("views", [1, 2, 64, 64, 3], "UINT8", [0] * (2 * 64 * 64 * 3))
    with pytest.raises(InvalidInput, match=r"expected shape \[B, 3, H, W, 3\]"):
        asyncio.run(pred.predict(InferRequest("facet-vlm", [bad])))
    bad = InferInput("views", [1, 3, 2, 2, 3], "FP32", [0.0] * 36)
    with pytest.raises(InvalidInput, match="expected UINT8"):
        asyncio.run(pred.predict(InferRequest("facet-vlm", [bad])))


def test_tampered_bundle_refused(bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("anger", "angry"))
    with pytest.raises(BundleError, match="checksum mismatch"):
        FacetPredictor("facet-vlm", str(copy)).load()
