"""A contact sheet: a few samples per label, each with its views side by side — as a PNG, or as a
self-contained HTML page (the image inline, for the KFP UI's HTML artifact viewer)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facet_lib.errors import ConfigError
from facet_lib.render.dataset import RenderedDataset


def contact_sheet(dataset: str | Path, out_png: str | Path, per_label: int = 3, thumb: int = 112) -> Path:
    """Write a grid: one row per label, ``per_label`` samples per row, all views of each sample."""
    sheet, _ = _sheet(RenderedDataset(dataset), dataset, per_label, thumb)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png)
    return Path(out_png)


def contact_sheet_html(dataset: str | Path, out_html: str | Path, title: str = "", per_label: int = 3) -> Path:
    """One HTML file (no outside request: the sheet is an inline JPEG) with the render settings and counts;
    a dataset without samples (e.g. only 4D sequences in these shards) gets a page that says so."""
    ds = RenderedDataset(dataset)
    c = ds.config
    settings = ", ".join(f"{k}={v}" for k, v in c.to_dict().items())
    head = f"<h3>{html.escape(title or 'Rendered views')}</h3><p>{html.escape(settings)}</p>"
    try:
        sheet, n = _sheet(ds, dataset, per_label, 112)
    except ConfigError:  # no samples
        body = "<p>No rendered samples in this dataset (nothing to show).</p>"
    else:
        buf = io.BytesIO()
        sheet.save(buf, format="JPEG", quality=88)
        img = base64.b64encode(buf.getvalue()).decode()
        views = " | ".join(f"{y:+g}°" for y in c.yaws)
        body = (
            f"<p>{n} samples shown, up to {per_label} per label; views per sample: {html.escape(views)}.</p>"
            f'<img alt="contact sheet" style="max-width:100%" src="data:image/jpeg;base64,{img}">'
        )
    doc = f'<!doctype html><html><head><meta charset="utf-8"></head><body style="font-family:sans-serif">{head}{body}'
    Path(out_html).parent.mkdir(parents=True, exist_ok=True)
    Path(out_html).write_text(doc + "</body></html>\n")
    return Path(out_html)


def _sheet(ds: RenderedDataset, dataset, per_label: int, thumb: int) -> tuple[Image.Image, int]:
    picked: dict[str, list[tuple[str, np.ndarray]]] = {}
    for sid, views, row in ds:
        lst = picked.setdefault(str(row.get("label")), [])
        if len(lst) < per_label:
            lst.append((sid, views))
    if not picked:
        raise ConfigError(f"{dataset}: no rendered samples for a contact sheet")
    n_views = len(ds.config.yaws)
    label_w, pad, text_h = 110, 6, 14
    cell_w = n_views * thumb + pad
    w = label_w + per_label * cell_w
    h = len(picked) * (thumb + text_h + pad) + 20
    sheet = Image.new("RGB", (w, h), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    c = ds.config
    draw.text((4, 4), f"mode={c.mode} views={list(c.yaws)} size={c.size} temporal={c.temporal}", fill=(200, 200, 200))
    for r, (label, items) in enumerate(sorted(picked.items())):
        y = 20 + r * (thumb + text_h + pad)
        draw.text((4, y + thumb // 2), label, fill=(255, 255, 255))
        for k, (sid, views) in enumerate(items):
            x = label_w + k * cell_w
            for v in range(n_views):
                sheet.paste(Image.fromarray(views[v]).resize((thumb, thumb)), (x + v * thumb, y))
            draw.text((x, y + thumb), sid[:26], fill=(170, 170, 170))
    return sheet, sum(len(v) for v in picked.values())
