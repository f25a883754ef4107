"""A chatbot user on a web chat widget, with no front-channel claim: a random conversation id, the action
server on Redis (production) and on the embedded default, and the SMS the phone receives from the fake
Africa's Talking on loopback. Fixtures for the chat's sign-in and guest tests (import them by name)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from sanic import Sanic

from app.actions_server import build_action_app
from app.factory import build_dispatcher
from app.settings import Settings
from channels.rasa import sign_client
from tests.support.fake_africastalking import FakeAfricasTalking

from .rasa_chat import RasaChat

__all__ = ["AWA", "FRONT_SECRET", "GUEST_FR", "TOKEN", "FrontedVisitor", "Visitor", "action_app", "chat_settings",
           "code_in", "security_events", "sms", "visitor"]

TOKEN = "rasa-action-token-for-tests"
FRONT_SECRET = "front-channel-secret"    # what the front channel signs claims and client addresses with
AWA = "+221770000001"
# The first answer to a chat user nobody has signed in: what needs no account (the guest flow's menu).
GUEST_FR = "Bienvenue chez ElecNet. Sans vous connecter:"


@pytest.fixture(params=["redis", "embedded"])
def chat_settings(request: pytest.FixtureRequest, settings: Settings, provider: FakeAfricasTalking) -> Settings:
    """Both set-ups: Redis (production), and the embedded default (codes and sign-ins in this process)."""
    found = replace(settings, rasa_action_token=TOKEN, rasa_identity_secret=FRONT_SECRET,
                    at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                    quiet_hours="")
    return found if request.param == "redis" else replace(found, redis_url="")


@pytest.fixture
def action_app(chat_settings: Settings) -> Iterator[Sanic]:
    app = build_action_app(chat_settings)
    yield app
    Sanic.unregister_app(app)


@pytest.fixture
def sms(action_app: Sanic, chat_settings: Settings, provider: FakeAfricasTalking) -> Callable[[str], list[str]]:
    """The SMS the phone ``number`` has received, once the worker delivered the outbox."""
    dispatcher = build_dispatcher(chat_settings, action_app.ctx.parts["db"])

    def received(number: str) -> list[str]:
        dispatcher.run_once()
        return provider.messages_to(number)

    return received


def code_in(message: str) -> str:
    found = re.search(r"\b(\d{6})\b", message)
    assert found, message
    return found.group(1)


class Visitor(RasaChat):
    """A web chat widget's user: a random conversation id, no claim from any front channel."""

    def __init__(self, app: Sanic, language: str | None = None, sender_id: str | None = None) -> None:
        super().__init__(app, TOKEN, sender_id or str(uuid.uuid4()), None, "", language)

    def answers(self, text: str, **kwargs: Any) -> list[str]:
        """Every message the bot answered with (signing in answers two: the welcome, then the menu)."""
        status, answer = self.send(text, **kwargs)
        assert status == 200, answer
        responses: list[dict[str, Any]] = answer["responses"]
        self.buttons = responses[-1].get("buttons") or []
        return [str(r["text"]) for r in responses]


class FrontedVisitor(Visitor):
    """A web chat user whose front channel signs the browser's network address into each message."""

    def __init__(self, app: Sanic, address: str, secret: str = FRONT_SECRET) -> None:
        super().__init__(app, sender_id=f"bot-{uuid.uuid4().hex}")
        self.address, self.secret = address, secret

    def latest(self, text: str, intent: str | None = None, entities: list[dict[str, Any]] | None = None,
               message_id: str | None = None) -> dict[str, Any]:
        latest = super().latest(text, intent, entities, message_id)
        latest["metadata"]["elecnet_client"] = sign_client(self.secret, self.address, self.sender_id,
                                                           int(time.time()) + 600)
        return latest


@pytest.fixture
def visitor(action_app: Sanic) -> Callable[..., Visitor]:
    return lambda language=None, sender_id=None: Visitor(action_app, language, sender_id)




def security_events(app: Sanic, number: str) -> list[tuple[str, str, str]]:
    """What an IT analyst reads in the audit for ``number`` (``python -m app audit --number``), oldest first."""
    return [(e.kind, e.channel, e.detail) for e in reversed(app.ctx.parts["security"].for_subject(number))]
