"""A Rasa server talking to our action server: each ``say`` is one ``POST /webhook`` with the JSON
the Rasa server sends after its NLU read the user's message (text, intent, entities, metadata),
answered by rasa-sdk's app in process (``asgi_client``). The identity claim is what a front
channel that verified the number signs (``channels.rasa.identity``)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from sanic import Sanic

from channels.rasa import ACTION_NAME, sign_identity

_ids = itertools.count(1)

DOMAIN: dict[str, Any] = {
    "version": "3.1",
    "intents": ["greet", "check_balance", "check_consumption", "pay_bill", "report_outage", "track_request",
                "simulate_bill"],
    "entities": ["elecnet_choice"], "slots": {}, "responses": {}, "forms": {},
    "actions": [ACTION_NAME], "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
}


def post(app: Sanic, path: str, body: Any = None, *, token: str | None = None,
         headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, Any]:
    """One HTTP call to the app: its status and JSON answer."""
    url = path + (f"?token={token}" if token is not None else "")

    async def call() -> Any:
        if data is not None:
            return await app.asgi_client.post(url, content=data, headers=headers or {})
        return await app.asgi_client.post(url, json=body, headers=headers or {})

    _, response = asyncio.run(call())
    return response.status, response.json


def action_call(sender_id: str, latest: dict[str, Any], *, domain: bool = True,
                next_action: str = ACTION_NAME) -> dict[str, Any]:
    body: dict[str, Any] = {
        "next_action": next_action, "sender_id": sender_id, "version": "3.21.0",
        "tracker": {"sender_id": sender_id, "slots": {}, "latest_message": latest, "events": [], "paused": False,
                    "followup_action": None, "active_loop": {}, "latest_action_name": "action_listen"}}
    if domain:
        body["domain"] = DOMAIN
    else:
        body["domain_digest"] = "d41d8cd98f00b204e9800998ecf8427e"
    return body


class RasaChat:
    """One chatbot user (``sender_id``) whose front channel vouches for ``msisdn`` (``None``: for nobody)."""

    def __init__(self, app: Sanic, token: str, sender_id: str, msisdn: str | None, secret: str,
                 language: str | None = None) -> None:
        self.app, self.token, self.sender_id, self.msisdn = app, token, sender_id, msisdn
        self.secret, self.language = secret, language
        self.buttons: list[dict[str, str]] = []
        self.last: dict[str, Any] = {}
        self.last_body: dict[str, Any] = {}

    def latest(self, text: str, intent: str | None = None, entities: list[dict[str, Any]] | None = None,
               message_id: str | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        if self.msisdn is not None:
            metadata["elecnet_identity"] = sign_identity(self.secret, self.msisdn, self.sender_id,
                                                         int(time.time()) + 600)
        if self.language:
            metadata["language"] = self.language
        return {"text": text, "intent": {"name": intent or "nlu_fallback", "confidence": 0.97},
                "entities": entities or [], "message_id": message_id or f"msg{next(_ids):06d}",
                "metadata": metadata}

    def send(self, text: str, intent: str | None = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        self.last_body = action_call(self.sender_id, self.latest(text, intent, **kwargs))
        status, answer = post(self.app, "/webhook", self.last_body, token=self.token)
        self.last = answer
        return status, answer

    def say(self, text: str, intent: str | None = None, **kwargs: Any) -> str:
        """The bot's one message in answer; its buttons are kept in ``buttons``."""
        status, answer = self.send(text, intent, **kwargs)
        assert status == 200, answer
        assert answer["events"] == [], answer
        assert len(answer["responses"]) == 1, answer
        self.buttons = answer["responses"][0].get("buttons") or []
        return str(answer["responses"][0]["text"])

    def press(self, title: str) -> str:
        """Taps the button titled ``title``: the Rasa front sends its payload as the message."""
        payload = next(b["payload"] for b in self.buttons if b["title"] == title)
        return self.say(payload)

    def titles(self) -> list[str]:
        return [b["title"] for b in self.buttons]
