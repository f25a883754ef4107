"""An SMS the product could not run when it came (the session store down) is not lost, whether or not Africa's
Talking would post it again: the callback keeps it and answers 200, the worker runs it once the store is back
and its reply goes out through the outbox, once; kept more than 30 minutes, it gets a short apology in the
customer's language instead of a reply that is out of date. Against a redis-server of the test's own (killed
and started again), the fake Africa's Talking SMS API on loopback, the real back office and the product's
database."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine, event, text

from app import worker
from app.factory import build_inbox_drain, create_app
from app.settings import Settings
from app.storage.answer_ledger import SINCE_KEY, RedisAnswerLedger
from channels.answer_ledger import DAY_SECONDS
from engine import RedisSessionStore
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.throwaway_redis import ThrowawayRedis

from .sms_phone import SmsPhone

AWA = "+221770000001"          # French, account 1000001
AMINATA = "+221770000002"      # English, business customer
BALANCE = "Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures"
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)


@pytest.fixture
def kept_settings(sms_settings: Settings, throwaway_redis: ThrowawayRedis) -> Settings:
    """The product with its sessions in a Redis the test stops and starts again; the web process and the
    worker share SECRET_KEY, as every process of a deployment does (a replayed hop is known by its HMAC)."""
    return replace(sms_settings, redis_url=throwaway_redis.url, secret_key="kept-messages-test-key")


@pytest.fixture
def kept_app(kept_settings: Settings) -> Flask:
    return create_app(kept_settings)


def _refused(self: RedisAnswerLedger, channel: str, message_id: str, record: dict[str, Any]) -> None:
    """``RedisAnswerLedger.keep`` when Redis refuses the write: logged, nothing kept, nothing raised."""
    logging.getLogger("app.answers").warning("answer ledger unreachable, answer not kept: ConnectionError")


@contextmanager
def _statements() -> Iterator[list[str]]:
    """Every SQL statement this process runs meanwhile, whichever engine runs it."""
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(SqlEngine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(SqlEngine, "before_cursor_execute", note)


def _inbox(settings: Settings) -> list[tuple[str, str, str | None]]:
    """The kept messages as whoever reads the database sees them: id, status, the sealed text."""
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(text("SELECT message_id, status, sealed FROM sms_inbox "
                                                          "ORDER BY id"))]
    finally:
        engine.dispose()


def test_an_sms_sent_while_the_session_store_is_down_is_answered_once_it_is_back(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()                        # the session store is gone
    assert awa.send("SOLDE") == []                # no "service unavailable, try again" SMS
    assert awa.last_status == 200                 # kept: Africa's Talking need not post it again
    assert worker.run_once(kept_settings).get("kept_waiting") == 1   # still down: it waits
    assert fake_at.messages_to(AWA) == []

    throwaway_redis.start()                       # back (empty)
    product_clock.advance(seconds=5)
    done = worker.run_once(kept_settings)
    assert (done["kept_answered"], done["notifications_sent"]) == (1, 1)
    assert fake_at.messages_to(AWA) == [BALANCE]
    # Handled once: another pass, or the provider posting the same message again, sends nothing more.
    assert worker.run_once(kept_settings).get("notifications_sent") is None
    assert awa.send("SOLDE", message_id=awa.last_id) == [] and awa.last_status == 200
    assert fake_at.messages_to(AWA) == [BALANCE]
    # The conversation goes on from the reply the customer read.
    assert awa.say("1").startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")


def test_the_same_message_posted_again_while_it_is_kept_is_kept_and_answered_once(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    assert awa.send("SOLDE") == [] and awa.last_status == 200
    assert awa.send("SOLDE", message_id=awa.last_id) == [] and awa.last_status == 200
    assert [(message_id, status) for message_id, status, _ in _inbox(kept_settings)] == [(awa.last_id, "pending")]
    throwaway_redis.start()
    worker.run_once(kept_settings)
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_a_senders_kept_messages_are_answered_in_the_order_they_came(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    assert awa.send("SOLDE") == [] and awa.send("1") == []     # the balance, then its bills
    throwaway_redis.start()
    worker.run_once(kept_settings)
    balance, bills = fake_at.messages_to(AWA)
    assert balance == BALANCE
    assert bills.startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")


def test_what_the_customer_wrote_is_sealed_while_kept_and_erased_once_answered(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    awa.send("SOLDE 1000001")
    [(_, _, sealed)] = _inbox(kept_settings)
    assert sealed and "SOLDE" not in sealed and "1000001" not in sealed
    throwaway_redis.start()
    worker.run_once(kept_settings)
    assert _inbox(kept_settings) == [(awa.last_id, "answered", None)]


def test_a_message_kept_more_than_30_minutes_gets_an_apology_in_its_language_not_a_stale_reply(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    aminata = SmsPhone(kept_app.test_client(), fake_at, AMINATA)
    throwaway_redis.stop()
    awa.send("SOLDE")
    aminata.send("BALANCE")
    product_clock.advance(minutes=31)
    throwaway_redis.start()
    done = worker.run_once(kept_settings)
    assert (done["kept_late"], done["notifications_sent"]) == (2, 2)
    assert fake_at.messages_to(AWA) == [
        ("ElecNet: désolé, votre SMS du 26/11 09:00 n'a pas été traité à temps (incident technique). "
         "Merci de le renvoyer.")]
    assert fake_at.messages_to(AMINATA) == [
        ("ElecNet: sorry, your SMS of 26/11 09:00 could not be handled in time (technical incident). "
         "Please send it again.")]
    worker.run_once(kept_settings)
    assert len(fake_at.messages_to(AWA)) == len(fake_at.messages_to(AMINATA)) == 1
    assert [status for _, status, _ in _inbox(kept_settings)] == ["late", "late"]


def test_a_message_kept_29_minutes_is_still_answered(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    awa.send("SOLDE")
    product_clock.advance(minutes=29)
    throwaway_redis.start()
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_a_message_that_can_be_neither_run_nor_kept_is_asked_again_of_the_provider(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    database = create_engine(kept_settings.database_url)
    with database.begin() as db:                  # the database cannot keep it either
        db.execute(text("ALTER TABLE sms_inbox RENAME TO sms_inbox_away"))
    throwaway_redis.stop()
    assert awa.send("SOLDE") == []
    assert awa.last_status == 503                 # not a 4xx: a provider that posts it again may
    with database.begin() as db:
        db.execute(text("ALTER TABLE sms_inbox_away RENAME TO sms_inbox"))
    database.dispose()
    throwaway_redis.start()
    assert awa.send("SOLDE", message_id=awa.last_id) == [BALANCE] and awa.last_status == 200


def test_a_kept_message_the_provider_posts_again_once_the_store_is_back_is_answered_once_by_the_worker(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    assert awa.send("SOLDE") == [] and awa.last_status == 200
    throwaway_redis.start()
    # Africa's Talking posts it again before the worker's pass: it is kept, it waits with the rest ...
    assert awa.send("SOLDE", message_id=awa.last_id) == [] and awa.last_status == 200
    # ... and the worker answers it once.
    worker.run_once(kept_settings)
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]
    assert [status for _, status, _ in _inbox(kept_settings)] == ["answered"]


def test_a_message_written_once_the_store_is_back_waits_behind_the_kept_one_and_is_answered_after_it(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    assert awa.send("SOLDE") == [] and awa.last_status == 200
    throwaway_redis.start()
    # Run now, "1" would be answered before the balance it chooses from: it waits behind it.
    assert awa.send("1") == [] and awa.last_status == 200
    done = worker.run_once(kept_settings)
    assert (done["kept_answered"], done["notifications_sent"]) == (2, 2)
    balance, bills = fake_at.messages_to(AWA)
    assert balance == BALANCE
    assert bills.startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")
    # Nothing kept any more: the conversation goes on at once.
    assert awa.say("0").startswith("Compte 1000001\nA payer: 12 500 FCFA\n")


def test_a_message_reaching_another_web_process_waits_behind_the_one_kept_while_its_conversation_was_busy(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, product_clock: SettableClock) -> None:
    worker.run_once(kept_settings)                # the worker found nothing kept
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    store = kept_app.extensions["parts"]["store"]
    with store.locked(f"sms:{AWA}", 0.0):         # another message of the conversation holds it
        assert awa.send("SOLDE") == [] and awa.last_status == 200
    # Awa's next message reaches another process of the same deployment, which kept nothing itself.
    awa_elsewhere = SmsPhone(create_app(kept_settings).test_client(), fake_at, AWA)
    assert awa_elsewhere.send("1") == [] and awa_elsewhere.last_status == 200
    worker.run_once(kept_settings)
    balance, bills = fake_at.messages_to(AWA)
    assert balance == BALANCE and bills.startswith("Factures (choisissez):\n")


def test_while_nothing_is_kept_a_message_is_answered_without_asking_the_database_for_kept_ones(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, product_clock: SettableClock,
        throwaway_redis: ThrowawayRedis) -> None:
    # The answer ledger has remembered a whole day (its Redis did not restart empty since): a message it has no
    # record of is new, and the database is not asked whether it was answered either.
    redis.Redis.from_url(throwaway_redis.url).set(SINCE_KEY, f"{time.time() - DAY_SECONDS - 60:.0f}")
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    drain = build_inbox_drain(kept_settings)
    assert drain is not None
    drain.run_once()                              # the worker's pass: nothing kept
    with _statements() as statements:
        assert awa.send("SOLDE") == [BALANCE]
    # Its answer is written (the row a repost finds once Redis forgot); nothing is read of kept messages.
    assert not [sql for sql in statements
                if ("sms_inbox" in sql or "outbox_events" in sql) and not sql.lstrip().upper().startswith("INSERT")]


def test_a_kept_message_whose_answered_mark_cannot_be_written_is_answered_once_whatever_follows(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock, monkeypatch: pytest.MonkeyPatch) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    awa.send("SOLDE")
    throwaway_redis.start()
    kept_id = awa.last_id
    with monkeypatch.context() as ledger_down:    # the worker's marks in the answer ledger are refused
        ledger_down.setattr(RedisAnswerLedger, "keep", _refused)
        worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]
    assert _inbox(kept_settings) == [(kept_id, "replied", None)]    # answered, not settled yet
    # Awa answers the balance, and Africa's Talking posts the first message again: neither runs now.
    assert awa.send("1") == []
    assert awa.send("SOLDE", message_id=kept_id) == [] and awa.last_status == 200
    product_clock.advance(seconds=5)
    worker.run_once(kept_settings)
    worker.run_once(kept_settings)
    assert awa.send("SOLDE", message_id=kept_id) == []
    balance, bills = fake_at.messages_to(AWA)     # one balance, then the bills: nothing twice
    assert balance == BALANCE and bills.startswith("Factures (choisissez):\n")
    assert [status for _, status, _ in _inbox(kept_settings)] == ["answered", "answered"]


def test_a_worker_pass_that_fails_after_running_a_kept_message_sends_its_reply_on_the_next_pass(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    awa.send("SOLDE")
    throwaway_redis.start()
    database = create_engine(kept_settings.database_url)
    with database.begin() as db:                  # the outbox cannot take the reply of this pass
        db.execute(text("ALTER TABLE outbox_events RENAME TO outbox_events_away"))
    with pytest.raises(Exception, match="outbox_events"):
        worker.run_once(kept_settings)
    with database.begin() as db:
        db.execute(text("ALTER TABLE outbox_events_away RENAME TO outbox_events"))
    database.dispose()
    product_clock.advance(minutes=2)              # past the failed pass's hold on the message
    worker.run_once(kept_settings)
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_an_sms_that_finds_its_conversation_busy_past_the_lock_wait_is_kept_and_answered_by_the_worker(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    # Another message of the conversation holds it past the engine's 9 s wait: a lock of a minute, not the
    # store's 10 s, which a loaded machine's slow start of the hop could let run out before the wait does.
    holder = RedisSessionStore.from_url(str(kept_settings.redis_url), lock_ttl_ms=60_000)
    with holder.locked(f"sms:{AWA}", 0.0):
        assert awa.send("SOLDE") == [] and awa.last_status == 200
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_a_kept_message_answered_before_redis_restarted_empty_is_not_answered_again_when_posted_again(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    throwaway_redis.stop()
    awa.send("SOLDE")                             # kept while the store is down
    kept_id = awa.last_id
    throwaway_redis.start()
    product_clock.advance(seconds=5)
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]
    throwaway_redis.stop()
    throwaway_redis.start()                       # Redis restarted empty: the answer ledger forgot the message
    # The database still knows it answered: Africa's Talking posting it again gets nothing, and runs nothing.
    assert awa.send("SOLDE", message_id=kept_id) == [] and awa.last_status == 200
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]
    # A message it never saw is answered at once, as ever.
    assert awa.send("SOLDE") == [BALANCE]


def test_a_reply_queued_before_redis_restarted_empty_is_not_sent_twice_when_the_message_is_posted_again(
        kept_app: Flask, kept_settings: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(kept_app.test_client(), fake_at, AWA)
    fake_at.fail_next = 1                         # the SMS API refuses the reply: it goes through the outbox
    assert awa.send("SOLDE") == [] and awa.last_status == 200
    throwaway_redis.stop()
    throwaway_redis.start()                       # the ledger's "answered" mark gone with Redis
    assert awa.send("SOLDE", message_id=awa.last_id) == [] and awa.last_status == 200
    worker.run_once(kept_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]  # the queued reply, once
