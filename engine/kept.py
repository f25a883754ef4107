"""What a new command carries over from the same user's conversation: the context keys its flow ``keeps``.

On a channel keyed by user (SMS, WhatsApp, the chatbot) a command that starts over (``CONSO`` sent
while the balance is shown, any message after an end) opens a new session. The flow declares what
that new session keeps of the previous one (``keeps: [selected_account]``: the account chosen among
several), so that the customer does not choose it again for every command. The rules:

- **Within the idle window only**, counted from the previous session's last hop on the engine's
  clock; a session that ended while holding a kept key is stored that long too (``ended_ttl``).
- **The same caller and customer only.** The engine refuses another caller's hop before this; a
  chatbot conversation whose verified customer changed (a guest who signed in) keeps nothing.
- **The same flow only**, and **never a proof** (what a step wrote in a hop that carried a secret).
- A channel keyed on its provider's session (USSD) keeps nothing: a new dial is a new conversation.
"""

from __future__ import annotations

from typing import Any

from .session import Session

__all__ = ["ended_ttl", "kept_data"]


def kept_data(previous: Session, keeps: tuple[str, ...], *, flow: str, customer: str | None,
              now: float, idle_seconds: int | None) -> dict[str, Any]:
    """The context a new session of ``flow`` for ``customer`` starts with, taken from ``previous``."""
    if (not keeps or idle_seconds is None or previous.flow != flow or previous.customer != customer
            or now - previous.updated_at > idle_seconds):
        return {}
    proofs = previous.proofs
    return {key: previous.data[key] for key in keeps
            if previous.data.get(key) is not None and key not in proofs}


def ended_ttl(session: Session, keeps: tuple[str, ...], ended_seconds: int, idle_seconds: int | None) -> int:
    """How long an ended session is stored: ``ended_seconds``, or the idle window when it holds a kept key
    (the next command within the window still finds it)."""
    if idle_seconds is None or idle_seconds <= ended_seconds or not keeps:
        return ended_seconds
    data = session.data
    return idle_seconds if any(data.get(key) is not None for key in keeps) else ended_seconds
