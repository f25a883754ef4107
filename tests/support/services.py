"""Reaching the real services tests need (Redis, PostgreSQL, MQTT) and serving WSGI apps on loopback.

Without ``REQUIRE_SERVICES=1`` a missing service skips the test with the reason;
with it (as in ``.ci/run``) the test fails instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest
import requests
from werkzeug.serving import make_server

REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_TEST_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MQTT_TEST_URL = os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, url: str, default_port: int) -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) when the service at ``url`` is not reachable."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_wsgi(app: object, port: int = 0) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1 in a thread; yields its base URL (no trailing slash)."""
    server = make_server("127.0.0.1", port, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_until_up(url: str, process: subprocess.Popen[bytes] | None = None, seconds: float = 60.0) -> None:
    """Poll ``url`` until it answers 2xx; fail if ``process`` (the server) exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")
