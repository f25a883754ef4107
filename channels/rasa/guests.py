"""A chatbot conversation nobody has signed in yet is a guest's: what needs no account, from the menus.

The menus declare it (``config/menus.yaml``): the chatbot's entry points name a ``guest`` code whose
flow holds only journeys that read and change no customer's data (the bill simulator), with its own
Home. A guest's message enters by that code; a recognised intent whose node that flow lacks (the
balance, a payment) is an account journey, and is not the guest's to start: the conversation is told
to sign in first. Without a ``guest`` code, guests get nothing but that answer, as before.

The turn is marked ``guest``: the engine opens it a session only in a flow marked ``guests: true`` and
never lets it onto a customer's session, so an entry point wired to the wrong flow is refused there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from engine import Turn
from menus.schema import MenuSet

__all__ = ["GUEST_ENTRY", "guest_turn"]

GUEST_ENTRY: Final = "guest"


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
