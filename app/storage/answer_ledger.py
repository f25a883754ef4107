"""The chat channels' answer ledger (``channels.answer_ledger.AnswerLedger``) in Redis, shared by every worker.

One JSON string per channel and provider message id (``answers:<channel>:<id>``), expiring after the
ledger's lifetime; a claim is a ``SET NX`` of ``claims:<channel>:<name>`` with the same lifetime. A message id is the provider's, not the customer's: keys name no phone number.
Redis unreachable: ``recall`` answers ``None`` and ``keep`` does nothing (logged), so a hop still runs;
the engine's replay record of the session's last hop remains the second line against a double step.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from channels.answer_ledger import DAY_SECONDS

__all__ = ["RedisAnswerLedger"]

log = logging.getLogger("app.answers")


class RedisAnswerLedger:
    def __init__(self, client: redis.Redis, ttl_seconds: int = DAY_SECONDS) -> None:
        self._client, self._ttl = client, ttl_seconds

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
