"""Verifying a chatbot user's number in the chat itself: the number, then a one-time code sent to it by SMS.

The chatbot's other way in is a claim its front channel signs (``identity.py``). Where there is none (a
web chat widget on the utility's site), the conversation can prove the number as the web sign-in does:
the user sends a phone number, the product sends a code to it through the outbox (throttled per number
across every channel, per conversation, or per client address where the front channel signs one, and
within the budget of codes for all unidentified requesters, shared with the web's sign-in: a conversation
id is the client's to choose, so minting ids would otherwise buy codes for as many numbers as one
likes), the user types the code, and the conversation is bound to
the number until it idles out (``idle_seconds``), lasts too long (``max_seconds``), the user sends
"déconnexion"/"logout", or the number signs in to another conversation.

A conversation is known by its ``sender_id``, which the chat client chooses. Web chat widgets choose a
random one (a UUID) and keep it in the browser: whoever else learns it could write as that conversation,
so only a ``sender_id`` of ``min_sender_chars`` or more (one nobody guesses) may be bound; shorter ones
(a messaging platform's user id, which another channel of the same Rasa server could send as) get the
front-channel answer instead. A PIN still guards money and secrets, as on every channel.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from engine import SecurityAudit, SecurityEvent
from engine.masking import mask

from ..msisdn import in_region, to_e164

__all__ = ["ChatLinks", "ChatSignIn", "CodeSender", "MemoryChatLinks", "SignInStep"]

CHANNEL: Final = "rasa"
_CODE: Final = re.compile(r"^[0-9]{6}$")
_NUMBER_DIGITS: Final = 6    # a code has 6, a number more; no menu answer or simulator figure has as many
SIGN_OUT_WORDS: Final = frozenset({"deconnexion", "déconnexion", "logout", "log out", "sign out", "signout"})


class CodeSender(Protocol):
    """The one-time code service (``web_fallback.customer.sign_in.SignIn``, with the chat's code message)."""

    def request_code(self, msisdn: str, address: str, language: str) -> Literal["sent", "throttled", "busy"]:
        """Send a fresh code to ``msisdn``: ``throttled`` past the number's or the requester's limit,
        ``busy`` past the budget of codes for all unidentified requesters (then nothing is sent)."""

    def check_code(self, msisdn: str, code: str, address: str) -> Literal["ok", "wrong", "expired", "throttled"]:
        """Whether ``code`` is the live code of ``msisdn`` (a good code works once)."""


class ChatLinks(Protocol):
    """Where a conversation's sign-in is kept, by the digest of its ``sender_id``. Raises what its storage raises."""

    def await_code(self, conversation: str, msisdn: str, ttl_seconds: int) -> None:
        """A code was sent to ``msisdn`` for this conversation."""

    def pending(self, conversation: str) -> str | None:
        """The number a code was sent to for this conversation, while the code lives."""

    def bind(self, conversation: str, msisdn: str, visit: str, since: float, idle_seconds: int) -> None:
        """The conversation is ``msisdn``'s signed-in ``visit`` since ``since`` (its pending code is forgotten)."""

    def bound(self, conversation: str) -> tuple[str, str, float] | None:
        """``(msisdn, visit, since)`` of the conversation's sign-in, if any."""

    def touch(self, conversation: str, idle_seconds: int) -> None:
        """The sign-in stays ``idle_seconds`` more."""

    def unbind(self, conversation: str) -> None:
        """Forget the conversation's sign-in and pending code."""


class Visits(Protocol):
    """One signed-in visit per number (``SignInStore``'s visits): a newer sign-in closes the older."""

    def open_visit(self, msisdn: str, visit: str, idle_seconds: int) -> None: ...
    def touch_visit(self, msisdn: str, visit: str, idle_seconds: int) -> bool: ...
    def close_visit(self, msisdn: str, visit: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SignInStep:
    """What the chat answers a message from a conversation that is not signed in.

    ``text`` names one of the channel's texts (``actions.TEXTS``) with ``values``; ``customer`` is set
    when this very message completed the sign-in (the menu follows)."""

    text: str
    values: dict[str, str] = field(default_factory=dict)
    customer: str | None = None


def conversation_of(sender_id: str) -> str:
    """The key a conversation is kept under (the ``sender_id`` itself is kept nowhere)."""
    return hashlib.sha256(f"rasa|{sender_id}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class ChatSignIn:
    codes: CodeSender
    links: ChatLinks
    visits: Visits
    security: SecurityAudit
    code_minutes: int
    idle_seconds: int = 900
    max_seconds: int = 8 * 3600
    default_region: str = "SN"
    min_sender_chars: int = 20
    clock: Callable[[], float] = time.time

    def allowed(self, sender_id: str) -> bool:
        """Whether this conversation's id is one a sign-in may be bound to (long enough not to be guessed)."""
        return len(sender_id) >= self.min_sender_chars

    def customer(self, sender_id: str) -> str | None:
        """The number this conversation signed in as, while the sign-in is open (each message keeps it open)."""
        if not self.allowed(sender_id):
            return None
        conversation = conversation_of(sender_id)
        bound = self.links.bound(conversation)
        if bound is None:
            return None
        msisdn, visit, since = bound
        if self.clock() - since > self.max_seconds or not self.visits.touch_visit(msisdn, visit, self.idle_seconds):
            # Too old, or the number signed in to another conversation since: this one is closed.
            self.links.unbind(conversation)
            return None
        self.links.touch(conversation, self.idle_seconds)
        return msisdn

    def sign_out(self, sender_id: str) -> bool:
        """End the conversation's sign-in; whether there was one."""
        conversation = conversation_of(sender_id)
        bound = self.links.bound(conversation)
        self.links.unbind(conversation)
        if bound is None:
            return False
        self.visits.close_visit(bound[0], bound[1])
        self.security.record(SecurityEvent("sign_out", CHANNEL, bound[0]))
        return True

    @staticmethod
    def names_number(text: str) -> bool:
        """Whether ``text`` is meant as a phone number or a code (digits enough for one), not a menu answer."""
        return sum(c.isdigit() for c in text) >= _NUMBER_DIGITS

    def step(self, sender_id: str, text: str, language: str, client: str | None = None) -> SignInStep:
        """Answer one message of a conversation that is not signed in: ask for the number, send a
        code, check it. ``client`` is the user's address when the front channel signed it
        (``identity.IdentityVerifier.client``): the requester the limits count then, else the conversation,
        whose id the chat client chooses (the budget of all codes is what holds then). Raises what the
        stores raise (the action answers "unavailable")."""
        conversation = conversation_of(sender_id)
        address = client or f"chat-{conversation[:16]}"
        pending = self.links.pending(conversation)
        typed = text.replace(" ", "")
        if pending is not None and _CODE.match(typed):
            return self._check(conversation, pending, typed, address)
        msisdn = to_e164(text, self.default_region) if any(c.isdigit() for c in text) else None
        if msisdn is None:
            if pending is not None:
                return SignInStep("code_expected", {"number": mask(pending), "minutes": str(self.code_minutes)})
            # Digits enough for a number, but not one: say so; anything else (a greeting, a menu choice): ask.
            return SignInStep("bad_number" if self.names_number(typed) else "ask_number")
        if not in_region(msisdn, self.default_region):
            return SignInStep("foreign_number")
        outcome = self.codes.request_code(msisdn, address, language)
        if outcome != "sent":
            return SignInStep("throttled" if outcome == "throttled" else "codes_busy")
        self.links.await_code(conversation, msisdn, self.code_minutes * 60)
        return SignInStep("code_sent", {"number": mask(msisdn), "minutes": str(self.code_minutes)})

    def _check(self, conversation: str, msisdn: str, code: str, address: str) -> SignInStep:
        outcome = self.codes.check_code(msisdn, code, address)
        if outcome == "ok":
            visit = secrets.token_urlsafe(24)
            self.visits.open_visit(msisdn, visit, self.idle_seconds)
            self.links.bind(conversation, msisdn, visit, self.clock(), self.idle_seconds)
            return SignInStep("signed_in", customer=msisdn)
        if outcome == "expired":
            self.links.unbind(conversation)
            return SignInStep("expired_code")
        return SignInStep("throttled" if outcome == "throttled" else "wrong_code")


class MemoryChatLinks:
    """``ChatLinks`` in this process (the embedded default; one worker)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[str, tuple[str, float]] = {}
        self._bound: dict[str, tuple[str, str, float, float]] = {}

    def await_code(self, conversation: str, msisdn: str, ttl_seconds: int) -> None:
        self._pending[conversation] = (msisdn, self._clock() + ttl_seconds)

    def pending(self, conversation: str) -> str | None:
        found = self._pending.get(conversation)
        return found[0] if found is not None and found[1] > self._clock() else None

    def bind(self, conversation: str, msisdn: str, visit: str, since: float, idle_seconds: int) -> None:
        self._pending.pop(conversation, None)
        self._bound[conversation] = (msisdn, visit, since, self._clock() + idle_seconds)

    def bound(self, conversation: str) -> tuple[str, str, float] | None:
        found = self._bound.get(conversation)
        if found is None or found[3] <= self._clock():
            return None
        return found[0], found[1], found[2]

    def touch(self, conversation: str, idle_seconds: int) -> None:
        found = self._bound.get(conversation)
        if found is not None:
            self._bound[conversation] = (*found[:3], self._clock() + idle_seconds)

    def unbind(self, conversation: str) -> None:
        self._pending.pop(conversation, None)
        self._bound.pop(conversation, None)
