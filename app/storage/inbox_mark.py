"""The inbox's mark in Redis: "nothing kept is pending", so a callback need not ask SQL whether its sender has a
kept message to wait behind (``channels/sms_inbox.py``, ``SqlInbox.holds``).

Two keys, naming no phone number: ``inbox:keeps``, a counter every callback that keeps a message raises (when
Redis answers), and ``inbox:empty``, which the worker sets, after a pass that left nothing pending in SQL, to
the counter it read *before* asking SQL, for a few seconds (``ttl_seconds``). The mark holds while both read the
same: a message kept after the worker's read raised the counter, so a mark written from an older count never
holds. A message kept while Redis could not be reached raised nothing: the worker's next pass finds it pending
and deletes the mark, and a mark that could not be deleted (the worker cut off too) lapses within seconds.
Anything unsure (Redis unreachable, a key missing, as after a restart) reads as "not known empty": the caller
asks SQL, never the other way round.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

import redis

__all__ = ["EMPTY_KEY", "KEEPS_KEY", "InboxMark", "RedisInboxMark"]

log = logging.getLogger("app.inbox")

EMPTY_KEY: Final = "inbox:empty"
KEEPS_KEY: Final = "inbox:keeps"


class InboxMark(Protocol):
    def known_empty(self) -> bool:
        """Whether the worker found nothing pending since the last message kept; ``False`` when unsure."""

    def kept(self) -> None:
        """A message was kept: the mark no longer holds. Raises nothing."""

    def count(self) -> str | None:
        """What to write with the mark (read before the worker asks SQL); ``None`` when Redis cannot say."""

    def mark_empty(self, count: str) -> None:
        """Nothing was pending when SQL was asked after ``count`` was read. Raises nothing."""

    def unmark(self) -> None:
        """Something is pending: the mark goes. Raises nothing."""


class RedisInboxMark:
    def __init__(self, client: redis.Redis, ttl_seconds: int = 3) -> None:
        self._client, self._ttl = client, ttl_seconds

    def known_empty(self) -> bool:
        try:
            empty, keeps = self._client.mget(EMPTY_KEY, KEEPS_KEY)
        except redis.RedisError:
            return False
        return empty is not None and empty == (keeps if keeps is not None else b"0")

    def kept(self) -> None:
        try:
            self._client.incr(KEEPS_KEY)
        except redis.RedisError as exc:
            # The worker's next pass finds the message in SQL and deletes the mark; it lapses meanwhile.
            log.warning("inbox mark unreachable, kept message not counted: %s", type(exc).__name__)

    def count(self) -> str | None:
        try:
            keeps = self._client.get(KEEPS_KEY)
        except redis.RedisError:
            return None
        return keeps.decode() if isinstance(keeps, bytes) else "0" if keeps is None else str(keeps)

    def mark_empty(self, count: str) -> None:
        try:
            self._client.set(EMPTY_KEY, count, ex=self._ttl)
        except redis.RedisError as exc:
            log.warning("inbox mark unreachable: %s", type(exc).__name__)

    def unmark(self) -> None:
        try:
            self._client.delete(EMPTY_KEY)
        except redis.RedisError as exc:
            log.warning("inbox mark unreachable, not deleted (it lapses): %s", type(exc).__name__)
