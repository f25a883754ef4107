"""When each customer last wrote to each of our WhatsApp senders (``whatsapp_windows``), on SQLite and
PostgreSQL: a later message moves it forward, an older one delivered late (Meta's redelivery of a webhook)
never moves it back, a time ahead of our clock counts as now, and each provider's sender has its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings
from app.storage import make_sessions, migrate
from app.storage.whatsapp_windows import SqlWhatsAppWindows

AWA, SAHEL = "+221770000001", "+221770000002"
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
    assert windows.windows_of(AWA) == {"meta": NOW - timedelta(hours=1), "twilio": NOW - timedelta(hours=2)}
    assert windows.last_inbound_among(set(), "meta") == {}


def test_the_free_text_window_is_read_from_the_environment_and_never_past_24_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().whatsapp_window_minutes == 23 * 60 + 30
    monkeypatch.setenv("WHATSAPP_WINDOW_MINUTES", "600")
    assert Settings.from_env().whatsapp_window_minutes == 600
    for wrong in ("1441", "23h30", "-5"):
        monkeypatch.setenv("WHATSAPP_WINDOW_MINUTES", wrong)
        with pytest.raises(ValueError, match=f"WHATSAPP_WINDOW_MINUTES: '{wrong}' is not a whole number of minutes"):
            Settings.from_env()
