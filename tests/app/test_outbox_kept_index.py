"""The worker's once-a-minute look-up of sent messages still holding a sealed code (kept for a late WhatsApp
failure) reads them through their own partial index on PostgreSQL, not the weeks of sent messages around
them; the migration goes down again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select, text

from app.storage.models import OutboxEventRow

ROOT = Path(__file__).resolve().parents[2]
# As SqlDeliveryQueue.kept_secrets asks.
KEPT = select(OutboxEventRow).where(OutboxEventRow.status == "sent", OutboxEventRow.sealed.is_not(None)) \
    .order_by(OutboxEventRow.sent_at)


def alembic(url: str, verb: str, revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    getattr(command, verb)(config, revision)


def plan(url: str) -> str:
    """PostgreSQL's plan for the look-up, over 20 000 sent messages of which 3 still hold a code."""
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(text("TRUNCATE outbox_events"))
            db.execute(text(
                "INSERT INTO outbox_events (dedupe_key, kind, msisdn, language, payload, status, attempts, "
                "created_at, sent_at, channel, sealed) SELECT 'k' || n, 'bill_issued', '+221770000001', 'fr', '{}', "
                "'sent', 1, now(), now(), 'whatsapp', CASE WHEN n % 7000 = 0 THEN 'gAAAA' END "
                "FROM generate_series(1, 20000) AS n"))
            db.execute(text("ANALYZE outbox_events"))
            sql = str(KEPT.compile(engine, compile_kwargs={"literal_binds": True}))
            return " ".join(str(r[0]) for r in db.execute(text(f"EXPLAIN {sql}")))
    finally:
        engine.dispose()


def test_on_postgresql_the_kept_secrets_look_up_reads_its_partial_index(postgres_url: str) -> None:
    alembic(postgres_url, "upgrade", "head")
    assert "ix_outbox_events_kept_secrets" in plan(postgres_url)
    alembic(postgres_url, "downgrade", "u1_alerts")
    assert "ix_outbox_events_kept_secrets" not in plan(postgres_url)
