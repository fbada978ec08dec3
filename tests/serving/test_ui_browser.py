"""The page for people in a real browser (headless Chromium through selenium, as a person would use it):
upload a generated .wrl and a 4D sequence, compare what the page shows with a direct V1 call on the same
files, a 4xx for a bad file, the client-side size check, no CSP violation; screenshots under runs/ui/.

Slow; ``make ui-check`` installs the browser (scripts/bootstrap.sh --browser) and runs this file."""

import base64
import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parents[2] / "runs" / "ui"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: run `make ui-check` (scripts/bootstrap.sh --browser installs it)")
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(exe):
            pytest.fail(f"{exe} not found: run `make ui-check` (scripts/bootstrap.sh --browser installs it)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1700"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    d.set_script_timeout(30)
    yield d
    d.quit()


def _v1(server, instance: dict) -> httpx.Response:
    return httpx.post(f"{server['url']}/v1/models/facet-vlm:predict", json={"instances": [instance]}, timeout=180)


def _b64(p: Path) -> str:
    return base64.b64encode(p.read_bytes()).decode()


def _wait(d, cond, timeout=180):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout, poll_frequency=0.2).until(lambda _: d.execute_script(cond))


def _submit(d):
    d.execute_script("document.getElementById('status').textContent = ''")
    d.find_element("id", "run").click()
    done = "const s = document.getElementById('status').textContent; const e = document.getElementById('error');"
    _wait(d, done + "return s.startsWith('Done') || !e.classList.contains('hidden');")


def _shown(d) -> dict:
    """What the page shows: label, the chart's values (exact and as printed), view images and attention maps."""
    return d.execute_script(
        """
        const q = (s) => Array.from(document.querySelectorAll(s));
        return {
          label: document.getElementById('label').textContent,
          error: document.getElementById('error').classList.contains('hidden') ? null
                 : document.getElementById('error').textContent,
          probs: Object.fromEntries(q('#probs g.prob').map((g) => [g.dataset.label,
                 [Number(g.dataset.value), g.querySelector('text.value').textContent]])),
          images: q('#views img.view').map((i) => i.complete ? i.naturalWidth : 0),
          maps: q('#views canvas.attention').map((c) => {
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lo = 255, hi = 0;
            for (let k = 0; k < px.length; k += 4) { lo = Math.min(lo, px[k]); hi = Math.max(hi, px[k]); }
            return [c.width, hi - lo];
          }),
          prompts: q('#prompt-scores g.prob').map((g) => g.dataset.label),
        };"""
    )


def _check_same_as_v1(shown: dict, direct: dict):
    assert shown["error"] is None
    assert shown["label"] == direct["label"]
    assert set(shown["probs"]) == set(direct["probabilities"])
    for lab, p in direct["probabilities"].items():
        value, text = shown["probs"][lab]
        assert abs(value - p) <= 1e-5, (lab, value, p)  # the batched and unbatched forward passes agree
        assert text == f"{100 * p:.2f} %", (lab, text, p)
    assert shown["images"] == [64, 64, 64]  # three views as the server rendered them (bundle size 64)
    assert len(shown["maps"]) == 3 and all(w == 224 and contrast > 0 for w, contrast in shown["maps"])


def test_page_in_a_real_browser(browser, server, synth_root, tmp_path):
    d = browser
    d.get(f"{server['url']}/ui")  # the redirect to ui/ and the page's own fetch of model.json
    _wait(d, "return document.body.dataset.ready === '1'", 60)
    assert d.find_element("id", "model-name").text == "facet-vlm"
    assert "16 prompts" in d.find_element("id", "limits").text

    # a generated .wrl scan, with two prompts
    scan = next((synth_root / "bu3dfe").rglob("*_HA04*_F3D.wrl"))
    d.find_element("id", "scan-file").send_keys(str(scan))
    d.find_element("id", "prompts").send_keys("a smiling face\na face showing surprise")
    _submit(d)
    shown = _shown(d)
    direct = _v1(server, {"scan": _b64(scan), "format": "wrl"})
    assert direct.status_code == 200, direct.text[:300]
    _check_same_as_v1(shown, direct.json()["predictions"][0])
    assert sorted(shown["prompts"]) == ["a face showing surprise", "a smiling face"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(SHOTS / "scan.png"))

    # a 4D sequence: several frame files in one <input multiple>
    frames = sorted((synth_root / "bu4dfe" / "F001" / "Happy").glob("*.wrl"))
    assert len(frames) >= 3
    d.find_element("id", "tab-sequence").click()
    d.find_element("id", "prompts").clear()
    d.find_element("id", "sequence-files").send_keys("\n".join(str(f) for f in frames))
    _submit(d)
    shown = _shown(d)
    direct = _v1(server, {"sequence": [_b64(f) for f in frames], "format": "wrl"})
    assert direct.status_code == 200, direct.text[:300]
    _check_same_as_v1(shown, direct.json()["predictions"][0])
    assert f"over {len(frames)} frames" in d.find_element("id", "views-note").text
    d.save_screenshot(str(SHOTS / "sequence.png"))

    # three view images (PNG files), classified as they are
    rng = np.random.default_rng(1)
    pngs = []
    for v in ("front", "left", "right"):
        pngs.append(tmp_path / f"{v}.png")
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(pngs[-1])
    d.find_element("id", "tab-views").click()
    for v, f in zip(("front", "left", "right"), pngs):
        d.find_element("id", f"view-{v}").send_keys(str(f))
    _submit(d)
    direct = _v1(server, {"views": [_b64(f) for f in pngs]})
    assert direct.status_code == 200, direct.text[:300]
    _check_same_as_v1(_shown(d), direct.json()["predictions"][0])

    # a bad file: the server's 4xx message, shown as it is
    bad = tmp_path / "broken.wrl"
    bad.write_text("#VRML V2.0 utf8\nShape { geometry IndexedFaceSet { coord Coordinate { point [ 1 2 ] } } }\n")
    d.find_element("id", "tab-scan").click()
    d.find_element("id", "scan-file").send_keys(str(bad))
    _submit(d)
    direct = _v1(server, {"scan": _b64(bad), "format": "wrl"})
    assert 400 <= direct.status_code < 500, direct.text[:300]
    shown = _shown(d)
    assert shown["error"] == f"HTTP {direct.status_code}: {direct.json()['error']}"
    assert shown["images"] == [] and shown["maps"] == []  # nothing of the previous answer stays
    assert not d.find_element("id", "result").is_displayed()
    d.save_screenshot(str(SHOTS / "bad-file.png"))

    # over the server's per-file limit: refused before upload (a sparse file; the browser reads only its size)
    info = httpx.get(f"{server['url']}/ui/model.json").json()
    big = tmp_path / "big.wrl"
    with open(big, "wb") as f:
        f.truncate(info["limits"]["max_scan_bytes"] + 1)
    d.find_element("id", "scan-file").send_keys(str(big))
    d.find_element("id", "run").click()
    err = _shown(d)["error"]
    assert err.startswith("Not sent: big.wrl: ") and "exceeds the server's limit" in err

    # under the per-file limit but over the JSON limit once in base64 (13 MiB → ~17.3 MiB of JSON > 16 MiB):
    # refused before upload, naming the JSON request limit the V1 route applies (max_json_bytes)
    json_limit = info["limits"]["max_json_bytes"]
    assert "a request up to " + f"{json_limit / 2**20:.1f} MiB of JSON" in d.find_element("id", "limits").text
    mid = tmp_path / "mid.wrl"
    with open(mid, "wb") as f:
        f.truncate(13 * 2**20)
    assert mid.stat().st_size < info["limits"]["max_scan_bytes"] and 4 * mid.stat().st_size / 3 > json_limit
    d.find_element("id", "scan-file").send_keys(str(mid))
    d.find_element("id", "run").click()
    err = _shown(d)["error"]
    assert err.startswith("Not sent: the request would be about 17.3 MiB of JSON"), err
    assert f"limit of {json_limit / 2**20:.1f} MiB per request" in err, err

    logs = d.get_log("browser")
    violations = [e for e in logs if "Content Security Policy" in e["message"]]
    assert not violations, json.dumps(violations)[:500]
    severe = [e for e in logs if e["level"] == "SEVERE" and "status of 400" not in e["message"]]
    assert not severe, json.dumps(severe)[:500]
