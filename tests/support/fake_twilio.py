"""A fake of Twilio's Messages API on loopback, recording what the official SDK sent.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth (account sid, auth
token) and a form (``To``, ``From``, ``Body`` or ``ContentSid`` + ``ContentVariables``,
``StatusCallback``); answers 201 with the message resource, or Twilio's error body when
``next_error`` holds one. ``ContentVariables`` must be a JSON object of non-empty texts and comes with
a ``ContentSid`` (Twilio's 21656 and 21654 otherwise).

The status Twilio then posts to the message's ``StatusCallback`` is kept in ``callbacks`` (the form,
unsigned: the test signs it as Twilio would and posts it to the product): ``delivered``, or for free
text to a number in ``window_closed`` (no message from it in 24 hours), ``undelivered`` with
``ErrorCode`` 63016, as Twilio reports a WhatsApp text outside the customer-service window.
``before_answer``, when set, is called (the status kept) before the answer goes: the test can post that
status before the sender learns the message's SID, as a fast callback may arrive.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
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
    window_closed: set[str] = field(default_factory=set)    # E.164 numbers that have not written for 24 hours
    callbacks: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (StatusCallback URL, form)
    before_answer: Callable[[], None] | None = None
    url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("fake_twilio")

        def error(status: int, code: int, message: str) -> tuple[Response, int]:
            return jsonify(code=code, message=message, status=status,
                           more_info=f"https://www.twilio.com/docs/errors/{code}"), status

        @app.post("/2010-04-01/Accounts/<sid>/Messages.json")
        def create(sid: str) -> tuple[Response, int]:
            auth = request.authorization
            if sid != self.account_sid or auth is None or (auth.username, auth.password) != (
                    self.account_sid, self.auth_token):
                return error(401, 20003, "Authenticate")
            form = request.form.to_dict()
            if "ContentVariables" in form:
                if "ContentSid" not in form:
                    return error(400, 21654, "ContentSid Required")
                try:
                    variables = json.loads(form["ContentVariables"])
                except ValueError:
                    variables = None
                if not isinstance(variables, dict) or not all(isinstance(v, str) and v for v in variables.values()):
                    return error(400, 21656, "The ContentVariables Parameter is invalid")
            with self._lock:
                if self.next_error:
                    return error(*self.next_error.pop(0))
                message_sid = f"SM{next(self._ids):032x}"
                self.sent.append({**form, "Sid": message_sid})
                to = form.get("To", "")
                if form.get("StatusCallback"):
                    outside = "ContentSid" not in form and to.removeprefix("whatsapp:") in self.window_closed
                    self.callbacks.append((form["StatusCallback"], {
                        "MessageSid": message_sid, "SmsSid": message_sid, "AccountSid": sid, "To": to,
                        "From": form.get("From", ""), "ApiVersion": "2010-04-01",
                        **({"MessageStatus": "undelivered", "SmsStatus": "undelivered", "ErrorCode": "63016"}
                           if outside else {"MessageStatus": "delivered", "SmsStatus": "delivered"})}))
            if self.before_answer is not None:
                self.before_answer()
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
