"""The web sign-in store (``web_fallback.customer.codes.SignInStore``) in Redis, shared by every worker.

A code: one hash per number, ``digest`` (salted scrypt, never the code) and ``tries``, expiring with
the code. A visit: the open visit's random id per number, expiring when idle.
"""

from __future__ import annotations

import hmac

import redis

from web_fallback.customer.codes import StoredCode

__all__ = ["RedisSignInStore"]


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class RedisSignInStore:
    def __init__(self, client: redis.Redis, prefix: str = "web:code:", visits: str = "web:visit:") -> None:
        self._redis = client
        self._prefix = prefix
        self._visits = visits

    def put(self, msisdn: str, digest: str, ttl_seconds: int) -> None:
        name = self._prefix + msisdn
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(name)
        pipe.hset(name, mapping={"digest": digest, "tries": 0})
        pipe.expire(name, ttl_seconds)
        pipe.execute()

    def get(self, msisdn: str) -> StoredCode | None:
        raw = self._redis.hgetall(self._prefix + msisdn)
        if not raw or b"digest" not in raw:
            return None
        return StoredCode(_bytes(raw[b"digest"]).decode(), int(raw.get(b"tries", b"0")))

    def count_wrong(self, msisdn: str) -> int:
        name = self._prefix + msisdn
        if not self._redis.exists(name):
            return 0
        # HINCRBY on a key that expired between the two calls would create it without a TTL: guard it.
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(name, "tries", 1)
        pipe.hexists(name, "digest")
        tries, live = pipe.execute()
        if not live:
            self._redis.delete(name)
            return 0
        return int(tries)

    def drop(self, msisdn: str) -> None:
        self._redis.delete(self._prefix + msisdn)

    def open_visit(self, msisdn: str, visit: str, idle_seconds: int) -> None:
        self._redis.set(self._visits + msisdn, visit, ex=idle_seconds)

    def touch_visit(self, msisdn: str, visit: str, idle_seconds: int) -> bool:
        name = self._visits + msisdn
        current = self._redis.get(name)
        if current is None or not hmac.compare_digest(_bytes(current), visit.encode()):
            return False
        self._redis.expire(name, idle_seconds)
        return True

    def close_visit(self, msisdn: str, visit: str) -> None:
        name = self._visits + msisdn
        current = self._redis.get(name)
        if current is not None and hmac.compare_digest(_bytes(current), visit.encode()):
            self._redis.delete(name)
