"""Corpus groups for routes, the V2 binary extension (Inference-Header-Content-Length) and the
per-request budgets; part of tests/security/corpus.py (``GROUPS``). Add binary-extension cases here."""

from __future__ import annotations

import json

from tests.security.corpus import ONE, TRI, V1, V2, Case, b64, png, views_input


def routes() -> list[Case]:
    views = {"inputs": [views_input(ONE)]}
    return [
        Case(
            "explain-v1",
            path="/v1/models/{m}:explain",
            body={"instances": [{"scan": b64(TRI), "format": "wrl"}]},
            expect=(501,),
        ),
        Case(
            "v2-versioned-infer-other-version",
            path="/v2/models/{m}/versions/7/infer",
            body=views,
            expect=404,
            text="version '7' not found (this server serves version 1)",
        ),
        Case(  # version 1 is the served one: the same decoder as /infer (a 400 naming the field, not KServe's)
            "v2-versioned-infer-bad-datatype",
            path="/v2/models/{m}/versions/1/infer",
            body={"inputs": [{**views_input(ONE), "datatype": "FP32"}]},
            expect=400,
            text="inputs[views].datatype: expected UINT8",
        ),
        Case("v2-versioned-infer-unknown-model", path="/v2/models/nope/versions/1/infer", body=views, expect=404),
        Case("v2-versioned-ready", method="GET", path="/v2/models/{m}/versions/1/ready", expect=(404, 501)),
        Case("v2-versioned-metadata", method="GET", path="/v2/models/{m}/versions/1", expect=(404, 501)),
        Case("v2-unknown-model", path="/v2/models/nope/infer", body=views, expect=404),
        Case("v1-unknown-model", path="/v1/models/nope:predict", body={"instances": [{}]}, expect=404),
        Case("v2-unknown-model-ready", method="GET", path="/v2/models/nope/ready", expect=404),
        Case("v2-infer-get", method="GET", path=V2, expect=405),
        Case("v1-predict-put", method="PUT", path=V1, body={"instances": []}, expect=405),
        Case("v1-predict-delete", method="DELETE", path=V1, expect=405),
        Case("repository-index", path="/v2/repository/index", body={}, expect=404),
        Case("repository-unload", path="/v2/repository/models/{m}/unload", body={}, expect=404),
        Case("repository-load", path="/v2/repository/models/{m}/load", body={}, expect=404),
        Case("openapi-json", method="GET", path="/openapi.json", expect=404),
        Case("docs", method="GET", path="/docs", expect=404),
        Case("redoc", method="GET", path="/redoc", expect=404),
        Case("path-traversal", method="GET", path="/v1/models/../../etc/passwd", expect=404),
        Case("path-long", method="GET", path="/v2/models/" + "x" * 8000 + "/ready", expect=404),
        Case("path-nul", method="GET", path="/v2/models/%00/ready", expect=404),
        Case("v2-model-name-long-infer", path="/v2/models/" + "x" * 5000 + "/infer", body=views, expect=404),
    ]


def binary_extension() -> list[Case]:
    """V2 binary extension (Inference-Header-Content-Length): headers that lie about the body."""

    def binary(head: object, tail: bytes = b"", length: object = None) -> tuple[bytes, dict]:
        h = head if isinstance(head, bytes) else json.dumps(head).encode()
        return h + tail, {
            "Inference-Header-Content-Length": str(len(h) if length is None else length),
            "Content-Type": "application/octet-stream",
        }

    views36 = {"name": "views", "shape": ONE, "datatype": "UINT8", "parameters": {"binary_data_size": 36}}
    raw = bytes(range(128, 256))
    # a 24 MiB JSON header (valid JSON, padded id): over max_json_bytes (16 MiB), under max_body_bytes (64 MiB)
    huge_header = json.dumps({"inputs": [views36], "id": "x" * (24 * 2**20)}).encode()

    def scan_head(size, fmt="bnt"):
        return {
            "inputs": [{"name": "scan", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": size}}],
            "parameters": {"format": fmt},
        }

    cases = {
        "length-not-number": binary({"inputs": [views36]}, b"\x00" * 36, "abc"),
        "length-beyond-body": binary({"inputs": [views36]}, b"", 10**6),
        "length-negative": binary({"inputs": [views36]}, b"\x00" * 36, -1),
        "header-over-json-limit": binary(huge_header, b"\x00" * 36),
        "data-short": binary({"inputs": [views36]}, b"\x00" * 5),
        "data-long": binary({"inputs": [views36]}, b"\x00" * 99),
        "header-not-json": binary(b"{oops", b"\x00" * 36),
        "size-string": binary({"inputs": [{**views36, "parameters": {"binary_data_size": "36"}}]}, b"\x00" * 36),
        "size-float": binary({"inputs": [{**views36, "parameters": {"binary_data_size": 36.0}}]}, b"\x00" * 36),
        "size-negative": binary({"inputs": [{**views36, "parameters": {"binary_data_size": -36}}]}, b"\x00" * 36),
        "size-beyond-body": binary({"inputs": [{**views36, "parameters": {"binary_data_size": 10**9}}]}, b"\x00" * 36),
        "header-without-inputs": binary({"id": "x"}, b"\x00" * 36),
        "header-list": binary([views36], b"\x00" * 36),
        "input-without-name": binary({"inputs": [{k: v for k, v in views36.items() if k != "name"}]}, b"\x00" * 36),
        "bytes-not-utf8": binary(scan_head(len(raw) + 4), len(raw).to_bytes(4, "little") + raw),
        "bytes-prefix-2e32": binary(scan_head(8), (2**32 - 1).to_bytes(4, "little") + b"abcd"),
        "bytes-two-bytes": binary(scan_head(2), b"ab"),
        "bytes-prefix-short": binary(scan_head(12), (4).to_bytes(4, "little") + b"ab"),
        "uint8-float-dimension": binary({"inputs": [{**views36, "shape": [1.0, 3, 2, 2, 3]}]}, b"\x00" * 36),
    }
    scan_size, views_size = "inputs[scan].parameters.binary_data_size", "inputs[views].parameters.binary_data_size"
    named = {  # issue 18.3/18.5: a 400 naming the field (the protocol engineer's cases)
        "length-not-number": "Inference-Header-Content-Length",
        "length-beyond-body": "Inference-Header-Content-Length",
        "length-negative": "Inference-Header-Content-Length",
        "data-short": f"{views_size}: 36 bytes, but only 5 follow",
        "data-long": "63 bytes after the inputs' binary data",
        "header-not-json": "JSON header: not valid JSON",
        "size-string": f"{views_size}: expected a whole number of bytes",
        "size-float": f"{views_size}: expected a whole number of bytes",
        "size-negative": f"{views_size}: expected a whole number of bytes",
        "size-beyond-body": f"{views_size}: 1000000000 bytes, but only 36 follow",
        "header-without-inputs": "inputs: required",
        "header-list": "JSON header: expected a JSON object",
        "input-without-name": "inputs[0].name: required",
        "bytes-prefix-2e32": f"{scan_size}: BYTES element 0 declares 4294967295 bytes, only 4 follow",
        "bytes-two-bytes": f"{scan_size}: BYTES data has 2 bytes left where element 0 of 1 needs its 4-byte length",
        "bytes-prefix-short": f"{scan_size}: 12 bytes, but only 6 follow in the body",
        "uint8-float-dimension": "inputs[views].shape",
    }
    named["header-over-json-limit"] = "Inference-Header-Content-Length: a JSON header of"
    status = {"header-over-json-limit": 413}
    return [
        Case(
            f"binary-{k}", body=b, headers=h, expect=status.get(k, 400 if k in named else "4xx"), text=named.get(k, "")
        )
        for k, (b, h) in cases.items()
    ]


def budgets() -> list[Case]:
    black = b64(png(2048, 2048, "L"))  # ~10 kB each: 96 of them decode to 403 Mpx
    return [
        Case(
            "v1-96-black-2048px-pngs",
            path=V1,
            body={"instances": [{"views": [black] * 3}] * 32},
            expect=413,
            text="pixels",
        ),
        Case("v2-views-32x2048px-shape", body={"inputs": [views_input([32, 3, 2048, 2048, 3], [])]}, expect=413),
        Case(
            "v1-declared-body-too-large",
            path=V1,
            body=b"{}",
            headers={"Content-Length": str(2**40)},
            expect=413,
            socket=True,
        ),
        Case("v1-stalled-body", path=V1, body=b"{", headers={"Content-Length": "999"}, expect=408, socket=True),
    ]


def encodings() -> list[Case]:
    """Content-Encoding and the JSON limits (issues 17.4, 18.2): bounded, early, named."""
    import gzip
    import zlib

    def deflated(byte: bytes, mb: int, wbits: int) -> bytes:  # ~0.1 % of what it expands to
        z, chunk = zlib.compressobj(9, zlib.DEFLATED, wbits), byte * 2**20
        return b"".join([*(z.compress(chunk) for _ in range(mb)), z.flush()])

    bomb = deflated(b"\0", 96, 31)  # gzip: 96 MB once expanded, over the 64 MiB body limit
    v2 = json.dumps({"inputs": [views_input(ONE)]}).encode()
    many = json.dumps({"inputs": [views_input([1, 3, 340, 340, 3], [0] * 1_040_400)]}).encode()  # > 1 M elements
    gz = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    return [
        Case("enc-gzip-bomb-json", body=bomb, headers=gz, expect=413, text="Content-Encoding: gzip"),
        Case(
            "enc-gzip-bomb-binary",
            body=bomb,
            headers={**gz, "Inference-Header-Content-Length": "10"},
            expect=413,
            text="exceeds the limit of",
        ),
        Case(
            "enc-deflate-bomb-v1",
            path=V1,
            body=deflated(b" ", 96, 15),
            headers={"Content-Encoding": "deflate"},
            expect=413,
            text="Content-Encoding: deflate",
        ),
        Case("enc-brotli", body=v2, headers={"Content-Encoding": "br"}, expect=415, text="Content-Encoding"),
        Case("enc-gzip-not-gzip", body=v2, headers={"Content-Encoding": "gzip"}, expect=400, text="gzip"),
        Case(
            "enc-gzip-truncated",
            body=gzip.compress(v2)[:-12],
            headers={"Content-Encoding": "gzip"},
            expect=400,
            text="gzip",
        ),
        Case("json-elements-over-limit", body=many, expect=413, text="binary tensor extension"),
        Case(
            "json-body-over-limit-v1",
            path=V1,
            body=b'{"instances": ["' + b"A" * (17 * 2**20) + b'"]}',
            expect=413,
            text="JSON inference body",
        ),
        Case(
            "json-body-over-limit-v1-binary-header",  # V1 has no binary extension: the JSON limit still holds
            path=V1,
            body=b'{"instances": ["' + b"A" * (17 * 2**20) + b'"]}',
            headers={"Inference-Header-Content-Length": "10"},
            expect=413,
            text="JSON inference body",
        ),
        Case(
            "v2-json-parameters-list",
            body={"inputs": [views_input(ONE)], "parameters": []},
            expect=400,
            text="parameters: expected an object",
        ),
        Case(
            "v2-outputs-unknown",
            body={"inputs": [views_input(ONE)], "outputs": [{"name": "nope"}]},
            expect=400,
            text="outputs[0].name",
        ),
        Case(
            "v2-outputs-binary-string",
            body={"inputs": [views_input(ONE)], "outputs": [{"name": "label", "parameters": {"binary_data": "yes"}}]},
            expect=400,
            text="outputs[0].parameters.binary_data",
        ),
        Case(
            "v2-details-not-produced",
            body={"inputs": [views_input(ONE)], "outputs": [{"name": "details"}]},
            expect=400,
            text="outputs[0].name",
        ),
    ]
