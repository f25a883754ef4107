"""A PostgreSQL server that takes the connection and never answers (hung, or behind a dead link) fails the
product's query after a bounded wait, instead of holding the request's thread for ever; once connected, a
statement and a wait for another session's lock are bounded too (DATABASE_STATEMENT_TIMEOUT_SECONDS,
DATABASE_LOCK_TIMEOUT_SECONDS, the URL's own ``options`` winning), and so is a write on the embedded SQLite file
waiting for another writer."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.storage import (
    CONNECT_TIMEOUT_SECONDS,
    LOCK_TIMEOUT_SECONDS,
    STATEMENT_TIMEOUT_SECONDS,
    make_sessions,
)


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


def _shown(url: str, *names: str, **bounds: float) -> list[str]:
    sessions = make_sessions(url, **bounds)
    try:
        with sessions() as session:
            return [str(session.execute(text(f"SHOW {name}")).scalar_one()) for name in names]
    finally:
        sessions.kw["bind"].dispose()


def test_every_postgresql_connection_bounds_its_statements_and_lock_waits(postgres_url):
    # The fixture's URL carries its own options (the schema's search_path): they are kept beside ours.
    assert _shown(postgres_url, "statement_timeout", "lock_timeout") == [
        f"{STATEMENT_TIMEOUT_SECONDS:g}s", f"{LOCK_TIMEOUT_SECONDS:g}s"]
    assert _shown(postgres_url, "search_path")[0].startswith("t_")
    assert _shown(postgres_url, "statement_timeout", "lock_timeout", statement_timeout=2.5, lock_timeout=0) == [
        "2500ms", "0"]


def test_database_url_may_set_its_own_statement_timeout(postgres_url):
    assert _shown(f"{postgres_url}%20-c%20statement_timeout%3D1234", "statement_timeout", "lock_timeout") == [
        "1234ms", f"{LOCK_TIMEOUT_SECONDS:g}s"]


def test_a_statement_past_its_timeout_fails_and_the_connection_serves_the_next(postgres_url):
    sessions = make_sessions(postgres_url, statement_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"), sessions() as session:
        session.execute(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < 2
    with sessions() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    sessions.kw["bind"].dispose()


def test_the_embedded_sqlite_file_waits_a_while_for_another_writer_then_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    holder, waiter = make_sessions(url), make_sessions(f"{url}?timeout=0.5")
    with holder() as first:
        first.execute(text("CREATE TABLE t (x INTEGER)"))
        first.commit()
        first.execute(text("INSERT INTO t VALUES (1)"))      # holds the file's write lock until it ends
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), waiter() as second:
            second.execute(text("INSERT INTO t VALUES (2)"))
        assert 0.4 <= time.monotonic() - started < 3
