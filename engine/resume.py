"""Resuming a dropped session: when it is offered, where it starts again, what it carries.

The rules, the same for every flow and channel:

- **Offered only mid-task.** A redial is offered "Continue where you left off?" only when the
  dropped session was waiting for an ``input`` or sat on a menu declared ``confirm: true`` (a
  pending confirmation), and the gateway did not report a normal end (``Engine.finish`` with
  ``Success`` closes the session). A session dropped on a screen that only showed information
  is not offered back.
- **Never past a gate.** A *gated stretch* begins when a hop leads to a secret prompt (an
  ``input`` with ``sensitive: true``, such as a PIN): its *gate* is the first node that hop
  entered (e.g. the ``security.require_pin`` action). The stretch lasts while the customer answers
  secret prompts and until a hop that carried no secret shows a screen without one. A session
  dropped inside a stretch resumes by entering its gate again, so every step on the way runs
  again and the secret is asked again.
- **Proofs stay behind.** Data that steps wrote in a hop that carried a secret (a mark that the
  PIN was checked, for instance) are *proofs*: a resumed session starts without them, so a
  protected step that checks its proof sends the customer through its gate again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from menus.schema import Node

from .flow import CompiledFlow
from .session import Session

__all__ = ["carried_data", "is_mid_task", "is_secret_prompt", "note_proofs", "track_gate"]


def is_secret_prompt(node: Node | None) -> bool:
    return node is not None and node.is_secret()


def is_mid_task(flow: CompiledFlow, node_id: str) -> bool:
    """True when a session dropped on ``node_id`` left something unfinished (an input, a confirmation)."""
    node = flow.spec.nodes.get(node_id)
    return node is not None and node.is_mid_task()


def note_proofs(session: Session, data: Mapping[str, Any], with_secrets: bool) -> None:
    """Keep track of the context keys a step wrote in a hop that carried a secret."""
    proofs = set(session.proofs)
    for key, value in data.items():
        if value is None:
            proofs.discard(key)
        elif with_secrets:
            proofs.add(key)
    session.proofs = sorted(proofs)


def track_gate(session: Session, flow: CompiledFlow, shown: str, answered_secret: bool) -> None:
    """After a hop that showed ``shown``: open, keep or close the session's gated stretch."""
    if session.ended:
        session.gate = None
    elif is_secret_prompt(flow.spec.nodes.get(shown)):
        if session.gate is None:
            session.gate = session.entered or shown
    elif not answered_secret:
        session.gate = None


def carried_data(previous: Session) -> dict[str, Any]:
    """The context a resumed session starts with: the dropped one's, without its proofs."""
    proofs = set(previous.proofs)
    return {key: value for key, value in previous.data.items() if key not in proofs}
