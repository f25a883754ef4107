"""The chat channels' answer ledger (``channels.answer_ledger.AnswerLedger``) in Redis, shared by every worker.

One JSON string per channel and provider message id (``answers:<channel>:<id>``), expiring after the
ledger's lifetime; a claim is a ``SET NX`` of ``claims:<channel>:<name>`` with the same lifetime. A message id is the provider's, not the customer's: keys name no phone number.
``answers:since`` (no expiry) says when this Redis began keeping the ledger: written by the first ``forgot``
that finds it missing (a new Redis, or one restarted empty, which forgot every record), so for a lifetime after
that a miss may be a message answered before (``forgot``: the callers then ask SQL).
Redis unreachable: ``recall`` answers ``None`` and ``keep`` does nothing (logged), so a hop still runs;
the engine's replay record of the session's last hop remains the second line against a double step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from channels.answer_ledger import DAY_SECONDS

__all__ = ["SINCE_KEY", "RedisAnswerLedger"]

log = logging.getLogger("app.answers")


SINCE_KEY = "answers:since"


class RedisAnswerLedger:
    def __init__(self, client: redis.Redis, ttl_seconds: int = DAY_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._client, self._ttl, self._clock = client, ttl_seconds, clock

    @staticmethod
    def _key(channel: str, message_id: str) -> str:
        return f"answers:{channel}:{message_id}"

    def recall(self, channel: str, message_id: str) -> dict[str, Any] | None:
        try:
            raw = self._client.get(self._key(channel, message_id))
        except redis.RedisError as exc:
            log.warning("answer ledger unreachable: %s", type(exc).__name__)
            return None
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def keep(self, channel: str, message_id: str, record: dict[str, Any]) -> None:
        try:
            self._client.set(self._key(channel, message_id), json.dumps(record, separators=(",", ":")),
                             ex=self._ttl)
        except redis.RedisError as exc:
            log.warning("answer ledger unreachable, answer not kept: %s", type(exc).__name__)

    def claim(self, channel: str, name: str) -> bool:
        # SET NX: one atomic step, so of two workers claiming at the same moment exactly one wins.
        try:
            return bool(self._client.set(f"claims:{channel}:{name}", b"1", nx=True, ex=self._ttl))
        except redis.RedisError as exc:
            log.warning("answer ledger unreachable, claim refused: %s", type(exc).__name__)
            return False

    def forgot(self) -> bool:
        try:
            since = self._client.get(SINCE_KEY)
            if since is None:
                # SET NX: of two processes finding it missing, the first one's time stands.
                self._client.set(SINCE_KEY, f"{self._clock():.0f}", nx=True)
                log.warning("answer ledger begins now (Redis new or restarted empty): answered messages are "
                            "checked in the database for %d s", self._ttl)
                return True
            return self._clock() - float(since) < self._ttl
        except (redis.RedisError, ValueError) as exc:
            log.warning("answer ledger unreachable, its age unknown: %s", type(exc).__name__)
            return True
