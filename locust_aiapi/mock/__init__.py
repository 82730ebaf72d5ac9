"""An OpenAI-compatible mock AI API server for rehearsals, tests and benchmarks.

It shares nothing with the client side of locust-aiapi but the wire format. Run it with
`locust-aiapi-mock --help`, or in process::

    server = MockServer(MockConfig(port=0, ttft_ms=50))
    base_url = server.start()  # serves in the gevent hub
    ...
    server.stop()

or as a child process (what tests, demos and benchmarks use)::

    with MockProcess(["--ttft-ms", "200"]) as mock:
        ...  # mock.url
"""

from __future__ import annotations

from ._cli import main
from ._config import MockConfig, MockConfigError
from ._process import MockProcess, MockStartError
from ._server import MockServer

__all__ = ["MockConfig", "MockConfigError", "MockProcess", "MockServer", "MockStartError", "main"]
