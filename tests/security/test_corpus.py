"""The hostile corpus (tests/security/corpus.py) against the server's app in-process: every case a
4xx (501 for a route this server does not implement) with a short ``{"error": ...}``, never a 5xx,
and the model stays ready after each one."""

import re

import pytest

from tests.security.corpus import cases

CASES = [c for c in cases() if not c.socket]
READY = "/v2/models/facet-vlm/ready"


def test_corpus_is_large_enough():
    assert len(cases()) >= 240, len(cases())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case_is_a_short_4xx_and_the_model_stays_ready(inproc, case):
    r = inproc.request(case.method, case.path.format(m="facet-vlm"), content=case.content(), headers=case.headers)
    assert r.status_code < 500 or r.status_code == 501, (case.id, r.status_code, r.text[:300])
    assert case.allows(r.status_code), (case.id, r.status_code, r.text[:300])
    if r.status_code != 405 and r.headers.get("content-type", "").startswith("application/json"):
        err = r.json().get("error") or r.json().get("detail") or ""
        assert case.text in str(err), (case.id, err)
        assert not re.search(r"0x[0-9a-f]{6,}", str(err)), f"{case.id}: object address in {err!r}"
        assert "facet-req-" not in str(err) and "/tmp/" not in str(err), f"{case.id}: server path in {err!r}"
    assert len(r.content) < 2000, f"{case.id}: {len(r.content)}-byte error echoes the input"
    assert inproc.request("GET", READY).status_code == 200, f"{case.id}: model not ready afterwards"
