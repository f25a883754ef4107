"""The rasa-sdk action that makes one engine hop per user message, and the executor that holds it.

The Rasa server calls ``action_elecnet_turn`` (its stories or rules route the customer's messages
to it); the action reads the tracker's latest message, runs one hop of the engine in a worker
thread (the engine is synchronous: run inline it would block Sanic's event loop for every other
conversation) and answers with the screen as text and buttons. Nothing else: no slot carries
what the customer typed, so a PIN stays out of Rasa's slots as it stays out of our sessions.

A message without a verified number (``identity.py``) is answered with how to get one, without
touching the engine: every flow of ours starts by finding the caller's accounts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from engine import Engine
from engine.masking import mask

from ..adapter import BadRequest
from .channel import RasaChannel, RasaMessage

__all__ = ["ACTION_NAME", "ElecnetTurn", "build_executor"]

log = logging.getLogger("channels.rasa")

ACTION_NAME: Final = "action_elecnet_turn"
# The channel's own answers, in the customer's language when known (French by default).
TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "unverified": {
        "fr": "Pour consulter votre compte ici, ouvrez la discussion depuis l'application après avoir "
              "vérifié votre numéro de téléphone, ou composez le code USSD depuis ce numéro.",
        "en": "To use your account here, open the chat from the app once your phone number is verified, "
              "or dial the USSD code from that number.",
    },
    "unreadable": {
        "fr": "Message illisible. Merci de réessayer.",
        "en": "We could not read that message. Please try again.",
    },
    "error": {
        "fr": "Service momentanément indisponible. Merci de réessayer plus tard.",
        "en": "Service temporarily unavailable. Please try again later.",
    },
}


def _text(key: str, language: str | None) -> str:
    return TEXTS[key].get(language or "fr") or TEXTS[key]["fr"]


class ElecnetTurn(Action):
    """``action_elecnet_turn``: the customer's latest message through one engine hop."""

    def __init__(self, engine: Engine, channel: RasaChannel) -> None:
        self.engine = engine
        self.channel = channel

    def name(self) -> str:
        return ACTION_NAME

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        latest = tracker.latest_message if isinstance(tracker.latest_message, Mapping) else {}
        language = self.channel.language_hint(latest)
        try:
            turn = self.channel.parse(RasaMessage(tracker.sender_id, latest))
        except BadRequest as exc:
            log.info("rasa message refused: %s", exc)
            dispatcher.utter_message(text=_text("unreadable", language))
            return []
        if turn.customer is None:
            log.info("rasa message without a verified number sender=%s", mask(turn.address))
            dispatcher.utter_message(text=_text("unverified", language))
            return []
        try:
            reply = await asyncio.to_thread(self.engine.handle, turn)
        except Exception as exc:  # noqa: BLE001 - the engine answers its own failures; this is worse: say sorry
            log.error("rasa hop failed sender=%s: %s", mask(turn.address), type(exc).__name__)
            dispatcher.utter_message(text=_text("error", language))
            return []
        rendered = self.channel.render(reply)
        node = reply.screen.node if reply.screen else "-"
        log.info("rasa hop sender=%s node=%s end=%s", mask(turn.address), node, reply.end)
        if rendered.buttons:
            dispatcher.utter_message(text=rendered.text, buttons=rendered.buttons)
        else:
            dispatcher.utter_message(text=rendered.text)
        return []


def build_executor(engine: Engine, channel: RasaChannel) -> ActionExecutor:
    """An executor holding exactly our actions (registered here, never by importing a package)."""
    engine.declare(channel.capabilities, channel.session_policy.idle_seconds,
                   channel.session_policy.key_ends_with_session)
    executor = ActionExecutor()
    executor.register_action(ElecnetTurn(engine, channel))
    return executor
