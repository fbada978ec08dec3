# The serving fixtures (a tiny bundle and one real server process on 127.0.0.1) are shared with tests/serving.
from tests.serving.conftest import bundle, scan_b64, server, views  # noqa: F401
