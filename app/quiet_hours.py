"""Quiet hours: no non-urgent message at night, in the customer's local time.

``QUIET_HOURS=21-7`` (hours, or ``21:30-06:45``) in ``QUIET_HOURS_TZ`` (``Africa/Dakar`` by default).
A message held by quiet hours is not dropped: it waits in the outbox until the window ends.
An empty ``QUIET_HOURS`` turns them off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["QuietHours"]


def _clock(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    return time(int(hours) % 24, int(minutes or 0))


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, zone: str = "Africa/Dakar") -> QuietHours | None:
        """``"21-7"`` -> 21:00 to 07:00; ``""`` -> None (no quiet hours). ValueError when malformed."""
        if not spec.strip():
            return None
        first, sep, last = spec.partition("-")
        if not sep:
            raise ValueError(f"QUIET_HOURS must look like 21-7 or 21:30-06:45, not {spec!r}")
        return cls(_clock(first), _clock(last), ZoneInfo(zone))

    def active(self, now: datetime) -> bool:
        """Whether ``now`` (aware) falls in the window."""
        local = now.astimezone(self.zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end     # the window crosses midnight

    def ends_at(self, now: datetime) -> datetime:
        """When the window around ``now`` ends (``now`` itself outside it)."""
        if not self.active(now):
            return now
        local = now.astimezone(self.zone)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end
