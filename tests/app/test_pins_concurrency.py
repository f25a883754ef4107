"""The PIN lock holds when guesses arrive at once, on SQLite and on PostgreSQL, and lockouts grow.

Eight sessions of one number send a wrong PIN at the same moment: each try is counted before the
hash is checked, so the PIN ends locked and at most three tries were ever checked. A try overtaken by
another's lock is told that lock; a staged PIN confirmed from several sessions at once is confirmed once.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from app.factory import create_app
from app.storage import make_sessions, migrate
from app.storage.pins import SqlPinVault
from dialogs.stores import PinVerdict

from ..support.engine import UssdPhone

MSISDN = "+221770000001"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'engine.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    migrate(url)
    return url


@pytest.fixture
def vault(database_url):
    sessions = make_sessions(database_url)
    yield SqlPinVault(sessions)
    sessions.kw["bind"].dispose()


def _at_once(count: int, action) -> list:
    """Run ``action(i)`` in ``count`` threads released together; their results in order."""
    start = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        start.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_eight_concurrent_wrong_pins_from_eight_sessions_lock_the_pin(settings, database_url):
    app = create_app(replace(settings, database_url=database_url))
    app.extensions["parts"]["deps"].pins.set_pin(MSISDN, "4821")
    phones = [UssdPhone(app.test_client(), MSISDN) for _ in range(8)]
    for p in phones:
        p.dial()
        p.answer("8")
        assert p.answer("3") == "CON Entrez votre code PIN (4 chiffres):\n0. Retour 00. Accueil"
    screens = _at_once(8, lambda i: phones[i].answer(f"{1000 + 13 * i}"))
    assert sum(s.startswith("CON Code PIN incorrect.") for s in screens) <= 2
    assert sum(s.startswith("END Code PIN bloqué") for s in screens) >= 6
    late = UssdPhone(app.test_client(), MSISDN)
    late.dial()
    late.answer("8")
    # Locked, even for the right PIN; said before the PIN is asked.
    assert late.answer("3").startswith("CON Code PIN bloqué")


def test_concurrent_wrong_tries_lock_once(vault):
    vault.set_pin(MSISDN, "4821")
    verdicts = _at_once(8, lambda i: vault.verify(MSISDN, "9035", NOW))
    assert [v.result for v in verdicts].count("wrong") == 2
    assert [v.result for v in verdicts].count("locked") == 6
    assert sum(v.newly_locked for v in verdicts) == 1       # one lockout, one SMS
    assert vault.verify(MSISDN, "4821", NOW + timedelta(minutes=14)).result == "locked"


def test_a_right_pin_resets_the_counter_so_rare_mistakes_never_lock(vault):
    vault.set_pin(MSISDN, "4821")
    for month in range(6):
        when = NOW + timedelta(days=30 * month)
        assert vault.verify(MSISDN, "4812", when).result == "wrong"
        assert vault.verify(MSISDN, "4821", when).result == "ok"
    assert vault.verify(MSISDN, "4812", NOW + timedelta(days=200)).attempts_left == 2


def _lock(vault: SqlPinVault, at: datetime):
    vault.verify(MSISDN, "1111", at)
    vault.verify(MSISDN, "2222", at)
    return vault.verify(MSISDN, "3333", at)


def test_lockouts_grow_fifteen_minutes_one_hour_a_day_then_an_agent(vault):
    vault.set_pin(MSISDN, "4821")
    first = _lock(vault, NOW)
    assert (first.result, first.locked_until, first.lockouts) == ("locked", NOW + timedelta(minutes=15), 1)
    assert vault.verify(MSISDN, "4821", NOW + timedelta(minutes=14, seconds=59)).result == "locked"
    t2 = NOW + timedelta(minutes=15)
    second = _lock(vault, t2)
    assert (second.locked_until, second.lockouts) == (t2 + timedelta(hours=1), 2)
    assert vault.verify(MSISDN, "4821", t2 + timedelta(minutes=59)).result == "locked"
    t3 = t2 + timedelta(hours=1)
    third = _lock(vault, t3)
    assert (third.locked_until, third.lockouts) == (t3 + timedelta(hours=24), 3)
    t4 = t3 + timedelta(hours=24)
    fourth = _lock(vault, t4)
    assert fourth.lockouts == 4
    assert vault.verify(MSISDN, "4821", t4 + timedelta(days=365)).result == "locked"   # only an agent now
    assert vault.lock_state(MSISDN, t4 + timedelta(days=365)) is not None
    assert vault.unlock(MSISDN)
    assert vault.lock_state(MSISDN, t4) is None
    assert vault.verify(MSISDN, "4821", t4).result == "ok"
    again = _lock(vault, t4)
    assert again.locked_until == t4 + timedelta(minutes=15)          # the agent's unlock starts the ladder over
    assert not vault.unlock("+221770009999")


def test_a_try_overtaken_by_another_locking_first_is_told_the_same_lock_and_sends_no_second_sms(
        database_url: str) -> None:
    """The third wrong try is about to lock when a fourth, from another session, locks first: the third
    finds the PIN locked and answers with that lock (same end, same lockout), not a lockout of its own."""
    sessions = make_sessions(database_url)
    vault = SqlPinVault(sessions)
    vault.set_pin(MSISDN, "4821")
    for _ in range(2):
        vault.verify(MSISDN, "0000", NOW)
    started: list[bool] = []
    fourth: list[PinVerdict] = []

    def fourth_try_locks_first(conn, cursor, statement, parameters, context, executemany) -> None:
        if "CASE" in statement and not started:   # the third try's lock, about to be written
            started.append(True)                  # (once: the fourth try's own lock goes through)
            fourth.append(vault.verify(MSISDN, "1111", NOW))

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", fourth_try_locks_first)
    try:
        third = vault.verify(MSISDN, "0000", NOW)
    finally:
        event.remove(engine, "before_cursor_execute", fourth_try_locks_first)
    until = NOW + timedelta(minutes=15)
    assert fourth == [PinVerdict("locked", 0, until, 1, newly_locked=True)]
    assert third == PinVerdict("locked", 0, until, 1)
    assert vault.lock_state(MSISDN, NOW) == PinVerdict("locked", 0, until, 1)
    sessions.kw["bind"].dispose()


def test_a_staged_pin_confirmed_from_eight_sessions_at_once_is_confirmed_once(vault):
    vault.set_pin(MSISDN, "4821")
    vault.stage_pin(MSISDN, "7395")
    confirmed = _at_once(8, lambda i: vault.confirm_pin(MSISDN, "7395"))
    assert confirmed.count(True) == 1          # one "PIN changed" SMS, one security event
    assert vault.verify(MSISDN, "7395", NOW).result == "ok"
