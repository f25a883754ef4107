"""A hop whose session save is lost for real: the session store (a redis-server of the test's own) dies right
after the step queued its message, and comes back as it was before that hop (the last snapshot, as a failover
that lost the last writes). The gateway, which got no answer in time, sends the hop again: the step runs again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import event

from app.storage.models import OutboxEventRow
from tests.support.throwaway_redis import ThrowawayRedis

__all__ = ["store_lost_after_queuing"]


@contextmanager
def store_lost_after_queuing(server: ThrowawayRedis, kind: str) -> Iterator[None]:
    """Redis snapshotted now (between hops), then killed as soon as a ``kind`` message is queued (the step ran,
    its session not yet saved); on leaving, started again from the snapshot: the session as before the hop."""
    client = redis.Redis.from_url(server.url, socket_timeout=2.0)
    client.save()
    client.close()

    def kill(mapper: Any, connection: Any, row: OutboxEventRow) -> None:
        if row.kind == kind:
            server.stop()

    event.listen(OutboxEventRow, "after_insert", kill)
    try:
        yield
    finally:
        event.remove(OutboxEventRow, "after_insert", kill)
        server.start()
