"""A render failure record names the scan file, also for an unexpected library error (issue 18.5)."""

import facet_lib.render.dataset as rd


def test_unexpected_render_error_names_the_file(monkeypatch):
    def boom(*a, **k):
        raise IndexError("index -5 is out of bounds for axis 0 with size 4")

    monkeypatch.setattr(rd, "render_row", boom)
    row = {"sample_id": "F0001_HA04", "path": "F0001/F0001_HA04_F3D.wrl", "frames": []}
    sid, views, err, notes = rd._render_task((row, rd.RenderConfig().to_dict(), "/data", 0))
    assert sid == "F0001_HA04" and views is None
    assert err.startswith("F0001/F0001_HA04_F3D.wrl: IndexError: index -5"), err
