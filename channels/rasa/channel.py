"""The chatbot channel's wire format: a rasa-sdk tracker in, a text with buttons out.

``parse`` reads what the Rasa server sent about the user's latest message (its text, the intent
Rasa recognised, a button's payload, the signed identity in its metadata) into a ``Turn``;
``render`` lays the engine's ``Reply`` out as one Rasa response: the screen's text, its options
and navigation as buttons whose payload is the option key (what the user would type).

A conversation is keyed by the Rasa ``sender_id`` together with the verified customer, so a
conversation id learnt or guessed by someone else never reaches a customer's session: the claim
is signed for one ``sender_id`` (``identity.py``). What the user typed (a PIN) is never logged.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from engine import ChannelCapabilities, Reply, Turn
from menus.schema import BACK, HOME, NEXT_PAGE, PREVIOUS_PAGE

from ..adapter import BadRequest, Channel, KeyedBySender
from .identity import IdentityVerifier

__all__ = ["CAPABILITIES", "CHANNEL", "CHOICE_ENTITY", "RasaChannel", "RasaMessage", "Rendered"]

CHANNEL: Final = "rasa"
# A button's payload may also arrive as this entity (``/choose{"elecnet_choice": "2"}``).
CHOICE_ENTITY: Final = "elecnet_choice"
NAVIGATION_WORDS: Final = {"retour": BACK, "back": BACK, "menu": HOME, "accueil": HOME, "home": HOME,
                           "suite": NEXT_PAGE, "more": NEXT_PAGE, "next": NEXT_PAGE,
                           "precedent": PREVIOUS_PAGE, "previous": PREVIOUS_PAGE}
# A chat bubble: long enough for any screen of ours; buttons carry the options.
CAPABILITIES: Final = ChannelCapabilities(CHANNEL, max_chars=4096, charset="unicode",
                                          navigation_words=NAVIGATION_WORDS)
DEFAULT_IDLE_SECONDS: Final = 900
MAX_TEXT_CHARS: Final = 1000
_SENDER = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")
_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,128}$")


@dataclass(frozen=True, slots=True)
class Rendered:
    """One Rasa response: ``dispatcher.utter_message(text=..., buttons=...)``."""

    text: str
    buttons: list[dict[str, str]]


def _clean(text: str) -> str:
    """One chat message as one line of input: control characters become spaces."""
    return " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in text).split())


def _entity(entities: object, name: str) -> str | None:
    if not isinstance(entities, list):
        return None
    for entity in entities:
        if isinstance(entity, Mapping) and entity.get("entity") == name and isinstance(entity.get("value"), str | int):
            return str(entity["value"])
    return None


@dataclass(frozen=True, slots=True)
class RasaMessage:
    """What the action server hands the channel: the tracker's sender id and its latest message (unchecked)."""

    sender_id: object
    latest: object


@dataclass(frozen=True)
class RasaChannel(KeyedBySender, Channel[RasaMessage, Rendered]):
    """Parse a tracker's latest message into a ``Turn``; render a ``Reply`` as text and buttons."""

    verifier: IdentityVerifier
    idle_seconds: int = DEFAULT_IDLE_SECONDS
    languages: tuple[str, ...] = field(default=("fr", "en"))
    channel: str = CHANNEL

    @property
    def capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def language_hint(self, latest: Mapping[str, Any]) -> str | None:
        metadata = latest.get("metadata")
        hint = metadata.get("language") if isinstance(metadata, Mapping) else None
        return hint if isinstance(hint, str) and hint in self.languages else None

    def client_of(self, request: RasaMessage) -> str | None:
        """The user's network address, when the front channel signed it for this conversation
        (``identity.CLIENT_KEY``); ``None`` otherwise (never raises)."""
        latest = request.latest
        if not isinstance(request.sender_id, str) or not isinstance(latest, Mapping):
            return None
        return self.verifier.client(latest.get("metadata"), request.sender_id)

    def parse(self, request: RasaMessage, vouched: str | None = None) -> Turn:
        """The latest user message as a ``Turn``; ``BadRequest`` when it cannot be read.

        ``customer`` is ``None`` unless the metadata carries a valid signed claim for this sender, or
        ``vouched`` names the number this conversation signed in as (``sign_in.py``)."""
        sender_id, latest = request.sender_id, request.latest
        if not isinstance(sender_id, str) or not _SENDER.match(sender_id):
            raise BadRequest("sender_id missing or malformed")
        if not isinstance(latest, Mapping):
            raise BadRequest("latest_message missing")
        raw = latest.get("text")
        if raw is not None and not isinstance(raw, str):
            raise BadRequest("text is not a string")
        if raw is not None and len(raw) > MAX_TEXT_CHARS:
            raise BadRequest(f"text longer than {MAX_TEXT_CHARS} characters")
        intent = latest.get("intent")
        name = intent.get("name") if isinstance(intent, Mapping) else None
        choice = _entity(latest.get("entities"), CHOICE_ENTITY)
        text = _clean(choice if choice is not None else raw or "")
        customer = self.verifier.verified(latest.get("metadata"), sender_id) or vouched
        message_id = latest.get("message_id")
        # Rasa's message id makes a retried call the same hop (answered again, not run again).
        hop_id = message_id if isinstance(message_id, str) and _MESSAGE_ID.match(message_id) else uuid.uuid4().hex
        # The session is the conversation's and the customer's: another number, another session.
        owner = hashlib.sha256(f"{customer or '-'}|{sender_id}".encode()).hexdigest()[:32]
        return Turn(channel=self.channel, address=sender_id, customer=customer,
                    session_key=self.session_policy.key(self.channel, address=owner),
                    input=text or None, hop_id=hop_id, entry="*", language_hint=self.language_hint(latest),
                    intent=name if isinstance(name, str) and _NAME.match(name) else None)

    def render(self, reply: Reply) -> Rendered:
        screen = reply.screen
        if screen is None or reply.pages > 1:
            # Closing answers and long paged lists: the laid-out page already says it all.
            return Rendered(reply.text, [] if reply.end else self._paging(reply))
        lines = ([screen.error] if screen.error else []) + list(screen.blocks)
        if reply.end:
            return Rendered("\n".join(lines), [])
        buttons = [{"title": o.label, "payload": o.key} for o in (*screen.options, *screen.nav)]
        return Rendered("\n".join(lines), buttons)

    @staticmethod
    def _paging(reply: Reply) -> list[dict[str, str]]:
        buttons = []
        if reply.page + 1 < reply.pages:
            buttons.append({"title": ">>", "payload": NEXT_PAGE})
        if reply.page > 0:
            buttons.append({"title": "<<", "payload": PREVIOUS_PAGE})
        return buttons
