"""A PostgreSQL server that takes the connection and never answers (hung, or behind a dead link) fails the
product's query after a bounded wait, instead of holding the request's thread for ever."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.storage import CONNECT_TIMEOUT_SECONDS, make_sessions


@pytest.fixture
def unanswering() -> Iterator[str]:
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield f"postgresql+psycopg://elecnet@127.0.0.1:{listener.getsockname()[1]}/elecnet"


def _seconds_to_fail(url: str) -> float:
    started = time.monotonic()
    with pytest.raises(OperationalError), make_sessions(url)() as session:
        session.execute(text("SELECT 1"))
    return time.monotonic() - started


def test_a_query_to_a_database_that_never_answers_fails_after_the_connect_timeout(unanswering):
    assert CONNECT_TIMEOUT_SECONDS - 0.5 <= _seconds_to_fail(unanswering) < CONNECT_TIMEOUT_SECONDS + 5


def test_database_url_may_set_its_own_connect_timeout(unanswering):
    assert _seconds_to_fail(f"{unanswering}?connect_timeout=1") < CONNECT_TIMEOUT_SECONDS - 1
