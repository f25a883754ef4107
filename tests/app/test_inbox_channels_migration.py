"""SMS kept in the inbox before ``v1_wainbox`` (which made it the inbox of every messaging channel) are still
run as SMS through Africa's Talking afterwards. SQLite and PostgreSQL, upgrade and downgrade, as ``alembic``
runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text

from app.storage import make_sessions
from app.storage.outbox_seal import OutboxSeal
from app.storage.sms_inbox import SqlInbox

from .test_outbox_old_secrets import alembic, database

__all__ = ["database"]

AWA = "+221770000001"
KEPT_AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_an_sms_kept_before_the_inbox_took_whatsapp_is_still_run_as_an_sms(database: str) -> None:
    seal = OutboxSeal.from_setting("", "inbox-migration-key")
    alembic(database, "upgrade", "v1_inbox")
    engine = create_engine(database)
    try:
        with engine.begin() as db:
            db.execute(text("INSERT INTO sms_inbox (message_id, msisdn, short_code, sealed, status, attempts, "
                            "received_at) VALUES ('ATXid_old', :m, '21212', :s, 'pending', 0, :at)"),
                       {"m": AWA, "s": seal.seal_text("SOLDE"), "at": KEPT_AT})
    finally:
        engine.dispose()
    alembic(database, "upgrade", "head")
    [kept] = SqlInbox(make_sessions(database), seal).due(KEPT_AT + timedelta(seconds=5))
    assert (kept.message_id, kept.sender, kept.text, kept.channel, kept.provider) == (
        "ATXid_old", AWA, "SOLDE", "sms", "africastalking")
    alembic(database, "downgrade", "v1_inbox")
    alembic(database, "upgrade", "head")
