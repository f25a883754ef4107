"""A chatbot conversation nobody has signed in yet is a guest's: what needs no account, from the menus.

The menus declare it (``config/menus.yaml``): the chatbot's entry points name a ``guest`` code whose
flow holds only journeys that read and change no customer's data (the bill simulator), with its own
Home. A guest's message enters by that code; a recognised intent whose node that flow lacks (the
balance, a payment) is an account journey, and is not the guest's to start: the conversation is told
to sign in first. Without a ``guest`` code, guests get nothing but that answer, as before.

The turn is marked ``guest``: the engine opens it a session only in a flow marked ``guests: true`` and
never lets it onto a customer's session, so an entry point wired to the wrong flow is refused there.

Guests are counted (``GuestBudget``). Each new guest conversation is a session in the store, and who a
guest is cannot be known: the ``sender_id`` is whatever the Rasa server was sent (anyone can mint one per
message), the metadata is passed through from the end user, and the action server's peer is the Rasa
server, the same address for everyone. So the limit is on what is ours to give: new guest conversations
per minute, shared by every action server process through the throttle's Redis (in this process without
it). A conversation admitted is not counted again while it lasts: each of its messages keeps its admission
one idle time more (as the guest's session is kept), so a guest chatting is never turned away mid-way by a
flood of newcomers; an admission ends when the conversation idles out, or after ``longest_seconds`` (a chat
visit's longest, ``WEB_MAX_SECONDS``) however busy it is, and its next message is then a new guest's. Past
the budget a new one is told to come back in a minute (or to sign in), runs no hop and keeps nothing;
signed-in conversations are never counted. So the guest sessions alive at any moment are at most the budget
of ``longest_seconds`` plus an idle time (each was admitted within that time; a flood must also keep
writing to every conversation it keeps alive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Protocol

from engine import SecurityAudit, SecurityEvent, Turn
from engine.audit_once import WindowCounter, record_once
from menus.schema import MenuSet

from .sign_in import conversation_of

__all__ = ["GUEST_ENTRY", "GuestBudget", "guest_turn"]

GUEST_ENTRY: Final = "guest"
_MINUTE: Final = 60


class Throttle(WindowCounter, Protocol):
    """The product's fixed-window counter (``app.storage.throttle``: Redis, else this process)."""

    def count(self, key: str) -> int:
        """What ``key`` counted in its current window (0 once it ended), counting nothing."""

    def keep(self, key: str, window_seconds: int) -> bool:
        """Make the window of ``key`` end ``window_seconds`` from now; whether it was still counting."""

    def reset(self, key: str) -> None:
        """Forget the count of ``key``."""


@dataclass(frozen=True)
class GuestBudget:
    """At most ``per_minute`` new guest conversations a minute; one admitted lasts while it is not idle
    ``admitted_seconds``, for ``longest_seconds`` at most.

    ``counted(outcome)`` is told ``admitted`` or ``refused`` for each new conversation (the metric).
    The first refusal of each minute is a ``guest_throttled`` security event (one row a minute however
    hard the flood: the audit is no second thing to fill)."""

    throttle: Throttle
    security: SecurityAudit
    per_minute: int = 60
    admitted_seconds: int = 900
    longest_seconds: int = 8 * 3600
    counted: Callable[[str], None] = lambda outcome: None
    channel: str = "rasa"

    def admit(self, sender_id: str) -> bool:
        """Whether the guest conversation ``sender_id`` may run a hop now (counted when it is new)."""
        conversation = "guest:conversation:" + conversation_of(sender_id)
        since = conversation + ":since"   # the admission's whole life: it never slides
        if self.throttle.keep(conversation, self.admitted_seconds) and self.throttle.count(since):
            return True   # admitted, still talking, and not for longer than a visit may last
        if self.throttle.hit("guest:new", self.per_minute, _MINUTE):
            # Both windows start now (one left from an admission that ran its longest would end too early).
            for key, seconds in ((conversation, self.admitted_seconds), (since, self.longest_seconds)):
                self.throttle.reset(key)
                self.throttle.hit(key, 1, seconds)
            self.counted("admitted")
            return True
        # Not admitted: nothing kept, so its next message is new again, and counted again.
        self.counted("refused")
        record_once(self.security, self.throttle, "guest:new", SecurityEvent(
            "guest_throttled", self.channel, subject=sender_id,
            detail=f"more than {self.per_minute} new guest conversations a minute: refused till it ends"))
        return False


def guest_turn(menus: MenuSet, turn: Turn) -> Turn | None:
    """``turn`` (nobody vouched for) as a guest's, or ``None`` when it asks for an account journey or the
    menus offer guests nothing."""
    if turn.customer is not None:
        raise ValueError("a turn someone vouched for is no guest's")
    points = menus.entry_points.get(turn.channel)
    flow = menus.flows.get(points.codes.get(GUEST_ENTRY, "")) if points is not None else None
    if points is None or flow is None:
        return None
    wanted = points.intents.get(turn.intent) if turn.intent else None
    if wanted is not None and ((wanted.flow or points.codes[GUEST_ENTRY]) != points.codes[GUEST_ENTRY]
                               or wanted.node not in flow.nodes):
        return None
    return replace(turn, entry=GUEST_ENTRY, guest=True)
