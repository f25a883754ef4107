"""Sign-in security events are named for what happened, whatever the door: ``code_sent``, ``sign_in``,
``sign_in_refused``, ``sign_in_throttled``, ``sign_out``, with the channel (``web``, ``rasa``) telling which.
Rows stored under the old names (``web_sign_in`` ..., the chatbot's too) are renamed by migration ``u1_chat``,
so an analyst reading the table, the agents' console or ``python -m app audit`` sees one vocabulary; a row a
not-yet-upgraded worker writes under an old name still reads under the new one. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from app.storage import SqlSecurityAudit, make_sessions
from app.storage.security_audit import pseudonym

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-secret-key-names"
AWA = "+221770000001"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
# As the web and the chat wrote them before the rename (the chat's under the web's names).
OLD_ROWS = [("web_code_sent", "web", ""), ("web_sign_in_refused", "web", "wrong code"), ("web_sign_in", "web", ""),
            ("web_sign_out", "web", ""), ("web_code_sent", "rasa", ""), ("web_throttled", "rasa", "code check"),
            ("web_sign_in", "rasa", ""), ("web_sign_out", "rasa", ""), ("pin_failed", "ussd", "wrong PIN"),
            ("csrf_refused", "web", "/web/")]
NEW_ROWS = [("code_sent", "web", ""), ("sign_in_refused", "web", "wrong code"), ("sign_in", "web", ""),
            ("sign_out", "web", ""), ("code_sent", "rasa", ""), ("sign_in_throttled", "rasa", "code check"),
            ("sign_in", "rasa", ""), ("sign_out", "rasa", ""), ("pin_failed", "ussd", "wrong PIN"),
            ("csrf_refused", "web", "/web/")]


def alembic(url: str, verb: str, revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    getattr(command, verb)(config, revision)


def insert(url: str, rows: list[tuple[str, str, str]], start: int = 0) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            for n, (kind, channel, detail) in enumerate(rows, start):
                db.execute(text("INSERT INTO security_events (occurred_at, kind, channel, subject_id, detail, extra) "
                                "VALUES (:at, :kind, :channel, :subject, :detail, '{}')"),
                           {"at": NOW + timedelta(seconds=n), "kind": kind, "channel": channel,
                            "subject": pseudonym(KEY, AWA), "detail": detail})
    finally:
        engine.dispose()


def stored(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(text("SELECT kind, channel, detail FROM security_events "
                                                          "ORDER BY occurred_at"))]
    finally:
        engine.dispose()


def read_back(url: str) -> list[tuple[str, str, str]]:
    """What the agents' console and ``python -m app audit --number`` show, oldest first."""
    events = SqlSecurityAudit(make_sessions(url), KEY).for_subject(AWA)
    return [(e.kind, e.channel, e.detail) for e in reversed(events)]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'engine.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_rows_stored_under_the_old_names_read_under_the_new_ones_and_downgrade_gives_them_back(database: str):
    alembic(database, "upgrade", "t1")
    insert(database, OLD_ROWS)
    alembic(database, "upgrade", "head")
    assert stored(database) == NEW_ROWS
    assert read_back(database) == NEW_ROWS
    alembic(database, "downgrade", "t1")
    assert stored(database) == OLD_ROWS
    alembic(database, "upgrade", "head")
    assert stored(database) == NEW_ROWS


def test_a_row_written_under_an_old_name_after_the_upgrade_reads_under_the_new_one(tmp_path: Path):
    # A worker still running the previous release during a rolling upgrade writes the old names a while.
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    alembic(url, "upgrade", "head")
    insert(url, [("web_sign_in", "rasa", ""), ("web_throttled", "web", "code request")])
    assert read_back(url) == [("sign_in", "rasa", ""), ("sign_in_throttled", "web", "code request")]
