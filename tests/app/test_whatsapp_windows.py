"""When each customer last wrote to each of our WhatsApp business numbers (``whatsapp_windows``), on SQLite and
PostgreSQL: a later message moves it forward, an older one delivered late (Meta's redelivery of a webhook)
never moves it back, a time ahead of our clock counts as now, each provider's number has its own, and so does
each of our numbers at one provider. Rows kept before numbers were (migration v1_wa3) count as the configured
number's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings
from app.storage import make_sessions, migrate
from tests.app.test_outbox_old_secrets import alembic, database

__all__ = ["database"]
from app.storage.whatsapp_windows import SqlWhatsAppWindows

AWA, SAHEL = "+221770000001", "+221770000002"
OUR_META, OUR_OTHER_META = "106540352242922", "1065403522429221234567890"   # the second: 25 digits
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'engine.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    migrate(url)
    return make_sessions(url)


def test_the_last_message_counts_and_a_late_older_one_does_not_move_it_back(sessions: sessionmaker[Session]) -> None:
    windows = SqlWhatsAppWindows(sessions, clock=lambda: NOW)
    windows.saw(AWA, "meta", NOW - timedelta(hours=5))
    windows.saw(AWA, "meta", NOW - timedelta(hours=1))
    windows.saw(AWA, "meta", NOW - timedelta(hours=30))          # an old message Meta delivered again
    windows.saw(AWA, "twilio", NOW - timedelta(hours=2))
    windows.saw(SAHEL, "meta", NOW + timedelta(hours=3))          # a sender's clock ahead of ours: now
    assert windows.last_inbound_among({AWA, SAHEL, "+221770000009"}, "meta") == {
        AWA: NOW - timedelta(hours=1), SAHEL: NOW}
    assert windows.last_inbound_among({AWA, SAHEL}, "twilio") == {AWA: NOW - timedelta(hours=2)}
    assert windows.windows_of(AWA) == {("meta", ""): NOW - timedelta(hours=1), ("twilio", ""): NOW - timedelta(hours=2)}
    assert windows.last_inbound_among(set(), "meta") == {}


def test_the_free_text_window_is_read_from_the_environment_and_never_past_24_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().whatsapp_window_minutes == 23 * 60 + 30
    monkeypatch.setenv("WHATSAPP_WINDOW_MINUTES", "600")
    assert Settings.from_env().whatsapp_window_minutes == 600
    for wrong in ("1441", "23h30", "-5"):
        monkeypatch.setenv("WHATSAPP_WINDOW_MINUTES", wrong)
        with pytest.raises(ValueError, match=f"WHATSAPP_WINDOW_MINUTES: '{wrong}' is not a whole number of minutes"):
            Settings.from_env()


def test_a_customer_who_wrote_to_one_of_our_numbers_has_no_window_with_another(sessions: sessionmaker[Session]) -> None:
    windows = SqlWhatsAppWindows(sessions, clock=lambda: NOW)
    windows.saw(AWA, "meta", NOW - timedelta(hours=1), OUR_OTHER_META)     # Awa wrote to our other number
    windows.saw(SAHEL, "meta", NOW - timedelta(hours=2), OUR_META)
    windows.saw(AWA, "twilio", NOW - timedelta(hours=3), "+14155238886")
    assert windows.last_inbound_among({AWA, SAHEL}, "meta", OUR_META) == {SAHEL: NOW - timedelta(hours=2)}
    assert windows.last_inbound_among({AWA, SAHEL}, "meta", OUR_OTHER_META) == {AWA: NOW - timedelta(hours=1)}
    assert windows.last_inbound_among({AWA}, "twilio", "+14155550000") == {}
    assert windows.windows_of(AWA) == {("meta", OUR_OTHER_META): NOW - timedelta(hours=1),
                                       ("twilio", "+14155238886"): NOW - timedelta(hours=3)}


def test_a_window_kept_before_numbers_were_counts_as_the_configured_number_s(database: str) -> None:
    """A row of the previous release (no number) is read as our configured number's, the one notifications go
    from, and the later of it and that number's own row counts; a downgrade keeps each customer's latest."""
    url = database
    alembic(url, "upgrade", "v1_wawindow")
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(text("INSERT INTO whatsapp_windows (msisdn, provider, last_inbound_at) VALUES (:m, 'meta', :at)"),
                       {"m": AWA, "at": NOW - timedelta(hours=4)})
    finally:
        engine.dispose()
    alembic(url, "upgrade", "head")
    windows = SqlWhatsAppWindows(make_sessions(url), clock=lambda: NOW)
    assert windows.last_inbound_among({AWA}, "meta", OUR_META) == {AWA: NOW - timedelta(hours=4)}
    windows.saw(AWA, "meta", NOW - timedelta(hours=6), OUR_META)        # older than the kept row: it still counts
    assert windows.last_inbound_among({AWA}, "meta", OUR_META) == {AWA: NOW - timedelta(hours=4)}
    windows.saw(AWA, "meta", NOW - timedelta(hours=1), OUR_OTHER_META)
    alembic(url, "downgrade", "v1_wawindow")
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            assert [tuple(r) for r in db.execute(text("SELECT msisdn, provider FROM whatsapp_windows"))] == [
                (AWA, "meta")]
    finally:
        engine.dispose()
    alembic(url, "upgrade", "head")
