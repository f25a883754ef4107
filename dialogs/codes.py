"""One-time codes (link confirmation, link undo, first-PIN proof, e-mail confirmation) as the dialogs use them:
the product's one way of making and keeping a code (``engine.one_time_codes``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.one_time_codes import code_matches, derived_code, hash_code, new_code

__all__ = ["code_matches", "code_still_out", "hash_code", "issue_code", "new_code"]


def issue_code(key: bytes, dedupe_key: str) -> str:
    """The code the message queued under ``dedupe_key`` carries. Made from that key, so a hop run again (its
    session's save failed after the step ran: the outbox queues nothing new) keeps in its session the hash of
    the very code the customer received; a message that is another send has another key, so another code."""
    return derived_code(key, dedupe_key)


def code_still_out(data: Mapping[str, Any], hash_key: str, sent_key: str, now: datetime, minutes: int) -> bool:
    """Whether a code this conversation sent (its hash under ``hash_key``, when under ``sent_key``) still
    works. A resumed conversation enters the step that sent it again: sending another would void the
    one the customer holds, and count a send or a try more."""
    sent = data.get(sent_key)
    if not data.get(hash_key) or not sent:
        return False
    return now - datetime.fromisoformat(str(sent)) < timedelta(minutes=minutes)
