"""Fixtures shared by the notification tests: the fake SMS provider and the outbox as a queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.storage import SqlOutbox, make_sessions
from app.storage.delivery import SqlDeliveryQueue
from tests.support.fake_africastalking import FakeAfricasTalking, fake_africastalking


@pytest.fixture
def provider() -> Iterator[FakeAfricasTalking]:
    with fake_africastalking() as fake:
        yield fake


@pytest.fixture
def outbox(engine_db: str) -> SqlOutbox:
    return SqlOutbox(make_sessions(engine_db))


@pytest.fixture
def queue(engine_db: str) -> SqlDeliveryQueue:
    return SqlDeliveryQueue(make_sessions(engine_db))
