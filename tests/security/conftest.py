# The serving fixtures (a tiny bundle and one real server process on 127.0.0.1) are shared with tests/serving.
import asyncio

import httpx
import pytest

from tests.serving.conftest import bundle, scan_b64, scan_path, server, views  # noqa: F401


class InProcess:
    """The server's ASGI app on an in-process transport (no sockets), driven from one event loop."""

    def __init__(self, app, predictor):
        self.app, self.predictor = app, predictor
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://facet", timeout=120)

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kw))

    def gather(self, *calls) -> list:
        async def run():
            return await asyncio.gather(*(self.client.request(m, p, **kw) for m, p, kw in calls))

        return self.loop.run_until_complete(run())

    def close(self):
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture(scope="session")
def inproc(bundle):  # noqa: F811
    """The app in-process with one render worker and the default limits."""
    from facet_lib.config import Limits, ServeConfig
    from facet_lib.serving.predictor import FacetPredictor
    from facet_lib.serving.server import build_app

    cfg = ServeConfig(model=str(bundle), name="facet-vlm", limits=Limits(render_workers=1, render_timeout_s=10))
    predictor = FacetPredictor(cfg)
    predictor.load()
    ip = InProcess(build_app(predictor, cfg), predictor)
    yield ip
    ip.close()
    predictor.pool.close()
