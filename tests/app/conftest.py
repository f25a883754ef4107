"""Fixtures shared by the notification tests: the fake SMS provider and the outbox as a queue."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.storage import SqlOutbox, make_sessions
from app.storage.delivery import SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal


@pytest.fixture
def seal_key() -> str:
    """This test's OUTBOX_SEAL_KEY."""
    return Fernet.generate_key().decode()


@pytest.fixture
def seal(seal_key: str) -> OutboxSeal:
    """What seals one-time codes in the outbox, as the engine and the worker share it."""
    return OutboxSeal.from_setting(seal_key)


@pytest.fixture
def outbox(engine_db: str, seal: OutboxSeal) -> SqlOutbox:
    return SqlOutbox(make_sessions(engine_db), seal)


@pytest.fixture
def queue(engine_db: str) -> SqlDeliveryQueue:
    return SqlDeliveryQueue(make_sessions(engine_db))
