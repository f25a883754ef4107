"""``Throttle`` on Redis (shared by every worker) or in memory (the embedded default)."""

from __future__ import annotations

import threading
import time

import redis

__all__ = ["MemoryThrottle", "RedisThrottle"]


class RedisThrottle:
    """A fixed window per key: INCR, and the window's expiry set by the first attempt."""

    def __init__(self, client: redis.Redis, prefix: str = "throttle:") -> None:
        self._redis = client
        self._prefix = prefix

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        name = self._prefix + key
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, window_seconds, nx=True)
        count, _ = pipe.execute()
        return int(count) <= limit

    def reset(self, key: str) -> None:
        self._redis.delete(self._prefix + key)


class MemoryThrottle:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[float, int]] = {}
        self._guard = threading.Lock()

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        now = time.monotonic()
        with self._guard:
            expires, count = self._counts.get(key, (now + window_seconds, 0))
            if expires <= now:
                expires, count = now + window_seconds, 0
            self._counts[key] = (expires, count + 1)
            return count + 1 <= limit

    def reset(self, key: str) -> None:
        with self._guard:
            self._counts.pop(key, None)
