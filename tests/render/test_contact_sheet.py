"""The contact sheet as a PNG and as the self-contained HTML page the render component gives the KFP UI."""

import base64
import io
import re

from PIL import Image

from facet_lib.data.indexers import index_dataset
from facet_lib.render import RenderConfig
from facet_lib.render.contact_sheet import contact_sheet, contact_sheet_html
from facet_lib.render.dataset import render_dataset

CFG = RenderConfig(size=48, frames=3)


def test_html_sheet_is_the_png_sheet_inline(synth_root, tmp_path):
    index = index_dataset("bu3dfe", synth_root / "bu3dfe").index.iloc[:6].reset_index(drop=True)
    render_dataset(index, tmp_path / "r", CFG, shard_size=6, workers=1, progress=False)
    png = Image.open(contact_sheet(tmp_path / "r", tmp_path / "sheet.png"))
    page = contact_sheet_html(tmp_path / "r", tmp_path / "sheet.html", title="shards [0] <b>").read_text()
    assert "shards [0] &lt;b&gt;" in page and "size=48" in page  # escaped title, the render settings
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing fetched from elsewhere
    img = Image.open(io.BytesIO(base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", page).group(1))))
    assert img.format == "JPEG" and img.size == png.size
    shown = sum(min(3, n) for n in index["label"].value_counts())  # up to 3 per label
    assert f"{shown} samples shown, up to 3 per label" in page


def test_html_sheet_of_an_empty_dataset_says_so(synth_root, tmp_path):
    index = index_dataset("bu3dfe", synth_root / "bu3dfe").index.iloc[:0]
    render_dataset(index, tmp_path / "r", CFG, shard_size=6, workers=1, progress=False)
    page = contact_sheet_html(tmp_path / "r", tmp_path / "sheet.html").read_text()
    assert "No rendered samples" in page and "base64" not in page
