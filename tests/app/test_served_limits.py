"""What the engine's default server (granian, ``app/web_servers.py``) answers before the app sees a request:
oversized headers, an oversized request line, and bytes that are not HTTP get a short 4xx, never a 500 or a
hang; a request within the limits reaches the app and gets its screen."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from ..support.engine import served_engine

FORM = {"sessionId": "ATUid_limits", "serviceCode": "*123#", "phoneNumber": "+221770000001",
        "networkCode": "99999", "text": ""}


@pytest.fixture
def served(settings, tmp_path) -> Iterator[str]:
    with served_engine(settings, tmp_path / "server.log") as url:
        yield url


def test_headers_past_64_kb_are_refused_before_the_app_and_smaller_ones_get_their_screen(served):
    big = requests.post(f"{served}/ussd/africastalking", data=FORM, headers={"X-Padding": "a" * 70_000}, timeout=10)
    assert big.status_code == 431
    fair = requests.post(f"{served}/ussd/africastalking", data=FORM, headers={"X-Padding": "a" * 7_000}, timeout=10)
    assert fair.status_code == 200 and fair.text.startswith("CON ")


def test_a_request_line_too_long_or_bytes_that_are_not_http_get_a_short_refusal(served):
    long_line = requests.post(f"{served}/ussd/africastalking?{'a' * 100_000}=1", data=FORM, timeout=10)
    assert long_line.status_code == 431   # the request line counts in the 64 KB of headers
    host, port = served.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GARBAGE\r\n\r\n")
        assert raw.recv(200).startswith(b"HTTP/1.1 400 ")
