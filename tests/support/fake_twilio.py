"""A fake of Twilio's Messages API on loopback, recording what the official SDK sent.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth (account sid, auth
token) and a form (``To``, ``From``, ``Body``, ``StatusCallback``); answers 201 with the
message resource, or Twilio's error body when ``next_error`` holds one.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request

from .services import serve_wsgi

__all__ = ["FakeTwilio", "fake_twilio"]


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-twilio-token"
    sent: list[dict[str, str]] = field(default_factory=list)
    next_error: list[tuple[int, int, str]] = field(default_factory=list)   # (HTTP status, Twilio code, message)
    url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("fake_twilio")

        @app.post("/2010-04-01/Accounts/<sid>/Messages.json")
        def create(sid: str) -> tuple[Response, int]:
            auth = request.authorization
            if sid != self.account_sid or auth is None or (auth.username, auth.password) != (
                    self.account_sid, self.auth_token):
                return jsonify(code=20003, message="Authenticate", status=401), 401
            with self._lock:
                if self.next_error:
                    status, code, message = self.next_error.pop(0)
                    return jsonify(code=code, message=message, status=status,
                                   more_info=f"https://www.twilio.com/docs/errors/{code}"), status
                message_sid = f"SM{next(self._ids):032x}"
                form = request.form.to_dict()
                self.sent.append({**form, "Sid": message_sid})
            return jsonify(sid=message_sid, account_sid=sid, to=form.get("To"), **{"from": form.get("From")},
                           body=form.get("Body"), status="queued", num_segments="1", direction="outbound-api",
                           api_version="2010-04-01", date_created=None, date_sent=None, date_updated=None,
                           error_code=None, error_message=None, price=None, price_unit="USD",
                           uri=f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"), 201

        return app


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serve_wsgi(fake.app()) as url:
        fake.url = url
        yield fake
