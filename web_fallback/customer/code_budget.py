"""A budget of sign-in codes for everyone not yet identified, whatever number or door they ask from.

A code asked to sign in is an SMS the utility pays for, sent on the word of someone nobody knows yet.
The limits per number and per requester (``SignInRules``) stop one number being flooded and one
requester asking many numbers, but a requester is only as good as its key: the web's client address
can be one of thousands a botnet holds, and the chat's is a conversation id its client chooses (one per
message, if it likes). An attacker asking codes for many different local numbers, each under the limit,
is "SMS pumping" (the operators share the price of the SMS with whoever makes them send): so the total is
capped too. At most ``per_minute`` codes a minute and ``per_hour`` an hour go out for all unidentified
requesters together (web sign-in and chat sign-in: every door that sends a code before knowing who asks),
counted by the product's throttle (Redis under ``REDIS_URL``, shared by every process; else this one).

Customers already identified never meet it: a USSD caller's number is vouched for by the operator, an SMS
or WhatsApp sender's by the provider, a signed-in visitor's by the code they typed; their codes (first PIN,
account link, e-mail address) have their own limits per number. Past the budget, no code is sent, the
requester is told to try again later in their channel, the refusal is counted (``refused``, the metric),
and the first refusal of each window is a ``codes_throttled`` security event (one row per spent window
however hard the flood: the audit is no second thing to fill).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from engine import SecurityAudit, SecurityEvent
from engine.audit_once import WindowCounter, record_once

__all__ = ["CodeBudget", "Window"]

Window = Literal["minute", "hour"]
_SECONDS: Final[dict[Window, int]] = {"minute": 60, "hour": 3600}
_A: Final[dict[Window, str]] = {"minute": "a minute", "hour": "an hour"}


class Throttle(WindowCounter, Protocol):
    """The product's fixed-window counter (``app.storage.throttle``: Redis, else this process)."""

    def count(self, key: str) -> int:
        """What ``key`` counted in its current window, counting nothing."""


@dataclass(frozen=True)
class CodeBudget:
    """``spend(channel, msisdn)``: whether one more code may go out now; ``refused(channel, window)`` is
    told of each refusal (the metric)."""

    throttle: Throttle
    security: SecurityAudit
    per_minute: int = 30
    per_hour: int = 300
    refused: Callable[[str, Window], None] = lambda channel, window: None

    def spend(self, channel: str, msisdn: str) -> bool:
        """Count one code for an unidentified requester of ``channel`` (asked for ``msisdn``); ``False``
        when the minute's or the hour's budget is spent (nothing is sent then)."""
        # The hour counts only what the minute let through, so it counts codes sent (and the refusal that
        # found it spent), not a flood's refused requests; and an hour already spent is read, not counted in
        # the minute, so a refusal says which budget is spent.
        if self.throttle.count("codes:unidentified:hour") >= self.per_hour:
            self._refuse(channel, msisdn, "hour", self.per_hour)
            return False
        windows: tuple[tuple[Window, int], ...] = (("minute", self.per_minute), ("hour", self.per_hour))
        for window, limit in windows:
            if not self.throttle.hit(f"codes:unidentified:{window}", limit, _SECONDS[window]):
                self._refuse(channel, msisdn, window, limit)
                return False
        return True

    def _refuse(self, channel: str, msisdn: str, window: Window, limit: int) -> None:
        self.refused(channel, window)
        record_once(self.security, self.throttle, f"codes:unidentified:{window}", SecurityEvent(
            "codes_throttled", channel, subject=msisdn,
            detail=f"more than {limit} sign-in codes {_A[window]}: refused till it ends"))
