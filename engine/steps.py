"""The contract between the engine and the dialog steps that ``action`` nodes call.

The engine knows steps only through a ``StepRegistry`` handed to it at start-up, so it
never imports ``dialogs/`` or any back-end client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = ["OK", "Step", "StepContext", "StepRegistry", "StepResult"]

OK = "ok"


@dataclass(slots=True)
class StepContext:
    """What a step may read. ``data`` is the session context; ``secrets`` holds this hop's
    sensitive inputs (PINs), which are never saved.

    ``user_id`` is the verified customer number (E.164), empty while no one vouched for the
    sender; ``address`` is where the conversation answers (a phone, ``whatsapp:+...``, a chat id)
    and is never proof of who the customer is."""

    user_id: str
    channel: str
    language: str
    session_key: str
    data: Mapping[str, Any]
    params: Mapping[str, Any]
    secrets: Mapping[str, str]
    now: datetime
    address: str = ""
    # Names this one conversation: the session key where the channel keys on its provider's session (USSD),
    # else the key and when the conversation began (a chat channel's key is the sender's, used again by every
    # conversation). A payment's idempotency key is per conversation: a hop replayed finds its payment, a
    # purchase in a later conversation is a new one. "" (tests): the session key.
    conversation: str = ""

    @property
    def conversation_id(self) -> str:
        return self.conversation or self.session_key

    @property
    def customer(self) -> str | None:
        """The verified customer number, or ``None``."""
        return self.user_id or None


@dataclass(slots=True)
class StepResult:
    """An outcome the node routes on, and values merged into the session context
    (a value of ``None`` removes the key)."""

    outcome: str = OK
    data: dict[str, Any] = field(default_factory=dict)
    language: str | None = None   # switch the conversation (and what is remembered) to this language


Step = Callable[[StepContext], StepResult]


class StepRegistry(Protocol):
    def get(self, name: str) -> Step | None:
        """The step registered under ``name``."""

    def names(self) -> set[str]:
        """Every registered step name (the linter checks menus against it)."""

    def outcomes(self, name: str) -> frozenset[str]:
        """The outcomes the step may return."""
