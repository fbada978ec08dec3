"""The page for people, in-process (ASGI): its files with a strict CSP, model.json, ``return_views``, ``--no-ui``.
The real-browser test is tests/serving/test_ui_browser.py (slow; ``make ui-check``)."""

import argparse
import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facet_lib import registry
from facet_lib.bundle_format import verify_bundle, write_checksums
from facet_lib.config import Limits, ServeConfig
from facet_lib.config.options import add_serve_options, config_from_args
from facet_lib.serving import ui
from facet_lib.serving.engine import Engine
from facet_lib.serving.predictor import FacetPredictor
from facet_lib.serving.server import build_app
from tests.serving.conftest import LABELS, png_b64

CONFIG = ServeConfig(limits=Limits(render_workers=1, render_timeout_s=60))


@pytest.fixture(scope="module")
def client(bundle):
    cfg = ServeConfig(model=str(bundle), limits=CONFIG.limits)
    p = FacetPredictor(cfg)
    assert p.load()
    with TestClient(build_app(p, cfg)) as c:
        yield c
    p.pool.close()


def _png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def test_csp_is_strict():
    directives = dict(d.strip().split(" ", 1) for d in ui.CSP.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert "unsafe" not in ui.CSP and "http" not in ui.CSP and "*" not in ui.CSP
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("path", ["/ui/", "/ui/app.js", "/ui/app.css", "/ui/model.json"])
def test_page_files_served_with_csp(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-security-policy"] == ui.CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    types = {"/ui/": "text/html", "/ui/app.js": "text/javascript", "/ui/app.css": "text/css"}
    want = types.get(path, "application/json")
    assert r.headers["content-type"].startswith(want)


def test_page_has_no_inline_code_and_no_outside_host():
    html = ui.ASSETS["index.html"][0].decode()
    js = ui.ASSETS["app.js"][0].decode()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="app.js" defer>']
    assert not re.search(r"\son\w+\s*=", html) and "style=" not in html  # no inline handlers or styles
    for text in (html, js, ui.ASSETS["app.css"][0].decode()):
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text.replace("http://www.w3.org/2000/svg", ""))
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"):
        assert banned not in js
    # the page uses the V1 route (relative: works behind a path prefix) and model.json, nothing else
    assert re.findall(r"fetch\(([^,)]+)", js) == ['"../" + INFO.v1_predict', '"model.json"']


def test_page_is_read_only(client):
    for method in ("post", "put", "delete"):
        assert getattr(client, method)("/ui/app.js").status_code == 405
    assert client.get("/ui/../facet_lib/serving/server.py").status_code == 404
    assert client.get("/ui/index.html").status_code == 404  # a fixed set of routes, no file lookup
    r = client.get("/ui", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "ui/"


def test_model_json(client, bundle):
    info = client.get("/ui/model.json").json()
    assert info["name"] == "facet-vlm" and info["labels"] == LABELS
    assert info["v1_predict"] == "v1/models/facet-vlm:predict"
    assert re.fullmatch(r"[0-9a-f]{64}", info["digest"])
    assert info["digest"] == verify_bundle(bundle)
    assert info["registered"] is None  # a bundle folder, not a registry reference
    assert info["render"]["size"] == 64 and info["views"] == ["front", "left", "right"]
    assert info["limits"]["max_prompts"] == CONFIG.limits.max_prompts
    assert info["cv"] is None  # conftest's bundle carries no CV summary
    assert info["weights"] and set(info["formats"]) == {"wrl", "bnt", "obj", "ply"}


def test_v1_return_views_gives_back_what_was_classified(client, views, scan_b64):
    sent = [png_b64(v) for v in views[0]]
    body = {"instances": [{"views": sent}], "parameters": {"return_views": True, "return_attention": True}}
    pred = client.post("/v1/models/facet-vlm:predict", json=body).json()["predictions"][0]
    assert len(pred["views"]) == 3
    assert all(np.array_equal(_png(b), views[0][i]) for i, b in enumerate(pred["views"]))
    assert len(pred["attention"]["heatmaps"]) == 3
    # a scan: the server's rendering, at the bundle's size; without the parameter, no views
    body = {"instances": [{"scan": scan_b64, "format": "wrl"}], "parameters": {"return_views": True}}
    pred = client.post("/v1/models/facet-vlm:predict", json=body).json()["predictions"][0]
    assert [_png(b).shape for b in pred["views"]] == [(64, 64, 3)] * 3
    assert len({_png(b).tobytes() for b in pred["views"]}) == 3  # three different views
    plain = client.post("/v1/models/facet-vlm:predict", json={"instances": [{"scan": scan_b64, "format": "wrl"}]})
    assert "views" not in plain.json()["predictions"][0]
    assert plain.json()["predictions"][0]["probabilities"] == pred["probabilities"]


def test_return_views_must_be_a_bool(client, views):
    body = {"instances": [{"views": [png_b64(v) for v in views[0]]}], "parameters": {"return_views": "yes"}}
    r = client.post("/v1/models/facet-vlm:predict", json=body)
    assert r.status_code == 400 and r.json()["error"].startswith("parameters.return_views: expected true or false")


def test_no_ui_turns_the_page_off(bundle):
    p = argparse.ArgumentParser()
    add_serve_options(p)
    assert config_from_args(p.parse_args([])).ui is True
    cfg = config_from_args(p.parse_args(["--no-ui", "--model", str(bundle)]))
    assert cfg.ui is False
    app = build_app(FacetPredictor(cfg), cfg)  # routes only; nothing is loaded
    with TestClient(app) as c:
        for path in ("/ui/", "/ui/app.js", "/ui/model.json"):
            assert c.get(path).status_code == 404


def test_model_json_shows_the_bundles_cv_summary_and_registry_version(bundle, tmp_path, monkeypatch):

    copy = shutil.copytree(bundle, tmp_path / "b")
    cfg = json.loads((copy / "config.json").read_text())
    cv = {"accuracy_mean": 0.5, "accuracy_std": 0.1, "fold": 2}  # the keys the register step writes (made up here)
    (copy / "config.json").write_text(json.dumps({**cfg, "metrics": cv}))
    digest = write_checksums(copy)
    ref = "s3://reg/facet@production"
    looked = {"name": "facet", "version": "v0007", "alias": "production", "uri": "s3://reg/facet/v0007"}
    monkeypatch.setattr(registry, "lookup", lambda r: {**looked, "digest": digest} if r == ref else {})
    p = FacetPredictor(ServeConfig(model=ref, limits=CONFIG.limits))
    p.bundle_dir = copy
    p.engine = Engine(copy, "cpu")
    info = ui.model_info(p)
    assert info["cv"] == cv and info["digest"] == digest == verify_bundle(copy)
    assert info["registered"] == {"ref": ref, **looked, "is_loaded": True}
    monkeypatch.setattr(registry, "lookup", lambda r: {**looked, "digest": "0" * 64})  # the alias moved on
    assert ui.model_info(p)["registered"]["is_loaded"] is False

    def down(r):
        raise OSError("connection refused")

    monkeypatch.setattr(registry, "lookup", down)
    assert ui.model_info(p)["registered"] == {"ref": ref, "error": "OSError: connection refused"}


def test_model_json_carries_the_json_request_limit(client):
    """The page posts base64 JSON to V1, which refuses bodies over max_json_bytes: that is the limit it checks."""
    info = client.get("/ui/model.json").json()
    assert info["limits"]["max_json_bytes"] == CONFIG.limits.max_json_bytes
    js = ui.ASSETS["app.js"][0].decode()
    assert "if (body > L.max_json_bytes)" in js and "4 * Math.ceil(f.size / 3)" in js
    assert "L.max_body_bytes" not in js  # the binary-extension limit does not apply to the page's requests


def test_bundle_digest_is_the_bundle_formats_rule(bundle, tmp_path):
    assert ui.bundle_digest(bundle) == verify_bundle(bundle)
    assert ui.bundle_digest(tmp_path) is None and ui.bundle_digest(None) is None  # no bundle: no digest


def test_registry_lookup_reused_for_the_ttl_and_errors_never(monkeypatch):
    now, calls = [0.0], []
    answer = {"name": "facet", "version": "v0001", "alias": "production", "uri": "s3://r/facet/v0001", "digest": "d"}

    def lookup(ref):
        calls.append(ref)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(registry, "lookup", lookup)
    view = ui.RegistryView("s3://r/facet@production", "d", ttl=30, clock=lambda: now[0])
    assert view.get()["version"] == "v0001" and len(calls) == 1
    now[0] = 29.9
    assert view.get()["version"] == "v0001" and len(calls) == 1  # reused within the TTL
    answer = {**answer, "version": "v0002", "digest": "e"}
    now[0] = 30.0
    got = view.get()
    assert got["version"] == "v0002" and got["is_loaded"] is False and len(calls) == 2  # looked up again
    answer = OSError("connection refused")
    now[0] = 61.0
    assert view.get()["error"] == "OSError: connection refused" and len(calls) == 3
    assert view.get()["error"] and len(calls) == 4  # an error is never reused: the next page load asks again
    answer = {"name": "facet", "version": "v0003", "alias": "production", "uri": "s3://r/facet/v0003", "digest": "d"}
    assert view.get()["is_loaded"] is True and len(calls) == 5
    assert ui.RegistryView("/mnt/models", "d").get() is None  # a bundle folder: no registry, no lookup


def _ui_app(predictor):
    from fastapi import FastAPI

    app = FastAPI()
    ui.mount_ui(app, predictor)
    return TestClient(app)


def test_model_json_follows_the_real_registry_alias(s3, bundle, tmp_path, monkeypatch):
    """Against the embedded SeaweedFS registry: the alias moves; model.json says so after the TTL, not before."""
    reg, name = "s3://facet-reg/ui-ttl", "m"
    first = registry.register(bundle, reg, name, "run-1", {}, {}, {})
    other = shutil.copytree(bundle, tmp_path / "other")
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "metrics": {"accuracy_mean": 0.25}}))
    write_checksums(other)
    ref = f"{reg}/{name}@production"
    p = FacetPredictor(ServeConfig(model=ref, limits=CONFIG.limits))
    p.bundle_dir, p.engine = bundle, Engine(bundle, "cpu")
    monkeypatch.setattr(ui, "REGISTRY_TTL_S", 3600.0)
    with _ui_app(p) as c:
        got = c.get("/ui/model.json").json()["registered"]
        assert got["version"] == first["version"] == "v0001" and got["is_loaded"] is True
        second = registry.register(other, reg, name, "run-2", {}, {}, {})
        assert second["version"] == "v0002" and registry.resolve(ref) == second["uri"]
        assert c.get("/ui/model.json").json()["registered"]["version"] == "v0001"  # within the TTL: reused
        monkeypatch.setattr(ui, "REGISTRY_TTL_S", 0.0)  # the TTL has passed
        got = c.get("/ui/model.json").json()["registered"]
        assert got["version"] == "v0002" and got["is_loaded"] is False  # the alias points elsewhere now

        real = registry.lookup

        def down(r):
            raise OSError("connection refused")

        monkeypatch.setattr(registry, "lookup", down)
        assert c.get("/ui/model.json").json()["registered"]["error"] == "OSError: connection refused"
        monkeypatch.setattr(registry, "lookup", real)  # the registry is back: the error was not kept
        got = c.get("/ui/model.json").json()["registered"]
        assert got["version"] == "v0002" and "error" not in got
