"""Fixtures of the back-office tests: an HTTP session, a loopback callback receiver, an API-keyed service."""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from backoffice import BackofficeConfig, create_app
from tests.support.services import serve_wsgi

API = "/api/v1"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def api(backoffice_url: str) -> str:
    return backoffice_url + API


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class CallbackReceiver:
    """A loopback HTTP endpoint recording every POST; answers ``fail_first`` 500s before 200s."""

    url: str = ""
    fail_first: int = 0
    calls: queue.Queue[Received] = field(default_factory=queue.Queue)
    _seen: int = 0

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.calls.put(Received(body, headers))
        self._seen += 1
        status = "500 Internal Server Error" if self._seen <= self.fail_first else "200 OK"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    def next(self, timeout: float = 5.0) -> Received:
        return self.calls.get(timeout=timeout)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    target = CallbackReceiver()
    with serve_wsgi(target.app) as url:
        target.url = url + "/callback"
        yield target


@pytest.fixture
def serve_with() -> Iterator[Callable[..., str]]:
    """Serve another back office built from ``backoffice_config`` with some fields replaced."""
    stack: list[Any] = []

    def serve(config: BackofficeConfig, **changes: Any) -> str:
        app = create_app(dataclasses.replace(config, **changes))
        server = serve_wsgi(app)
        url = server.__enter__()
        stack.append((app, server))
        return url

    yield serve
    for app, server in reversed(stack):
        server.__exit__(None, None, None)
        app.extensions["backoffice"].close()


def start_payment(api: str, http: requests.Session, key: str, **body: str) -> str:
    """A mobile-money payment started with the provider under the payer's ``key`` (``POST /payments``), left
    pending for the test to decide: its id."""
    started = http.post(f"{api}/payments", headers={"Idempotency-Key": key}, json=body)
    assert started.status_code == 202, started.text
    payment_id: str = started.json()["payment_id"]
    return payment_id
