"""Consent history rows written before ``u1_alerts`` get where their alerts went (the regulator's "where do
they go" beside "where was it said"): SMS for the menus' and keywords' opt-ins (then always SMS), the
channel written for a "tell me when power is back" (it was the delivery). Their "said on" is left as written.
SQLite and PostgreSQL, upgrade and downgrade, as ``alembic`` runs them."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from app.storage import SqlConsent, make_sessions

from .test_outbox_old_secrets import alembic, database

__all__ = ["database"]

AWA = "+221770000001"
OLD = [("opt_in", "outage_zone", "ussd", "menu"), ("opt_in", "power_back", "whatsapp", "self-service"),
       ("stop", "", "sms", "keyword STOP")]


def test_old_opt_ins_get_the_channel_their_alerts_went_by(database: str) -> None:
    alembic(database, "upgrade", "t1")
    engine = create_engine(database)
    try:
        with engine.begin() as db:
            for action, topic, channel, source in OLD:
                db.execute(text("INSERT INTO consent_changes (msisdn, action, topic, scope, channel, source) "
                                "VALUES (:m, :a, :t, '', :c, :s)"),
                           {"m": AWA, "a": action, "t": topic, "c": channel, "s": source})
    finally:
        engine.dispose()
    alembic(database, "upgrade", "head")
    history = SqlConsent(make_sessions(database)).history(AWA)
    assert [(c.action, c.channel, c.delivery) for c in history] == [
        ("opt_in", "ussd", "sms"), ("opt_in", "whatsapp", "whatsapp"), ("stop", "sms", "")]
    alembic(database, "downgrade", "t1")
    alembic(database, "upgrade", "head")
