"""Third-party clients, unmodified: tritonclient's default ``infer()``, raw requests with no headers, curl."""

import base64
import gzip
import json
import shutil
import subprocess
import zlib

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from tests.serving.conftest import png_b64

V2 = "/v2/models/facet-vlm/infer"


@pytest.fixture(scope="module")
def client(server):
    c = triton.InferenceServerClient(server["url"].removeprefix("http://"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def in_process(bundle, scan_path):
    """The same scan read, rendered and classified in-process: the reference for every served answer."""
    from facet_lib.io import read_scan
    from facet_lib.render import render_views
    from facet_lib.serving.engine import Engine

    engine = Engine(bundle, "cpu")
    return engine.infer(render_views(read_scan(scan_path), engine.render)[None])[0]


def _same_prediction(res, ref) -> None:
    labels = json.loads(res.get_response()["parameters"]["labels"])
    probs = res.as_numpy("probabilities")[0]
    assert res.as_numpy("label")[0].decode() == ref["label"]
    assert np.allclose(probs, [ref["probabilities"][lab] for lab in labels], atol=1e-5)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary-extension"])
def test_tritonclient_views_default_infer(client, views, binary):
    inp = triton.InferInput("views", list(views.shape), "UINT8")
    inp.set_data_from_numpy(views, binary_data=binary)
    res = client.infer("facet-vlm", [inp])  # default arguments: no Content-Type, binary_data_output=True
    labels = json.loads(res.get_response()["parameters"]["labels"])
    probs = res.as_numpy("probabilities")
    assert probs.shape == (2, 6) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert [x.decode() for x in res.as_numpy("label")] == [labels[i] for i in probs.argmax(1)]
    assert all(o["parameters"]["binary_data_size"] > 0 for o in res.get_response()["outputs"])  # binary honoured


def test_tritonclient_raw_scan_bytes_same_as_in_process(client, scan_path, in_process):
    """Issue 17.4: the file's raw bytes as a BYTES element of the binary extension, all defaults."""
    inp = triton.InferInput("scan", [1], "BYTES")
    inp.set_data_from_numpy(np.array([scan_path.read_bytes()], dtype=object))  # binary_data=True by default
    res = client.infer("facet-vlm", [inp], parameters={"format": "wrl"})  # tritonclient cannot set per-input ones
    _same_prediction(res, in_process)


def test_tritonclient_base64_scan_in_json_same_as_in_process(client, scan_b64, in_process):
    """In JSON a BYTES element is text: a scan is its file in base64 there."""
    inp = triton.InferInput("scan", [1], "BYTES")
    inp.set_data_from_numpy(np.array([scan_b64.encode()], dtype=object), binary_data=False)
    _same_prediction(client.infer("facet-vlm", [inp], parameters={"format": "wrl"}), in_process)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_request_compression(client, scan_path, in_process, algorithm):
    inp = triton.InferInput("scan", [1], "BYTES")
    inp.set_data_from_numpy(np.array([scan_path.read_bytes()], dtype=object))
    res = client.infer("facet-vlm", [inp], parameters={"format": "wrl"}, request_compression_algorithm=algorithm)
    _same_prediction(res, in_process)


def test_tritonclient_requested_outputs_only_and_per_output_binary(client, views):
    inp = triton.InferInput("views", list(views.shape), "UINT8")
    inp.set_data_from_numpy(views)
    outs = [triton.InferRequestedOutput("probabilities", binary_data=False), triton.InferRequestedOutput("label")]
    res = client.infer("facet-vlm", [inp], outputs=outs)
    got = res.get_response()["outputs"]
    assert [o["name"] for o in got] == ["probabilities", "label"]  # only those, in the order asked
    assert "data" in got[0] and "binary_data_size" in got[1]["parameters"] and "data" not in got[1]
    assert res.as_numpy("probabilities").shape == (2, 6) and res.as_numpy("label").shape == (2,)
    res = client.infer("facet-vlm", [inp], outputs=[triton.InferRequestedOutput("label", binary_data=False)])
    assert [o["name"] for o in res.get_response()["outputs"]] == ["label"]
    with pytest.raises(triton.InferenceServerException) as e:
        client.infer("facet-vlm", [inp], outputs=[triton.InferRequestedOutput("logits")])
    assert e.value.status() == "400" and "outputs[0].name: unknown output 'logits'" in e.value.message()


def test_tritonclient_server_metadata_lists_only_extensions_that_are_on(client):
    meta = client.get_server_metadata()
    assert meta["extensions"] == ["binary_tensor_data"]  # model repository routes are off by default
    assert client.is_server_live() and client.is_model_ready("facet-vlm")


def test_tritonclient_prompts_as_bytes_input(client, views):
    v = triton.InferInput("views", [1, *views.shape[1:]], "UINT8")
    v.set_data_from_numpy(views[:1])
    p = triton.InferInput("prompts", [2], "BYTES")
    p.set_data_from_numpy(np.array([b"a happy face", b"a bored face"], dtype=object))
    out = triton.InferRequestedOutput("details", binary_data=False)
    res = client.infer("facet-vlm", [v, p], outputs=[out])
    details = json.loads(res.as_numpy("details")[0])
    assert set(details["prompt_scores"]) == {"a happy face", "a bored face"}


def test_tritonclient_bad_request_is_4xx(client):
    inp = triton.InferInput("views", [1, 3, 2, 2, 3], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 3, 2, 2, 3), np.float32))
    with pytest.raises(triton.InferenceServerException) as e:
        client.infer("facet-vlm", [inp])
    assert e.value.status() == "400" and "inputs[views].datatype: expected UINT8" in e.value.message()


def test_raw_requests_without_content_type(server, views, scan_b64):
    url = server["url"]
    v1 = json.dumps({"instances": [{"views": [png_b64(x) for x in views[0]]}]}).encode()
    r = httpx.post(f"{url}/v1/models/facet-vlm:predict", content=v1)
    assert "content-type" not in r.request.headers and r.status_code == 200, r.text[:300]
    v2 = {"inputs": [{"name": "scan", "shape": [1], "datatype": "BYTES", "data": [scan_b64]}]}
    v2["parameters"] = {"format": "wrl"}
    r = httpx.post(f"{url}{V2}", content=json.dumps(v2).encode())
    assert r.status_code == 200, r.text[:300]
    assert r.json()["outputs"][0]["data"][0] in json.loads(r.json()["parameters"]["labels"])
    timing = dict(p.split(";dur=") for p in r.headers["server-timing"].split(", "))  # where the time went
    assert set(timing) == {"body", "decode", "render", "infer", "total"} and float(timing["render"]) > 0
    r = httpx.post(f"{url}{V2}", content=b'{"inputs": []}')
    assert r.status_code == 400 and "inputs" in r.json()["error"]


def test_binary_data_output_honoured_and_off_by_default(server, views):
    url = f"{server['url']}{V2}"
    t = {"name": "views", "datatype": "UINT8", "shape": list(views.shape), "data": views.flatten().tolist()}
    r = httpx.post(url, json={"inputs": [t]})
    assert "inference-header-content-length" not in r.headers and r.json()["outputs"][1]["data"]
    r = httpx.post(url, json={"inputs": [t], "parameters": {"binary_data_output": True}})
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    assert len(r.content) == n + sum(sizes)
    probs = np.frombuffer(r.content[n + sizes[0] : n + sizes[0] + sizes[1]], np.float32).reshape(2, 6)
    assert np.allclose(probs.sum(1), 1, atol=1e-4)


def test_unknown_routes_and_methods_answer_in_the_error_shape(server):
    url = server["url"]
    r = httpx.get(f"{url}/v3/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found: GET '/v3/nothing'"}
    r = httpx.get(f"{url}{V2}")
    assert r.status_code == 405 and "Method Not Allowed" in r.json()["error"] and r.headers["allow"] == "POST"
    r = httpx.post(f"{url}/v2/models/other/infer", json={"inputs": []})
    assert r.status_code == 404 and "model 'other' not found" in r.json()["error"]


def test_compression_refused_or_bounded(server, views):
    url = f"{server['url']}{V2}"
    body = json.dumps({"inputs": [{"name": "views", "shape": [1, 3, 2, 2, 3], "datatype": "UINT8", "data": [0] * 36}]})
    r = httpx.post(url, content=body.encode(), headers={"Content-Encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding" in r.json()["error"]
    r = httpx.post(url, content=zlib.compress(body.encode()), headers={"Content-Encoding": "deflate"})
    assert r.status_code == 200, r.text[:300]
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # 1 GB of zeros in about 1 MB of gzip
    bomb = b"".join([*(z.compress(b"\0" * 2**20) for _ in range(1024)), z.flush()])
    pid = server["pid"]
    before = _rss_mb(pid)
    for headers in ({}, {"Inference-Header-Content-Length": "16"}):  # the JSON limit, then the binary one
        r = httpx.post(url, content=bomb, headers={"Content-Encoding": "gzip", **headers}, timeout=60)
        assert r.status_code == 413 and "exceeds the limit" in r.json()["error"], r.text[:300]
    assert _rss_mb(pid) - before < 300, "the bomb was expanded in memory"  # 64 MiB limit + slack, not 1 GB


def _rss_mb(pid: int) -> float:
    from pathlib import Path

    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_without_headers(server, views, tmp_path):
    body = tmp_path / "v1.json"
    body.write_text(json.dumps({"instances": [{"views": [png_b64(x) for x in views[0]]}]}))
    url = f"{server['url']}/v1/models/facet-vlm:predict"
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-d", f"@{body}", url], capture_output=True, text=True)
    text, code = out.stdout.rsplit("\n", 1)
    assert code == "200", text[:300]
    assert json.loads(text)["predictions"][0]["label"] in json.loads(text)["labels"]
    bad = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-d", "{nope", url], capture_output=True, text=True)
    text, code = bad.stdout.rsplit("\n", 1)
    assert code == "400" and "error" in json.loads(text)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_raw_scan_in_the_binary_extension_gzipped(server, scan_path, in_process, tmp_path):
    """curl --data-binary of a binary-extension body (JSON header + 4-byte length + the .wrl), gzipped."""
    raw = scan_path.read_bytes()
    head = json.dumps(
        {
            "inputs": [
                {"name": "scan", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw) + 4}}
            ],
            "parameters": {"format": "wrl"},
            "outputs": [{"name": "label"}],
        }
    ).encode()
    (tmp_path / "body.gz").write_bytes(gzip.compress(head + len(raw).to_bytes(4, "little") + raw))
    cmd = ["curl", "-s", "-w", "\n%{http_code}", "--data-binary", f"@{tmp_path / 'body.gz'}", f"{server['url']}{V2}"]
    cmd += ["-H", f"Inference-Header-Content-Length: {len(head)}", "-H", "Content-Encoding: gzip"]
    text, code = subprocess.run(cmd, capture_output=True, text=True).stdout.rsplit("\n", 1)
    assert code == "200", text[:300]
    out = json.loads(text)["outputs"]
    assert [o["name"] for o in out] == ["label"] and out[0]["data"] == [in_process["label"]]


def test_base64_sequence_through_v2(server, synth_root):
    frames = sorted((synth_root / "bu4dfe" / "F001" / "Happy").glob("*.wrl"))
    data = [base64.b64encode(f.read_bytes()).decode() for f in frames]
    body = {"inputs": [{"name": "sequence", "shape": [len(data)], "datatype": "BYTES", "data": data}]}
    body["parameters"] = {"format": "wrl"}
    r = httpx.post(f"{server['url']}{V2}", json=body, timeout=120)
    assert r.status_code == 200, r.text[:300]


def test_raw_sequence_frames_through_tritonclient(client, synth_root):
    frames = sorted((synth_root / "bu4dfe" / "F001" / "Happy").glob("*.wrl"))
    inp = triton.InferInput("sequence", [len(frames)], "BYTES")
    inp.set_data_from_numpy(np.array([f.read_bytes() for f in frames], dtype=object))
    res = client.infer("facet-vlm", [inp], parameters={"format": "wrl"})
    assert res.as_numpy("label").shape == (1,)


def test_tritonclient_model_version_1_is_the_served_version(client, views):
    """tritonclient's ``model_version`` posts to /v2/models/<m>/versions/<v>/infer: "1" is this server's one
    version (the same route as /infer); another version is a 404 in the error shape."""
    inp = triton.InferInput("views", list(views.shape), "UINT8")
    inp.set_data_from_numpy(views)
    plain = client.infer("facet-vlm", [inp])
    versioned = client.infer("facet-vlm", [inp], model_version="1")
    assert np.array_equal(versioned.as_numpy("probabilities"), plain.as_numpy("probabilities"))
    assert list(versioned.as_numpy("label")) == list(plain.as_numpy("label"))
    with pytest.raises(triton.InferenceServerException) as e:
        client.infer("facet-vlm", [inp], model_version="2")
    assert e.value.status() == "404" and "version '2' not found (this server serves version 1)" in e.value.message()


def test_versioned_infer_uses_the_servers_decoder(server, scan_path):
    """Raw BYTES (a scan's file bytes, not UTF-8) through the versioned route: read as bytes, as on /infer."""
    raw = scan_path.read_bytes() + b"\n# \xff\xfe not utf-8\n"
    head = json.dumps(
        {
            "inputs": [
                {"name": "scan", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw) + 4}}
            ],
            "parameters": {"format": "wrl"},
        }
    ).encode()
    body = head + len(raw).to_bytes(4, "little") + raw
    hdr = {"Inference-Header-Content-Length": str(len(head))}
    url = server["url"] + "/v2/models/facet-vlm/versions/1/infer"
    r = httpx.post(url, content=body, headers=hdr, timeout=120)
    assert r.status_code == 200, r.text[:300]
    r = httpx.post(url.replace("/1/", "/9/"), content=body, headers=hdr, timeout=120)
    assert r.status_code == 404 and set(r.json()) == {"error"}


@pytest.mark.parametrize("binary", [False, True], ids=["json-outputs", "binary-outputs"])
def test_every_output_as_the_spec_lays_it_out(client, server, views, binary):
    """Each output's name, datatype and shape (KServe/Triton V2 response), and its data as tritonclient reads it:
    label BYTES [B], probabilities FP32 [B, K], details BYTES [B] (JSON per sample)."""
    inp = triton.InferInput("views", list(views.shape), "UINT8")
    inp.set_data_from_numpy(views)
    names = ("label", "probabilities", "details")
    outs = [triton.InferRequestedOutput(n, binary_data=binary) for n in names]
    res = client.infer("facet-vlm", [inp], outputs=outs, parameters={"return_attention": True})
    labels = json.loads(res.get_response()["parameters"]["labels"])
    by = {o["name"]: o for o in res.get_response()["outputs"]}
    assert [o["name"] for o in res.get_response()["outputs"]] == list(names)
    want = {"label": ("BYTES", [2]), "probabilities": ("FP32", [2, 6]), "details": ("BYTES", [2])}
    for n, (dt, shape) in want.items():
        assert (by[n]["datatype"], by[n]["shape"]) == (dt, shape), by[n]
        assert ("binary_data_size" in by[n].get("parameters", {})) is binary and ("data" in by[n]) is not binary
    probs = res.as_numpy("probabilities")
    assert probs.dtype == np.float32 and probs.shape == (2, 6) and np.allclose(probs.sum(1), 1, atol=1e-4)
    label = res.as_numpy("label")
    text = [x.decode() if isinstance(x, bytes) else x for x in label]  # tritonclient: bytes binary, str in JSON
    assert label.shape == (2,) and text == [labels[i] for i in probs.argmax(1)]
    details = res.as_numpy("details")
    assert details.shape == (2,) and all(len(json.loads(d)["attention"]["heatmaps"]) == 3 for d in details)
    # the raw response: JSON header (its length in Inference-Header-Content-Length), then each binary output
    # in the order listed, binary_data_size bytes each, nothing after
    body = {
        "inputs": [{"name": "views", "shape": list(views.shape), "datatype": "UINT8", "data": views.ravel().tolist()}]
    }
    body["outputs"] = [{"name": n, "parameters": {"binary_data": binary}} for n in names]
    body["parameters"] = {"return_attention": True}
    r = httpx.post(server["url"] + V2, json=body, timeout=120)
    assert r.status_code == 200, r.text[:300]
    if not binary:
        assert r.headers["content-type"] == "application/json" and "inference-header-content-length" not in r.headers
        out = r.json()["outputs"]
        assert [list(o) for o in out] == [["name", "datatype", "shape", "data"]] * 3  # the spec's field order
        assert len(out[1]["data"]) == 12 and all(isinstance(x, float) for x in out[1]["data"])
        assert all(isinstance(x, str) for x in out[0]["data"] + out[2]["data"])
        return
    n = int(r.headers["inference-header-content-length"])
    out = json.loads(r.content[:n])["outputs"]
    assert [list(o) for o in out] == [["name", "datatype", "shape", "parameters"]] * 3
    sizes = [o["parameters"]["binary_data_size"] for o in out]
    assert sizes[1] == 2 * 6 * 4 and n + sum(sizes) == len(r.content)
    tail = r.content[n + sizes[0] : n + sizes[0] + sizes[1]]
    assert np.allclose(np.frombuffer(tail, "<f4").reshape(2, 6), probs, atol=1e-5)
