"""A contact-sheet PNG: a few samples per label, each with its views side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facet_lib.render.dataset import RenderedDataset


def contact_sheet(dataset: str | Path, out_png: str | Path, per_label: int = 3, thumb: int = 112) -> Path:
    """Write a grid: one row per label, ``per_label`` samples per row, all views of each sample."""
    ds = RenderedDataset(dataset)
    picked: dict[str, list[tuple[str, np.ndarray]]] = {}
    for sid, views, row in ds:
        lst = picked.setdefault(str(row.get("label")), [])
        if len(lst) < per_label:
            lst.append((sid, views))
    if not picked:
        raise ValueError(f"{dataset}: no rendered samples for a contact sheet")
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
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png)
    return Path(out_png)
