"""A refusal recorded once per key and window, however hard the flood: the security audit is no second
thing an attacker can fill.

Every limit that refuses over a window (the chat's guests a minute, the sign-in codes' budget, the sign-in
limits per number and per address, a number's first-PIN codes a day) would otherwise write a row per
refusal: hammering one number then fills ``security_events``. So the first refusal of a key's window is
recorded and the next ones only counted (each caller has its metric). Counted by the product's throttle
(Redis under ``REDIS_URL``, shared by every process; else this one), under ``<key>:noted``: the window of
the note starts at the first refusal, so a refusal in the limit's next window may still be inside it
(a row per window at most, never one per refusal).
"""

from __future__ import annotations

from typing import Protocol

from .security_audit import SecurityAudit, SecurityEvent

__all__ = ["WindowCounter", "record_once"]


class WindowCounter(Protocol):
    """The product's fixed-window counter (``app.storage.throttle``: Redis, else this process)."""

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one under ``key``; whether it is still within ``limit`` in the window."""


def record_once(security: SecurityAudit, counter: WindowCounter, key: str, window_seconds: int,
                event: SecurityEvent) -> bool:
    """Record ``event`` when it is the first under ``key`` in ``window_seconds``; whether it was recorded."""
    if not counter.hit(f"{key}:noted", 1, window_seconds):
        return False
    security.record(event)
    return True
