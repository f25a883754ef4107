"""``Throttle`` on Redis (shared by every worker) or in memory (the embedded default).

Redis unreachable is ``BackendUnavailable``, as for any back end the dialogs call: a limit that cannot be
counted refuses (the step answers "our systems are unavailable"), so nothing it guards goes out uncounted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from dialogs.backends import BackendUnavailable

__all__ = ["MemoryThrottle", "RedisThrottle"]


# The note of a window: set for what is left of the window of KEYS[1], if not set yet; 1 when it was set
# here (a window that just ended, or has no end, has nothing to tie the note to: noted each time).
_NOTE = """
local left = redis.call('PTTL', KEYS[1])
if left <= 0 then return 1 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', left) then return 1 end
return 0
"""


class RedisThrottle:
    """A fixed window per key: INCR, and the window's expiry set by the first attempt."""

    def __init__(self, client: redis.Redis, prefix: str = "throttle:") -> None:
        self._redis = client
        self._prefix = prefix
        self._note = client.register_script(_NOTE)

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        name = self._prefix + key
        with _reachable():
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, window_seconds, nx=True)
            count, _ = pipe.execute()
        return int(count) <= limit

    def note(self, key: str) -> bool:
        """Whether this is the first note in the current window of ``key`` (the note ends with the window)."""
        name = self._prefix + key
        with _reachable():
            return bool(self._note(keys=[name, name + ":noted"]))

    def keep(self, key: str, window_seconds: int) -> bool:
        """Make the window of ``key`` end ``window_seconds`` from now, counting nothing; whether it was still
        counting (a window that ended stays ended)."""
        with _reachable():
            return bool(self._redis.expire(self._prefix + key, window_seconds))

    def count(self, key: str) -> int:
        """What ``key`` counted in its current window (0 once it ended), counting nothing."""
        with _reachable():
            return int(self._redis.get(self._prefix + key) or 0)

    def reset(self, key: str) -> None:
        """Forget ``key``'s window, and its note with it."""
        name = self._prefix + key
        with _reachable():
            self._redis.delete(name, name + ":noted")


@contextmanager
def _reachable() -> Iterator[None]:
    """Redis's failures as the port's: ``BackendUnavailable``."""
    try:
        yield
    except redis.RedisError as exc:
        raise BackendUnavailable(f"throttle: {type(exc).__name__}") from exc


# Counters kept before the ended windows are swept out (then twice as many as are left, at least this).
_SWEEP_FIRST = 1024


class MemoryThrottle:
    """Windows in this process; ended ones are swept out as keys accumulate (a key per chat guest
    conversation would otherwise grow without end)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._counts: dict[str, tuple[float, int]] = {}
        self._guard = threading.Lock()
        self._clock = clock
        self._sweep_at = _SWEEP_FIRST

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        now = self._clock()
        with self._guard:
            if len(self._counts) >= self._sweep_at:
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
                self._sweep_at = max(_SWEEP_FIRST, 2 * len(self._counts))
            expires, count = self._counts.get(key, (now + window_seconds, 0))
            if expires <= now:
                expires, count = now + window_seconds, 0
            self._counts[key] = (expires, count + 1)
            return count + 1 <= limit

    def note(self, key: str) -> bool:
        """Whether this is the first note in the current window of ``key`` (the note ends with the window)."""
        now = self._clock()
        noted = key + ":noted"
        with self._guard:
            ends = self._counts.get(key, (0.0, 0))[0]
            if ends <= now:
                return True   # no window to tie the note to (it just ended): noted each time
            if self._counts.get(noted, (0.0, 0))[0] > now:
                return False
            self._counts[noted] = (ends, 1)
            return True

    def keep(self, key: str, window_seconds: int) -> bool:
        """Make the window of ``key`` end ``window_seconds`` from now, counting nothing; whether it was still
        counting (a window that ended stays ended)."""
        now = self._clock()
        with self._guard:
            expires, count = self._counts.get(key, (0.0, 0))
            if expires <= now:
                return False
            self._counts[key] = (now + window_seconds, count)
            return True

    def count(self, key: str) -> int:
        """What ``key`` counted in its current window (0 once it ended), counting nothing."""
        with self._guard:
            expires, count = self._counts.get(key, (0.0, 0))
            return count if expires > self._clock() else 0

    def reset(self, key: str) -> None:
        """Forget ``key``'s window, and its note with it."""
        with self._guard:
            self._counts.pop(key, None)
            self._counts.pop(key + ":noted", None)
