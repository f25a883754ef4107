"""The providers' send rates, shared by every worker on every machine through Redis.

Africa's Talking and Twilio throttle an account; sending faster only earns errors. Each provider
gets a rate (messages per second, ``SEND_RATES=africastalking=10,twilio=5``). The rate is a GCRA
(generic cell rate algorithm, a token bucket kept as one timestamp) evaluated in one Lua script,
so two workers asking at the same moment never both take the last slot, and the time is Redis's
own (``TIME``), so the machines' clocks do not matter.

``acquire(provider)`` takes a slot and answers 0, or answers how many seconds to wait before one
is free (and takes nothing). A provider without a rate is not paced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import redis

__all__ = ["CHANNEL_PROVIDERS", "MemoryPace", "Pace", "RedisPace", "parse_rates"]

# Which provider carries each channel (its rate is the provider's).
CHANNEL_PROVIDERS: Mapping[str, str] = {"sms": "africastalking", "whatsapp": "twilio", "email": "smtp"}

# KEYS[1]: the provider's key. ARGV[1]: emission interval (µs), ARGV[2]: burst tolerance (µs).
# Returns 0 (slot taken) or the wait in µs. TAT = theoretical arrival time of the next message.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return wait end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1000)
return 0
"""


def parse_rates(spec: str) -> dict[str, float]:
    """``"africastalking=10,twilio=5"`` -> {"africastalking": 10.0, "twilio": 5.0}."""
    rates: dict[str, float] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or float(value) <= 0:
            raise ValueError(f"SEND_RATES: expected provider=messages_per_second, got {item!r}")
        rates[name.strip()] = float(value)
    return rates


class Pace(Protocol):
    def acquire(self, provider: str) -> float:
        """Take a send slot: 0.0, or the seconds to wait before asking again (nothing taken)."""


class RedisPace:
    """The rate shared by all workers (production, tests)."""

    def __init__(self, client: redis.Redis, rates: Mapping[str, float], burst: int = 1,
                 prefix: str = "pace:") -> None:
        self._client, self._rates, self._burst, self._prefix = client, dict(rates), max(1, burst), prefix
        self._script = client.register_script(_GCRA)

    def acquire(self, provider: str) -> float:
        rate = self._rates.get(provider)
        if not rate:
            return 0.0
        interval = int(1_000_000 / rate)
        wait = int(self._script(keys=[self._prefix + provider], args=[interval, interval * (self._burst - 1)]))
        return wait / 1_000_000


class MemoryPace:
    """The same algorithm in one process (embedded default without Redis: one worker)."""

    def __init__(self, rates: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self._rates, self._clock = dict(rates), clock
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, provider: str) -> float:
        rate = self._rates.get(provider)
        if not rate:
            return 0.0
        with self._lock:
            now = self._clock()
            tat = max(self._tat.get(provider, now), now)
            if tat > now:
                return tat - now
            self._tat[provider] = tat + 1.0 / rate
            return 0.0
