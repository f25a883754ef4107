"""Time passing for what Redis keeps with an expiry: every key under a prefix of the test's own database is
aged by some seconds (its time to live shortened, gone when it runs out), as if that time had passed. For
windows counted in Redis (the product's throttle) a day in a test costs nothing."""

from __future__ import annotations

import redis

__all__ = ["age_keys"]


def age_keys(url: str, seconds: float, prefix: str = "throttle:") -> None:
    """``seconds`` pass for the keys under ``prefix`` in the database at ``url`` (keys without expiry stay)."""
    client = redis.Redis.from_url(url)
    try:
        passed = int(seconds * 1000)
        for key in client.scan_iter(match=f"{prefix}*"):
            left = client.pttl(key)
            if left > passed:
                client.pexpire(key, left - passed)
            elif left >= 0:
                client.delete(key)
    finally:
        client.close()
