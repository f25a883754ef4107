"""A fake Africa's Talking SMS API on loopback that records what the official SDK sent.

It speaks the provider's protocol: form POST to ``/version1/messaging`` with the API key
in the ``apiKey`` header, a JSON answer with content type ``application/json`` and one
status per recipient. ``next_status`` programs the answer of the following sends (a
refusal, a provider error), ``fail_next`` makes the next sends answer HTTP 500.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from flask import Flask, Response, jsonify, request

from .services import serve_wsgi

__all__ = ["FakeAfricasTalking", "SentMessage", "fake_africastalking", "provider"]

_STATUS_WORDS = {100: "Processed", 101: "Success", 102: "Queued", 403: "InvalidPhoneNumber",
                 405: "InsufficientBalance", 406: "UserInBlacklist", 500: "InternalServerError",
                 501: "GatewayError"}


@dataclass(frozen=True)
class SentMessage:
    to: str
    message: str
    sender: str | None
    username: str
    api_key: str
    message_id: str


@dataclass
class FakeAfricasTalking:
    api_key: str = "test-at-key"
    username: str = "sandbox"
    sent: list[SentMessage] = field(default_factory=list)
    next_status: list[int] = field(default_factory=list)
    fail_next: int = 0
    url: str = ""
    hold: threading.Event | None = None     # when set: record the message, then answer only once released
    on_send: Callable[[], None] | None = None   # called as a send arrives, before it is answered
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("fake_africastalking")

        @app.post("/version1/messaging")
        def messaging() -> Response | tuple[Response, int] | tuple[str, int]:
            if request.headers.get("apiKey") != self.api_key:
                return "The supplied authentication is invalid", 401
            form = request.form
            if self.on_send is not None:
                self.on_send()
            with self._lock:
                if self.fail_next > 0:
                    self.fail_next -= 1
                    return "Internal Server Error", 500
                recipients = []
                for number in (form.get("to") or "").split(","):
                    code = self.next_status.pop(0) if self.next_status else 101
                    message_id = f"ATXid_{next(self._ids):08d}" if code < 200 else "None"
                    if code < 200:
                        self.sent.append(SentMessage(number, form.get("message", ""), form.get("from"),
                                                     form.get("username", ""), request.headers["apiKey"],
                                                     message_id))
                    recipients.append({"statusCode": code, "number": number,
                                       "status": _STATUS_WORDS.get(code, "Failed"),
                                       "cost": "XOF 25" if code < 200 else "0", "messageId": message_id})
            if self.hold is not None:
                self.hold.wait(30)
            return jsonify(SMSMessageData={"Message": f"Sent to {len(self.sent)}", "Recipients": recipients})

        return app

    def messages_to(self, number: str) -> list[str]:
        with self._lock:
            return [m.message for m in self.sent if m.to == number]


@contextmanager
def fake_africastalking() -> Iterator[FakeAfricasTalking]:
    fake = FakeAfricasTalking()
    with serve_wsgi(fake.app()) as url:
        fake.url = f"{url}/version1"
        yield fake


@pytest.fixture
def provider() -> Iterator[FakeAfricasTalking]:
    """Africa's Talking's messaging API, faked on loopback for one test (a plugin of tests/conftest.py)."""
    with fake_africastalking() as fake:
        yield fake
