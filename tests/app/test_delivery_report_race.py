"""A WhatsApp "outside the 24-hour window" status that does not find the row it is about still sends the
prepaid token by SMS, once the worker's record of the send (or crash recovery) meets it.

On PostgreSQL the status and the worker's record of the send can pass each other: the status webhook
(another process) keeps its report and finds no row with that message id yet, while the worker's transaction,
recording the id, read the reports just before that one was committed. Neither side sees the other; the worker
looks once more after its commit, so the receipt still goes by SMS with its token. The interleaving is forced:
the webhook's whole request runs, on its own connection, right after the worker's transaction has read the
reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from app.storage import SqlOutbox, make_sessions, migrate
from app.storage.delivery import ONLY_CHANNEL, SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal

PREPAID = "+221770000003"
TOKEN = "48213907561284730195"
MESSAGE_ID = "wamid.HBgLMjIxNzcwMDAwMDAzFQIAERgSQjQ1"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_a_window_closed_status_committed_while_the_send_is_recorded_still_sends_the_token_by_sms(
        postgres_url: str) -> None:
    migrate(postgres_url)
    seal = OutboxSeal.from_setting("", "test-secret-key-for-the-seal")
    worker_sessions = make_sessions(postgres_url)
    # The webhook's process; a lock it would wait for fails the test instead of hanging it.
    webhook = SqlDeliveryQueue(make_sessions(postgres_url + "%20-clock_timeout%3D5000"), clock=lambda: NOW)
    outbox = SqlOutbox(worker_sessions, seal, clock=lambda: NOW)
    assert outbox.add(kind="payment_receipt", msisdn=PREPAID, language="fr", dedupe_key="payment:P1",
                      channel="whatsapp", payload={"payment_id": "P1", "reference": "MM1", "amount": "2000",
                                                   "account_number": "3000001", "purpose": "prepaid",
                                                   "token": TOKEN, "failure_reason": None})
    queue = SqlDeliveryQueue(worker_sessions, clock=lambda: NOW)
    [message] = queue.claim(NOW, timedelta(minutes=2))

    found: list[bool] = []

    def webhook_in_between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not found and "FROM delivery_reports" in statement:
            found.append(webhook.record_report(
                provider="meta", message_id=MESSAGE_ID, msisdn=PREPAID, status="failed", failure_reason="131047",
                sms_again="whatsapp: not delivered, outside the 24-hour window (meta 131047); sent again by SMS"))

    engine = worker_sessions.kw["bind"]
    event.listen(engine, "after_cursor_execute", webhook_in_between)
    try:
        queue.sent(message.id, channel="whatsapp", message_id=MESSAGE_ID, now=NOW, keep_sealed=True)
    finally:
        event.remove(engine, "after_cursor_execute", webhook_in_between)

    assert found == [False]                     # the webhook came while the send was being recorded
    [again] = outbox.pending()                  # pending again, for SMS, its token still there to send
    assert again["payload"]["token"] == TOKEN and again["payload"][ONLY_CHANNEL] == "sms"
    row = queue.get(message.id)
    assert row["channel"] == "sms" and row["last_error"].startswith("whatsapp: not delivered, outside")


def test_a_worker_stopped_after_whatsapp_took_the_receipt_then_a_window_closed_status_sends_it_by_sms(
        engine_db: str) -> None:
    """The worker died between Meta's acceptance and its record of the send; Meta's "outside the window"
    status arrives for a message no row knows. Recovery adopts that report (the message left: not sent twice
    on WhatsApp) and, as the report says, sends the receipt again by SMS with its token."""
    sessions = make_sessions(engine_db)
    outbox = SqlOutbox(sessions, OutboxSeal.from_setting("", "test-secret-key-for-the-seal"), clock=lambda: NOW)
    assert outbox.add(kind="payment_receipt", msisdn=PREPAID, language="fr", dedupe_key="payment:P1",
                      channel="whatsapp", payload={"payment_id": "P1", "reference": "MM1", "amount": "2000",
                                                   "account_number": "3000001", "purpose": "prepaid",
                                                   "token": TOKEN, "failure_reason": None})
    lease = timedelta(minutes=1)
    queue = SqlDeliveryQueue(sessions, clock=lambda: NOW + timedelta(seconds=5))
    assert len(queue.claim(NOW, lease)) == 1     # the worker took it, then died after Meta answered
    assert not queue.record_report(
        provider="meta", message_id=MESSAGE_ID, msisdn=PREPAID, status="failed", failure_reason="131047",
        sms_again="whatsapp: not delivered, outside the 24-hour window (meta 131047); sent again by SMS")

    assert queue.recover(NOW + timedelta(minutes=2), lease, timedelta(minutes=10)) == (1, 0)
    [again] = outbox.pending()
    assert again["payload"]["token"] == TOKEN and again["payload"][ONLY_CHANNEL] == "sms"
    assert queue.recover(NOW + timedelta(minutes=3), lease, timedelta(minutes=10)) == (0, 0)


WINDOW_CLOSED = "whatsapp: not delivered, outside the 24-hour window (meta 131047); sent again by SMS"


def receipts(engine_db: str, *payments: str) -> tuple[SqlOutbox, SqlDeliveryQueue]:
    """A prepaid receipt per payment for the same customer, on WhatsApp, each with its token."""
    sessions = make_sessions(engine_db)
    outbox = SqlOutbox(sessions, OutboxSeal.from_setting("", "test-secret-key-for-the-seal"), clock=lambda: NOW)
    for payment in payments:
        assert outbox.add(kind="payment_receipt", msisdn=PREPAID, language="fr", dedupe_key=f"payment:{payment}",
                          channel="whatsapp", payload={"payment_id": payment, "reference": "MM1", "amount": "2000",
                                                       "account_number": "3000001", "purpose": "prepaid",
                                                       "token": TOKEN, "failure_reason": None})
    return outbox, SqlDeliveryQueue(sessions, clock=lambda: NOW + timedelta(seconds=5))


def test_one_window_closed_report_is_adopted_by_one_of_two_stale_rows_of_the_same_number(engine_db: str) -> None:
    """The worker died after Meta took two receipts for one customer; one "outside the window" status came
    (for one of them: which, the report cannot say). One row adopts it and goes by SMS; the other waits for its
    own report, and is sent again once none came, never sent by SMS on the strength of another message's report."""
    outbox, queue = receipts(engine_db, "P1", "P2")
    lease, settle = timedelta(minutes=1), timedelta(minutes=10)
    assert len(queue.claim(NOW, lease)) == 2
    assert not queue.record_report(provider="meta", message_id=MESSAGE_ID, msisdn=PREPAID, status="failed",
                                   failure_reason="131047", sms_again=WINDOW_CLOSED)

    assert queue.recover(NOW + timedelta(minutes=2), lease, settle) == (1, 0)
    [again] = outbox.pending()
    assert again["payload"][ONLY_CHANNEL] == "sms"
    assert queue.recover(NOW + timedelta(minutes=3), lease, settle) == (0, 0)    # still no report of its own
    assert queue.recover(NOW + timedelta(minutes=12), lease, settle) == (0, 1)   # none in 10 minutes: again
    assert sorted(ONLY_CHANNEL in p["payload"] for p in outbox.pending()) == [False, True]


def test_a_report_that_sent_its_own_row_by_sms_is_not_adopted_by_a_stale_row_after(engine_db: str) -> None:
    """Row P1 was sent on WhatsApp and recorded; its "outside the window" status sends it by SMS (the row then
    forgets the WhatsApp id). Row P2 of the same customer, left stale by a worker that died, must not take that
    report for its own."""
    outbox, queue = receipts(engine_db, "P1", "P2")
    lease, settle = timedelta(minutes=1), timedelta(minutes=10)
    first, second = queue.claim(NOW, lease)
    queue.sent(first.id, channel="whatsapp", message_id=MESSAGE_ID, now=NOW, keep_sealed=True)
    assert queue.record_report(provider="meta", message_id=MESSAGE_ID, msisdn=PREPAID, status="failed",
                               failure_reason="131047", sms_again=WINDOW_CLOSED)
    [again] = outbox.pending()
    assert again["payload"]["payment_id"] == "P1"

    assert queue.recover(NOW + timedelta(minutes=2), lease, settle) == (0, 0)
    assert queue.get(second.id)["status"] == "sending"
