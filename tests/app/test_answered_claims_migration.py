"""Messages answered at once before ``v1_answered1`` (each a settled ``answered_at_once`` row in ``sms_inbox``) are
still known answered afterwards, now as their claims marked answered: a repost after Redis restarted empty runs
nothing, and no such row is left in the kept messages' table. SQLite and PostgreSQL, upgrade and downgrade, as
``alembic`` runs them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, text

from app.sms_replies import reply_keys
from app.storage import make_sessions
from app.storage.answered import SqlAnswers
from channels.answer_ledger import Claim

from .test_outbox_old_secrets import alembic, database

__all__ = ["database"]

AWA = "+221770000001"
AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_messages_answered_at_once_before_the_claims_kept_the_answer_are_still_answered(database: str) -> None:
    alembic(database, "upgrade", "v1_money3")
    engine = create_engine(database)
    try:
        with engine.begin() as db:
            for message_id, claimed in (("ATXid_claimed", True), ("SMclaimless", False)):
                db.execute(text("INSERT INTO sms_inbox (message_id, msisdn, channel, provider, short_code, status, "
                                "attempts, received_at, settled_at) VALUES (:id, :m, 'sms', 'africastalking', '', "
                                "'answered_at_once', 0, :at, :at)"), {"id": message_id, "m": AWA, "at": AT})
                if claimed:
                    db.execute(text("INSERT INTO message_claims (message_id, channel, claimed_at) "
                                    "VALUES (:id, 'sms', :at)"), {"id": message_id, "at": AT})
    finally:
        engine.dispose()
    alembic(database, "upgrade", "head")
    answers = SqlAnswers(make_sessions(database), reply_keys, clock=lambda: AT)
    assert answers.answered("ATXid_claimed") and answers.answered("SMclaimless")
    assert answers.claim("SMclaimless", channel="sms") is Claim.TAKEN       # a repost runs nothing
    engine = create_engine(database)
    try:
        with engine.connect() as db:
            assert db.execute(text("SELECT COUNT(*) FROM sms_inbox")).scalar_one() == 0
    finally:
        engine.dispose()
    alembic(database, "downgrade", "v1_money3")
    alembic(database, "upgrade", "head")
    assert SqlAnswers(make_sessions(database), reply_keys).answered("SMclaimless")
