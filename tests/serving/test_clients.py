"""Third-party clients, unmodified: tritonclient's default ``infer()``, raw requests with no headers, curl."""

import base64
import json
import shutil
import subprocess

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from tests.serving.conftest import png_b64


@pytest.fixture(scope="module")
def client(server):
    c = triton.InferenceServerClient(server["url"].removeprefix("http://"))
    yield c
    c.close()


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


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary-extension"])
def test_tritonclient_bytes_scan_with_request_level_format(client, scan_b64, binary):
    inp = triton.InferInput("scan", [1], "BYTES")
    inp.set_data_from_numpy(np.array([scan_b64.encode()], dtype=object), binary_data=binary)
    res = client.infer("facet-vlm", [inp], parameters={"format": "wrl"})  # tritonclient cannot set per-input ones
    assert res.as_numpy("label").shape == (1,)


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
    r = httpx.post(f"{url}/v2/models/facet-vlm/infer", content=json.dumps(v2).encode())
    assert r.status_code == 200, r.text[:300]
    assert r.json()["outputs"][0]["data"][0] in json.loads(r.json()["parameters"]["labels"])
    r = httpx.post(f"{url}/v2/models/facet-vlm/infer", content=b'{"inputs": []}')
    assert r.status_code == 400 and "inputs" in r.json()["error"]


def test_binary_data_output_honoured_and_off_by_default(server, views):
    url = f"{server['url']}/v2/models/facet-vlm/infer"
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


def test_base64_sequence_through_v2(server, synth_root):
    frames = sorted((synth_root / "bu4dfe" / "F001" / "Happy").glob("*.wrl"))
    data = [base64.b64encode(f.read_bytes()).decode() for f in frames]
    body = {"inputs": [{"name": "sequence", "shape": [len(data)], "datatype": "BYTES", "data": data}]}
    body["parameters"] = {"format": "wrl"}
    r = httpx.post(f"{server['url']}/v2/models/facet-vlm/infer", json=body, timeout=120)
    assert r.status_code == 200, r.text[:300]
