"""The chatbot's in-chat sign-ins (``channels.rasa.sign_in.ChatLinks``) in Redis, shared by every worker.

Per conversation (the digest of its ``sender_id``, never the id): the number a code was sent to, for the
code's life; then the number, the visit id and the time it signed in, for as long as it is not idle.
"""

from __future__ import annotations

import redis

__all__ = ["RedisChatLinks"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisChatLinks:
    def __init__(self, client: redis.Redis, prefix: str = "chat:") -> None:
        self._redis = client
        self._pending = prefix + "pending:"
        self._bound = prefix + "bound:"

    def await_code(self, conversation: str, msisdn: str, ttl_seconds: int) -> None:
        self._redis.set(self._pending + conversation, msisdn, ex=ttl_seconds)

    def pending(self, conversation: str) -> str | None:
        raw = self._redis.get(self._pending + conversation)
        return _text(raw) if raw is not None else None

    def bind(self, conversation: str, msisdn: str, visit: str, since: float, idle_seconds: int) -> None:
        name = self._bound + conversation
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._pending + conversation, name)
        pipe.hset(name, mapping={"msisdn": msisdn, "visit": visit, "since": repr(since)})
        pipe.expire(name, idle_seconds)
        pipe.execute()

    def bound(self, conversation: str) -> tuple[str, str, float] | None:
        raw = self._redis.hgetall(self._bound + conversation)
        if not raw or b"msisdn" not in raw or b"visit" not in raw:
            return None
        try:
            since = float(_text(raw.get(b"since", b"0")))
        except ValueError:
            return None
        return _text(raw[b"msisdn"]), _text(raw[b"visit"]), since

    def touch(self, conversation: str, idle_seconds: int) -> None:
        self._redis.expire(self._bound + conversation, idle_seconds)

    def unbind(self, conversation: str) -> None:
        self._redis.delete(self._pending + conversation, self._bound + conversation)
