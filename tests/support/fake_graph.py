"""A fake of Meta's Graph API (WhatsApp Cloud API messages) on loopback, recording what was sent.

``POST /{version}/{phone_number_id}/messages`` with ``Authorization: Bearer <token>`` and a JSON
body (``messaging_product: whatsapp``, ``to``, ``type`` and its part); answers 200 with
``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``, or
Meta's error body ``{"error": {"message", "type", "code", "fbtrace_id"}}`` when ``next_errors``
holds one (HTTP status, Meta code). A body that is not a valid message gets Meta's 400 (code 100).
``before_answer``, when set, is called with the message taken (its ``id`` included) before the answer
goes: Meta's status webhook outrunning its own send answer, as it may.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from .services import serve_wsgi

__all__ = ["FakeGraph", "fake_graph", "readable"]

VERSION = "v21.0"
_TYPES = {"text", "interactive", "template", "image", "document", "audio", "video", "location", "reaction"}


@dataclass
class FakeGraph:
    access_token: str = "test-meta-access-token"
    sent: list[dict[str, Any]] = field(default_factory=list)       # each body, plus "phone_number_id"
    next_errors: list[tuple[int, int]] = field(default_factory=list)
    before_answer: Callable[[dict[str, Any]], None] | None = None
    url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return f"{self.url}/{VERSION}"

    def app(self) -> Flask:
        app = Flask("fake_graph")

        def error(status: int, code: int, message: str) -> tuple[Response, int]:
            return jsonify(error={"message": message, "type": "OAuthException", "code": code,
                                  "fbtrace_id": "AbCdEf123"}), status

        @app.post(f"/{VERSION}/<phone_number_id>/messages")
        def messages(phone_number_id: str) -> tuple[Response, int]:
            if request.headers.get("Authorization") != f"Bearer {self.access_token}":
                return error(401, 190, "Invalid OAuth access token.")
            body = request.get_json(silent=True)
            if (not isinstance(body, dict) or body.get("messaging_product") != "whatsapp"
                    or not str(body.get("to", "")).isdigit() or body.get("type") not in _TYPES
                    or not isinstance(body.get(body["type"]), dict)):
                return error(400, 100, "Invalid parameter")
            with self._lock:
                if self.next_errors:
                    status, code = self.next_errors.pop(0)
                    return error(status, code, "Programmed failure")
                message_id = f"wamid.FAKE{next(self._ids):012d}"
                taken = {**body, "phone_number_id": phone_number_id, "id": message_id}
                self.sent.append(taken)
            if self.before_answer is not None:
                self.before_answer(taken)
            return jsonify(messaging_product="whatsapp", contacts=[{"input": body["to"], "wa_id": body["to"]}],
                           messages=[{"id": message_id}]), 200

        return app

    def messages_to(self, wa_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.sent if m["to"] == wa_id]


def readable(message: dict[str, Any]) -> str:
    """A sent message as the customer sees it: text; buttons as ``[1 Label]``; a list under its button."""
    if message["type"] == "text":
        return str(message["text"]["body"])
    interactive = message["interactive"]
    body = interactive["body"]["text"]
    action = interactive["action"]
    if interactive["type"] == "button":
        buttons = " ".join(f"[{b['reply']['id'].removeprefix('opt:')} {b['reply']['title']}]"
                           for b in action["buttons"])
        return f"{body}\n{buttons}"
    rows = [row for section in action["sections"] for row in section["rows"]]
    lines = [f"- {r['id'].removeprefix('opt:')} {r['title']}" + (f" ({r['description']})" if "description" in r
                                                                  else "") for r in rows]
    return "\n".join([body, f"({action['button']})", *lines])


@contextmanager
def fake_graph() -> Iterator[FakeGraph]:
    fake = FakeGraph()
    with serve_wsgi(fake.app()) as url:
        fake.url = url
        yield fake
