"""A refusal recorded once per key and window, however hard the flood: the security audit is no second
thing an attacker can fill.

Every limit that refuses over a window (the chat's guests a minute, the sign-in codes' budget, the sign-in
limits per number and per address, a number's first-PIN codes a day) would otherwise write a row per
refusal: hammering one number then fills ``security_events``. So the first refusal in each window of the
limit's key is recorded and the next ones only counted (each caller has its metric). The note is kept by the
product's throttle (Redis under ``REDIS_URL``, shared by every process; else this one) beside the limit's
counter, under ``<key>:noted``, and ends when the limit's window ends: a refusal in the next window is that
window's first, and recorded, however soon after the last one it comes (one row per key and limit window).
"""

from __future__ import annotations

from typing import Protocol

from .security_audit import SecurityAudit, SecurityEvent

__all__ = ["WindowCounter", "record_once"]


class WindowCounter(Protocol):
    """The product's fixed-window counter (``app.storage.throttle``: Redis, else this process)."""

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one under ``key``; whether it is still within ``limit`` in the window."""

    def note(self, key: str) -> bool:
        """Whether this is the first note in the current window of ``key`` (the note ends with the window)."""


def record_once(security: SecurityAudit, counter: WindowCounter, key: str, event: SecurityEvent) -> bool:
    """Record ``event``, a refusal by the limit counted under ``key``, when it is the first in that limit's
    current window; whether it was recorded."""
    if not counter.note(key):
        return False
    security.record(event)
    return True
