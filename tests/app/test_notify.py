"""The outbox reaches customers: SMS through a fake Africa's Talking API on loopback (the
official SDK underneath), retries, refusals, delivery reports, a worker killed mid-send,
and two workers sharing one PostgreSQL queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from app.factory import create_app
from app.notify import Dispatcher, NotificationTemplates
from app.settings import Settings
from app.storage import SqlOutbox, make_sessions, migrate
from app.storage.delivery import SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal
from backend_clients.africastalking_sms import AfricasTalkingSms
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking

RECEIPT = {"payment_id": "PAY-1", "reference": "MM123456", "amount": "5500", "account_number": "1000001",
           "purpose": "bill", "token": None, "failure_reason": None}
TEMPLATES = NotificationTemplates.load("config/notifications.yaml")
# The replies to a customer's message carry the screen as the engine laid it out for the channel (its character set
# is the engine's: tests/engine); every other kind is a text of ours.
AS_LAID_OUT = frozenset({"sms_reply", "whatsapp_reply"})


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))


@pytest.fixture
def dispatcher(queue: SqlDeliveryQueue, provider: FakeAfricasTalking, clock: SettableClock,
               seal: OutboxSeal) -> Dispatcher:
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url, timeout=(0.5, 2))
    return Dispatcher(queue, TEMPLATES, {"sms": sms}, clock=clock, max_attempts=3, seal=seal)


def add(outbox: SqlOutbox, kind: str = "payment_receipt", language: str = "fr", key: str = "k1",
        msisdn: str = "+221770000001", **payload: Any) -> None:
    assert outbox.add(kind=kind, msisdn=msisdn, language=language, payload={**RECEIPT, **payload}, dedupe_key=key)


def row(queue: SqlDeliveryQueue, row_id: int = 1) -> dict[str, Any]:
    return queue.get(row_id)


def test_a_receipt_reaches_the_customer_in_their_language(outbox, queue, dispatcher, provider):
    add(outbox, key="fr")
    add(outbox, key="en", language="en", msisdn="+221770000002")
    assert dispatcher.run_once().sent == 2
    assert provider.messages_to("+221770000001") == [
        "ElecNet: paiement de 5 500 FCFA confirmé pour le compte 1000001. Réf. MM123456. Merci."]
    assert provider.messages_to("+221770000002") == [
        "ElecNet: payment of 5,500 FCFA confirmed for account 1000001. Ref. MM123456. Thank you."]
    sent = row(queue)
    assert (sent["status"], sent["delivery_status"]) == ("sent", "sent")
    assert sent["provider_message_id"] == provider.sent[0].message_id
    assert dispatcher.run_once().sent == 0 and len(provider.sent) == 2


# Every kind, zone broadcasts and late-reply apologies included: one letter outside GSM-7 (ê, ç) would make the SMS
# UCS-2, 70 characters a part instead of 160, and a zone broadcast goes to thousands of customers.
@pytest.mark.parametrize("kind", sorted(set(TEMPLATES.kinds) - AS_LAID_OUT))
def test_every_message_the_product_sends_has_a_text_in_both_languages_that_fits_gsm7(kind):
    from engine.charset import is_gsm7, sms_segments

    template = TEMPLATES.kinds[kind]
    for texts in (template.text, *template.if_present.values()):
        for language in ("fr", "en"):
            assert "{brand}" not in texts[language] and "ElecNet" in texts[language]
            assert is_gsm7(texts[language]), texts[language]
            assert sms_segments(texts[language]) <= 2


def test_a_prepaid_token_arrives_by_sms(outbox, dispatcher, provider):
    add(outbox, purpose="prepaid", token="1234-5678-9012-3456-7890", amount="2000")
    dispatcher.run_once()
    [text] = provider.messages_to("+221770000001")
    # Typed on the meter four digits at a time, whatever dashes the provider wrote ({token:token}).
    assert "Code à saisir au compteur: 1234 5678 9012 3456 7890." in text and "2 000 FCFA" in text


def test_an_event_is_queued_once_per_dedupe_key(outbox, dispatcher, provider):
    add(outbox, key="payment:PAY-1:succeeded")
    assert not outbox.add(kind="payment_receipt", msisdn="+221770000001", language="fr", payload=RECEIPT,
                          dedupe_key="payment:PAY-1:succeeded")
    dispatcher.run_once()
    dispatcher.run_once()
    assert len(provider.sent) == 1


def test_a_provider_outage_is_retried_with_growing_delays_then_given_up(outbox, queue, dispatcher, provider, clock):
    add(outbox)
    provider.fail_next = 10
    assert dispatcher.run_once().retried == 1
    first = row(queue)
    assert first["status"] == "pending" and first["attempts"] == 1
    assert dispatcher.run_once().retried == 0          # not due yet: the backoff holds it
    clock.advance(seconds=5)
    assert dispatcher.run_once().retried == 1
    clock.advance(seconds=9)
    assert dispatcher.run_once().retried == 0          # second delay is 10 s, not 5
    clock.advance(seconds=1)
    assert dispatcher.run_once().failed == 1           # third attempt of three: given up, kept
    gone = row(queue)
    assert gone["status"] == "failed" and gone["last_error"].startswith("gave up")
    assert provider.sent == []


def test_a_provider_that_comes_back_gets_the_message_once(outbox, queue, dispatcher, provider, clock):
    add(outbox)
    provider.fail_next = 1
    dispatcher.run_once()
    clock.advance(seconds=5)
    assert dispatcher.run_once().sent == 1
    assert len(provider.sent) == 1 and row(queue)["attempts"] == 2


def test_a_number_the_provider_refuses_is_failed_and_kept_not_retried(outbox, queue, dispatcher, provider, clock):
    add(outbox)
    provider.next_status = [406]
    assert dispatcher.run_once().failed == 1
    clock.advance(hours=2)
    assert dispatcher.run_once().sent == 0
    assert row(queue)["status"] == "failed" and row(queue)["last_error"] == "refused: UserInBlacklist"


def test_an_event_without_a_template_is_kept_as_failed_not_dropped(outbox, queue, dispatcher, provider):
    add(outbox, kind="mystery_event")
    assert dispatcher.run_once().failed == 1
    assert row(queue)["status"] == "failed" and "no template" in row(queue)["last_error"]


def test_urgent_messages_overtake_bulk_ones(outbox, queue, provider, clock):
    templates = NotificationTemplates.load("config/notifications.yaml")
    bulk = dict(templates.kinds)
    bulk["bill_issued"] = type(templates.kinds["payment_receipt"])(False, {"fr": "Facture", "en": "Bill"})
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url)
    dispatcher = Dispatcher(queue, NotificationTemplates(bulk), {"sms": sms}, clock=clock)
    for n in range(3):
        add(outbox, kind="bill_issued", key=f"bill{n}")
    add(outbox, key="receipt")
    dispatcher.run_once(limit=1)
    assert [m.message for m in provider.sent] == [
        "ElecNet: paiement de 5 500 FCFA confirmé pour le compte 1000001. Réf. MM123456. Merci."]


# ---------------------------------------------------------------- delivery reports
@pytest.fixture
def engine_app(settings: Settings) -> Flask:
    from dataclasses import replace

    return create_app(replace(settings, ussd_gateway_token="report-token"))


def report(client: Any, message_id: str, status: str, token: str = "report-token", **extra: str) -> Any:
    return client.post(f"/sms/africastalking/delivery?token={token}", data={
        "id": message_id, "status": status, "phoneNumber": "+221770000001", "networkCode": "60801",
        "retryCount": "0", **extra})


def test_delivery_reports_update_the_status(engine_app, settings, outbox, provider, clock):
    add(outbox)
    queue = SqlDeliveryQueue(make_sessions(settings.database_url))
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url)
    Dispatcher(queue, TEMPLATES, {"sms": sms}, clock=clock).run_once()
    message_id = provider.sent[0].message_id
    client = engine_app.test_client()
    assert report(client, message_id, "Sent").status_code == 200
    assert queue.get(1)["delivery_status"] == "sent"
    assert report(client, message_id, "Success").get_data(as_text=True) == "OK"
    assert queue.get(1)["delivery_status"] == "delivered"
    assert report(client, message_id, "Success").status_code == 200          # the provider's retry: harmless
    assert report(client, message_id, "Buffered").status_code == 200         # late intermediate word
    assert queue.get(1)["delivery_status"] == "delivered"


def test_delivery_reports_need_the_token_and_a_well_formed_body(engine_app, settings, outbox):
    client = engine_app.test_client()
    assert report(client, "ATXid_1", "Success", token="wrong").status_code == 403
    assert report(client, "ATXid_1\nforged", "Success").status_code == 400
    assert report(client, "ATXid_1", "Success", phoneNumber="not-a-number").status_code == 400
    assert client.post("/sms/africastalking/delivery?token=report-token", data=b"\xff\xfe",
                       content_type="application/x-www-form-urlencoded").status_code == 400


def test_a_failed_delivery_is_recorded_with_its_reason(engine_app, settings, outbox, provider, clock):
    add(outbox)
    queue = SqlDeliveryQueue(make_sessions(settings.database_url))
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url)
    Dispatcher(queue, TEMPLATES, {"sms": sms}, clock=clock).run_once()
    report(engine_app.test_client(), provider.sent[0].message_id, "Failed", failureReason="AbsentSubscriber")
    assert queue.get(1)["delivery_status"] == "failed"


# ---------------------------------------------------------------- a worker killed mid-send
def _worker(settings: Settings, provider: FakeAfricasTalking) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "AT_API_KEY": provider.api_key,
           "AT_USERNAME": provider.username, "AT_API_URL": provider.url, "NOTIFY_INTERVAL_SECONDS": "0.1",
           "BACKOFFICE_URL": settings.backoffice_url, "WORKER_INTERVAL_SECONDS": "3600",
           "SECRET_KEY": settings.secret_key or "test-worker-key"}
    return subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


@pytest.fixture
def killed_mid_send(settings, outbox, provider) -> Iterator[SqlDeliveryQueue]:
    """A receipt the provider took while the worker was killed before it could record it."""
    release = threading.Event()
    provider.hold = release
    add(outbox)
    worker = _worker(settings, provider)
    try:
        _wait(lambda: provider.sent)                      # the provider has the message ...
        worker.send_signal(signal.SIGKILL)                # ... and the worker dies before its answer
        worker.wait(10)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()
    queue = SqlDeliveryQueue(make_sessions(settings.database_url))
    assert queue.get(1)["status"] == "sending" and len(provider.sent) == 1
    yield queue


def test_a_worker_killed_after_the_provider_took_the_message_never_sends_it_twice(
        killed_mid_send, engine_app, provider):
    report(engine_app.test_client(), provider.sent[0].message_id, "Success")   # the provider's report arrives
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url)
    later = SettableClock(datetime.now(UTC) + timedelta(minutes=2))
    outcome = Dispatcher(killed_mid_send, TEMPLATES, {"sms": sms}, clock=later).run_once()
    assert outcome.adopted == 1 and outcome.sent == 0
    assert len(provider.sent) == 1
    adopted = killed_mid_send.get(1)
    assert (adopted["status"], adopted["delivery_status"]) == ("sent", "delivered")
    assert adopted["provider_message_id"] == provider.sent[0].message_id


def test_a_worker_killed_before_the_provider_answered_loses_nothing(killed_mid_send, provider):
    provider.sent.clear()            # the provider in fact never kept it (no report will ever come)
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url)
    soon = Dispatcher(killed_mid_send, TEMPLATES, {"sms": sms}, clock=SettableClock(datetime.now(UTC) + timedelta(minutes=2)))
    assert soon.run_once().requeued == 0                  # reports may still be on their way: wait
    late = Dispatcher(killed_mid_send, TEMPLATES, {"sms": sms}, clock=SettableClock(datetime.now(UTC) + timedelta(minutes=15)))
    outcome = late.run_once()
    assert (outcome.requeued, outcome.sent) == (1, 1)
    assert provider.messages_to("+221770000001") == [
        "ElecNet: paiement de 5 500 FCFA confirmé pour le compte 1000001. Réf. MM123456. Merci."]


# ---------------------------------------------------------------- several workers, PostgreSQL
@pytest.mark.postgres
def test_two_workers_on_postgresql_send_a_thousand_messages_none_twice(postgres_url, provider):
    migrate(postgres_url)
    outbox = SqlOutbox(make_sessions(postgres_url))
    for n in range(1000):
        outbox.add(kind="payment_receipt", msisdn=f"+22177{n:07d}", language="fr", payload=RECEIPT,
                   dedupe_key=f"receipt:{n}")
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url)
    now = datetime.now(UTC)

    def work() -> None:
        dispatcher = Dispatcher(SqlDeliveryQueue(make_sessions(postgres_url)), TEMPLATES, {"sms": sms},
                                clock=lambda: now)
        while dispatcher.run_once(limit=20).sent:
            pass

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    numbers = [m.to for m in provider.sent]
    assert len(numbers) == 1000 and len(set(numbers)) == 1000


# ---------------------------------------------------------------- WhatsApp first, SMS when it refuses
def _whatsapp_row(queue: SqlDeliveryQueue, engine_db: str) -> None:
    from sqlalchemy import update

    from app.storage.models import OutboxEventRow

    with make_sessions(engine_db).begin() as db:
        db.execute(update(OutboxEventRow).values(channel="whatsapp"))


@pytest.fixture
def whatsapp() -> Iterator[Any]:
    from tests.support.fake_twilio import fake_twilio

    with fake_twilio() as fake:
        yield fake


def _both(provider: FakeAfricasTalking, whatsapp: Any) -> dict[str, Any]:
    from backend_clients.twilio_whatsapp import TwilioWhatsApp

    return {"sms": AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url),
            "whatsapp": TwilioWhatsApp(whatsapp.account_sid, whatsapp.auth_token, "+14155238886",
                                       api_url=whatsapp.url)}


def test_a_whatsapp_customer_gets_the_receipt_on_whatsapp(outbox, queue, engine_db, provider, whatsapp, clock):
    add(outbox)
    _whatsapp_row(queue, engine_db)
    Dispatcher(queue, TEMPLATES, _both(provider, whatsapp), clock=clock).run_once()
    [message] = whatsapp.sent
    assert message["To"] == "whatsapp:+221770000001" and message["Body"].startswith("ElecNet: paiement de 5 500 FCFA")
    assert provider.sent == [] and queue.get(1)["channel"] == "whatsapp"


def test_sms_when_whatsapp_refuses(outbox, queue, engine_db, provider, whatsapp, clock):
    add(outbox)
    _whatsapp_row(queue, engine_db)
    whatsapp.next_error = [(400, 63016, "Outside the allowed window")]
    Dispatcher(queue, TEMPLATES, _both(provider, whatsapp), clock=clock).run_once()
    assert whatsapp.sent == [] and len(provider.messages_to("+221770000001")) == 1
    assert (queue.get(1)["status"], queue.get(1)["channel"]) == ("sent", "sms")


def _twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented formula: base64(HMAC-SHA1(token, url + sorted name+value pairs))."""
    import base64
    import hashlib
    import hmac

    payload = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def test_twilio_status_callbacks_are_signed_and_update_the_delivery(settings, outbox, queue, engine_db, provider,
                                                                     whatsapp, clock):
    from dataclasses import replace

    app = create_app(replace(settings, twilio_auth_token=whatsapp.auth_token,
                             public_base_url="https://engine.example"))
    add(outbox)
    _whatsapp_row(queue, engine_db)
    Dispatcher(queue, TEMPLATES, _both(provider, whatsapp), clock=clock).run_once()
    sid = whatsapp.sent[0]["Sid"]
    params = {"MessageSid": sid, "MessageStatus": "delivered", "To": "whatsapp:+221770000001",
              "From": "whatsapp:+14155238886", "AccountSid": whatsapp.account_sid}
    client = app.test_client()
    url = "https://engine.example/whatsapp/twilio/status"
    forged = client.post("/whatsapp/twilio/status", data=params,
                         headers={"X-Twilio-Signature": _twilio_signature("not-the-token", url, params)})
    assert forged.status_code == 403 and queue.get(1)["delivery_status"] == "sent"
    signed = client.post("/whatsapp/twilio/status", data=params,
                         headers={"X-Twilio-Signature": _twilio_signature(whatsapp.auth_token, url, params)})
    assert signed.status_code == 204 and queue.get(1)["delivery_status"] == "delivered"
