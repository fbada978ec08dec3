"""The request kinds are one table (serving/inputs.py ``REQUEST_KINDS``): a kind registered there alone is
decoded by V1 and V2, listed in the model metadata and (if rendered) dispatched by the render job."""

import asyncio
import shutil

import numpy as np
import pytest

from facet_lib.config import Limits, RenderConfig, ServeConfig
from facet_lib.serving import inputs, render_pool
from facet_lib.serving.decoding import RequestError
from facet_lib.serving.inputs import REQUEST_KINDS, Job, RequestKind, parse_v1, parse_v2
from facet_lib.serving.predictor import FacetPredictor
from facet_lib.serving.wire import Tensor, V2Body

SIZE = 8


def _gray_v1(inst, field, ctx):
    level = inst["gray"]
    if not isinstance(level, int) or not 0 <= level <= 255:
        raise RequestError(f"{field}.gray: expected a grey level 0-255")
    ctx.budget.add(f"{field}.gray", pixels=3 * ctx.size * ctx.size)
    return Job(field, "gray", views=np.full((3, ctx.size, ctx.size, 3), level, np.uint8))


def _gray_v2(inp, field, ctx):
    levels = np.asarray(inp.data, np.uint8).reshape(-1)
    ctx.budget.add(f"{field}.shape[0]", samples=len(levels))
    return [
        Job(f"{field}[{b}]", "gray", views=np.full((3, ctx.size, ctx.size, 3), v, np.uint8))
        for b, v in enumerate(levels)
    ]


# a toy kind: one grey level per sample, the same flat image as every view (decoded, not rendered)
GRAY = RequestKind("gray", _gray_v1, _gray_v2, "UINT8", (-1,))


@pytest.fixture
def gray(monkeypatch):
    monkeypatch.setitem(REQUEST_KINDS, "gray", GRAY)
    return GRAY


def _metadata() -> list[dict]:
    p = FacetPredictor(ServeConfig())  # nothing loaded: the view side reads -1
    try:
        return p.get_input_types()
    finally:
        shutil.rmtree(p._cache, ignore_errors=True)


def test_a_kind_registered_in_the_table_alone_is_served(gray):
    req = parse_v1({"instances": [{"gray": 7}, {"gray": 200}]}, SIZE, Limits())
    assert [j.kind for j in req.jobs] == ["gray", "gray"] and not any(j.needs_render for j in req.jobs)
    assert req.jobs[1].views.shape == (3, SIZE, SIZE, 3) and int(req.jobs[1].views.max()) == 200
    with pytest.raises(
        RequestError, match=r"instances\[0\]: expected exactly one of 'views', 'scan', 'sequence', 'gray'"
    ):
        parse_v1({"instances": [{"gray": 1, "views": []}]}, SIZE, Limits())

    v2 = parse_v2(V2Body([Tensor("gray", "UINT8", [3], data=[1, 2, 3])], {}), SIZE, Limits())
    assert [j.field for j in v2.jobs] == ["inputs[gray][0]", "inputs[gray][1]", "inputs[gray][2]"]
    with pytest.raises(RequestError, match=r"inputs\[gray\]\.datatype: expected UINT8, got 'BYTES'"):
        parse_v2(V2Body([Tensor("gray", "BYTES", [1], data=["x"])], {}), SIZE, Limits())
    with pytest.raises(RequestError, match="expected views, scan, sequence, gray or prompts"):
        parse_v2(V2Body([Tensor("grey", "UINT8", [1], data=[1])], {}), SIZE, Limits())
    with pytest.raises(RequestError, match="samples in this request exceed the limit of 2"):  # one budget
        parse_v2(V2Body([Tensor("gray", "UINT8", [3], data=[1, 2, 3])], {}), SIZE, Limits(max_instances=2))

    assert {"name": "gray", "datatype": "UINT8", "shape": [-1]} in _metadata()
    p = FacetPredictor(ServeConfig())
    try:  # the predictor's path from decoded jobs to the model's input: no rendering asked for
        views = asyncio.run(p._views(req))
    finally:
        shutil.rmtree(p._cache, ignore_errors=True)
    assert views.shape == (2, 3, SIZE, SIZE, 3)


def test_a_rendered_kind_is_dispatched_by_the_render_job(monkeypatch):
    def render(job, cfg, read):
        return np.full((3, cfg.size, cfg.size, 3), len(job.files[0]), np.uint8)

    blob = RequestKind(
        "blob", lambda inst, field, ctx: Job(field, "blob", files=[b"abc"], fmt="wrl"), None, "BYTES", (-1,), render
    )
    monkeypatch.setitem(REQUEST_KINDS, "blob", blob)
    (job,) = parse_v1({"instances": [{"blob": "x"}]}, SIZE, Limits()).jobs
    assert job.needs_render
    assert int(render_pool.render_job(job, RenderConfig(size=16), Limits()).max()) == 3
    with pytest.raises(RequestError, match="required with a scan, sequence or blob"):  # the rendered kinds
        inputs.check_format(None, "parameters.format")


def test_the_table_and_the_metadata_agree():
    assert list(REQUEST_KINDS) == ["views", "scan", "sequence"]
    meta = _metadata()
    assert [m["name"] for m in meta] == [*REQUEST_KINDS, "prompts"]
    for kind, m in zip(REQUEST_KINDS.values(), meta):
        assert m == kind.v2_metadata(-1) and m["datatype"] == kind.v2_datatype
        other = "BYTES" if kind.v2_datatype != "BYTES" else "UINT8"
        with pytest.raises(RequestError, match=rf"inputs\[{kind.name}\]\.datatype: expected {kind.v2_datatype}"):
            parse_v2(V2Body([Tensor(kind.name, other, [1], data=[0])], {}), SIZE, Limits())
    assert meta[0]["shape"] == [-1, 3, -1, -1, 3] and REQUEST_KINDS["views"].v2_metadata(SIZE)["shape"][2:4] == [8, 8]
    assert {k for k, v in REQUEST_KINDS.items() if v.needs_render} == {"scan", "sequence"}
    assert meta[-1] == {**inputs.PROMPTS_INPUT, "shape": [-1]}
