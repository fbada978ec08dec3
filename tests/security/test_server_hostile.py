"""Hostile and careless requests against a real server on 127.0.0.1: every one a 4xx with a short
``{"error": ...}`` naming the field, no 5xx, no object addresses, and the server keeps answering.
The adversarial inputs are generated here, never committed."""

import base64
import json
import os
import re

import httpx
import numpy as np
import pytest

V2 = "/v2/models/facet-vlm/infer"
V1 = "/v1/models/facet-vlm:predict"


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def tri_shape() -> str:
    return (
        "Shape { geometry IndexedFaceSet { coord Coordinate { point [0 0 0, 1 0 0, 0 1 0] } coordIndex [0 1 2 -1] } }"
    )


def wrl_billion_laughs(levels: int = 30) -> str:
    lines = ["#VRML V2.0 utf8", f"DEF L0 Transform {{ children [ {tri_shape()} ] }}"]
    lines += [f"DEF L{i} Transform {{ children [ USE L{i - 1} USE L{i - 1} ] }}" for i in range(1, levels)]
    return "\n".join(lines)


def wrl_cycle() -> str:
    return f"#VRML V2.0 utf8\nDEF A Transform {{ children [ {tri_shape()} USE A ] }}"


def wrl_deep(depth: int = 20000) -> str:
    return "#VRML V2.0 utf8\n" + "Transform { children [ " * depth + tri_shape() + " ] }" * depth


def wrl_many_faces(n: int = 200_000) -> str:
    idx = " ".join(["0 1 2 -1"] * n)
    return f"#VRML V2.0 utf8\n{tri_shape().replace('[0 1 2 -1]', '[' + idx + ']')}"


def views_input(shape, data=None, datatype="UINT8", name="views"):
    if data is None:
        data = [0] * int(np.prod(shape)) if all(isinstance(d, int) and d > 0 for d in shape) else []
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def scan_input(items, fmt="wrl"):
    return {"name": "scan", "shape": [len(items)], "datatype": "BYTES", "data": items, "parameters": {"format": fmt}}


ONE = [1, 3, 2, 2, 3]
GARBAGE = b64(os.urandom(8 * 2**20))  # ~10.7 MB of base64

# (id, path, JSON body, expected status, text the error must contain)
CASES = [
    ("uint8-256", V2, {"inputs": [views_input(ONE, [256] * 36)]}, 400, "outside the UINT8 range"),
    ("uint8-neg", V2, {"inputs": [views_input(ONE, [-1] * 36)]}, 400, "outside the UINT8 range"),
    ("uint8-float", V2, {"inputs": [views_input(ONE, [1.5] * 36)]}, 400, "expected integers 0-255"),
    ("uint8-strings", V2, {"inputs": [views_input(ONE, ["a"] * 36)]}, 400, "inputs[views].data"),
    ("shape-empty", V2, {"inputs": [views_input([], [])]}, 400, "inputs[views].shape"),
    ("shape-zero-batch", V2, {"inputs": [views_input([0, 3, 2, 2, 3], [])]}, 400, "positive integer dimensions"),
    ("shape-minus-one", V2, {"inputs": [views_input([-1, 3, 2, 2, 3], [0] * 36)]}, 400, "positive integer"),
    ("shape-mismatch", V2, {"inputs": [views_input(ONE, [0] * 35)]}, 400, "do not match shape"),
    ("huge-side", V2, {"inputs": [views_input([1, 3, 4096, 4096, 3], [])]}, 413, "exceed 2048 px"),
    ("wrong-dtype", V2, {"inputs": [views_input(ONE, [0.0] * 36, "FP32")]}, 400, "expected UINT8"),
    ("unknown-input", V2, {"inputs": [views_input(ONE, name="x" * 5000)]}, 400, "unknown input"),
    ("no-inputs", V2, {"inputs": []}, 400, "inputs"),
    ("only-prompts", V2, {"inputs": [{"name": "prompts", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}, 400, ""),
    ("batch-over-limit", V2, {"inputs": [views_input([32, 3, 2, 2, 3])] * 20}, 413, "exceed the limit of 32"),
    ("scans-over-limit", V2, {"inputs": [scan_input(["QUJD"] * 40)]}, 413, "exceed the limit of 32"),
    ("scan-list-empty", V2, {"inputs": [scan_input([])]}, 400, "inputs[scan].shape"),
    (
        "scan-no-format",
        V2,
        {"inputs": [{"name": "scan", "shape": [1], "datatype": "BYTES", "data": ["QUJD"]}]},
        400,
        "parameters.format",
    ),
    ("scan-garbage-10mb", V2, {"inputs": [scan_input([GARBAGE])]}, 400, "inputs[scan][0]"),
    ("scan-billion-laughs", V2, {"inputs": [scan_input([b64(wrl_billion_laughs())])]}, 4, "inputs[scan][0]"),
    ("scan-def-use-cycle", V2, {"inputs": [scan_input([b64(wrl_cycle())])]}, 400, "inputs[scan][0]"),
    ("scan-deep-nesting", V2, {"inputs": [scan_input([b64(wrl_deep())])]}, 400, "inputs[scan][0]"),
    ("scan-200k-faces-3-vertices", V2, {"inputs": [scan_input([b64(wrl_many_faces())])]}, 4, "inputs[scan][0]"),
    ("bnt-garbage", V2, {"inputs": [scan_input([b64(os.urandom(5000))], "bnt")]}, 400, "inputs[scan][0]"),
    ("sequence-one-frame", V2, {"inputs": [{**scan_input(["QUJD"]), "name": "sequence"}]}, 400, "at least 2"),
    (
        "v2-prompts-huge",
        V2,
        {"inputs": [views_input(ONE)], "parameters": {"prompts": json.dumps(["x" * 100_000])}},
        413,
        "limit of 300",
    ),
    (
        "v2-prompts-many",
        V2,
        {"inputs": [views_input(ONE)], "parameters": {"prompts": json.dumps(["p"] * 64)}},
        413,
        "limit of 16",
    ),
    ("v2-prompts-not-json", V2, {"inputs": [views_input(ONE)], "parameters": {"prompts": "[oops"}}, 400, "prompts"),
    ("v2-mode-bad", V2, {"inputs": [views_input(ONE)], "parameters": {"mode": "z" * 10_000}}, 400, "parameters.mode"),
    (
        "v1-prompts-huge",
        V1,
        {"instances": [{"scan": "QUJD", "format": "wrl"}], "parameters": {"prompts": ["x" * 10**5] * 64}},
        413,
        "prompts",
    ),
    ("v1-sequence-empty", V1, {"instances": [{"sequence": [], "format": "wrl"}]}, 400, "at least 2"),
    ("v1-instance-not-object", V1, {"instances": ["x" * 10_000]}, 400, "instances[0]"),
    ("v1-format-long", V1, {"instances": [{"scan": "QUJD", "format": "w" * 10_000}]}, 400, "format"),
]


@pytest.mark.parametrize("name, path, body, status, text", CASES, ids=[c[0] for c in CASES])
def test_hostile_request_is_a_short_4xx(server, name, path, body, status, text):
    r = httpx.post(server["url"] + path, json=body, timeout=120)
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
    if status >= 100:
        assert r.status_code == status, (name, r.status_code, r.text[:300])
    err = r.json()["error"]
    assert text in err, err
    assert len(r.content) < 2000, f"{name}: {len(r.content)}-byte error echoes the input"
    assert not re.search(r"0x[0-9a-f]{6,}", err), f"{name}: object address in {err!r}"
    if path == V2:
        assert "instances[" not in err and "parameters" in err or "inputs" in err, f"{name}: not V2 field names: {err}"


def test_binary_extension_lies_are_4xx(server):
    url = server["url"] + V2
    head = json.dumps(
        {"inputs": [{"name": "views", "shape": ONE, "datatype": "UINT8", "parameters": {"binary_data_size": 36}}]}
    )
    for length, extra in (("abc", b""), (str(len(head) + 999), b""), (str(len(head)), b"\x00" * 5)):
        r = httpx.post(url, content=head.encode() + extra, headers={"Inference-Header-Content-Length": length})
        assert 400 <= r.status_code < 500, (length, r.status_code, r.text[:300])
    raw = bytes(range(128, 256))  # a BYTES element that is not UTF-8, sent raw
    head = json.dumps(
        {
            "inputs": [
                {"name": "scan", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw) + 4}}
            ],
            "parameters": {"format": "bnt"},
        }
    )
    body = head.encode() + len(raw).to_bytes(4, "little") + raw
    r = httpx.post(url, content=body, headers={"Inference-Header-Content-Length": str(len(head))})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])


def test_server_still_serves_after_the_corpus(server, views):
    t = {"name": "views", "datatype": "UINT8", "shape": list(views.shape), "data": views.flatten().tolist()}
    assert httpx.post(server["url"] + V2, json={"inputs": [t]}, timeout=60).status_code == 200
    assert httpx.get(server["url"] + "/v2/models/facet-vlm/ready").status_code == 200
    log = server["log"].read_text()
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
    assert max(len(line) for line in log.splitlines()) < 2000  # 4xx logged in one short line
