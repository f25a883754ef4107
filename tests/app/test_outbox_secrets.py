"""Every code that travels through the outbox is sealed there: the code that confirms an account link and
the code that undoes it, a prepaid customer's first-PIN code (asked the way a customer does, over USSD),
the code that proves an e-mail address, a prepaid token; none is readable in the database, the message
still says the exact code. Once sent the sealed code is erased, so an agent's "send again" of a code
message fails with the reason instead of sending a message without its code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.notify import Dispatcher, NotificationTemplates
from app.settings import Settings
from app.storage import SqlOutbox, make_sessions
from app.storage.agent_console import SqlCustomerRecords
from app.storage.delivery import SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal, SealBroken
from backend_clients.africastalking_sms import AfricasTalkingSms
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.outbox_rows import raw_rows

TEMPLATES = NotificationTemplates.load("config/notifications.yaml")
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_link_pin_and_email_codes_are_sealed_in_the_database(phone, app, settings: Settings) -> None:
    outbox: SqlOutbox = app.extensions["parts"]["deps"].outbox
    stranger: UssdPhone = phone("+221770012222")
    stranger.dial()
    stranger.answer("1")
    stranger.answer("1000001")
    stranger.answer("5500")                                        # a code to the holder's number
    [link] = [e for e in outbox.pending() if e["kind"] == "link_code"]
    assert stranger.answer(link["payload"]["code"]).startswith("CON Compte 1000001 lié")
    [notice] = [e for e in outbox.pending() if e["kind"] == "link_notice"]
    prepaid = phone("+221770000003")
    prepaid.dial("3")
    prepaid.answer("1")
    prepaid.answer("2000")
    prepaid.answer("2")
    assert prepaid.answer("1").startswith("CON Premier usage. Un code de 6 chiffres")
    [pin] = [e for e in outbox.pending() if e["kind"] == "pin_code"]
    secrets = {"link code": link["payload"]["code"], "undo code": notice["payload"]["undo_code"],
               "first-PIN code": pin["payload"]["code"]}
    assert notice["payload"]["undo_keyword"] == f"ANNULER {secrets['undo code']}"
    rows = raw_rows(settings.database_url)
    assert {what: code in rows for what, code in secrets.items()} == dict.fromkeys(secrets, False)
    assert rows.count('"sealed": ["code"]') == 2 and '"sealed": ["undo_code", "undo_keyword"]' in rows


def test_the_email_code_is_sealed_too(settings: Settings, seal: OutboxSeal) -> None:
    outbox = SqlOutbox(make_sessions(settings.database_url), seal)
    assert outbox.add(kind="email_code", msisdn="+221770000001", language="fr", channel="email",
                      dedupe_key="email_code:1", payload={"code": "482913", "email": "awa@exemple.sn"})
    rows = raw_rows(settings.database_url)
    assert "482913" not in rows and "awa@exemple.sn" in rows      # the address is no secret, the code is
    assert [e["payload"]["code"] for e in outbox.pending()] == ["482913"]


def test_a_sent_code_is_erased_and_sending_it_again_fails_with_the_reason(
        engine_db: str, outbox: SqlOutbox, queue: SqlDeliveryQueue, seal: OutboxSeal,
        provider: FakeAfricasTalking) -> None:
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url, timeout=(0.5, 2))
    dispatcher = Dispatcher(queue, TEMPLATES, {"sms": sms}, seal=seal, clock=lambda: NOW)
    assert outbox.add(kind="pin_code", msisdn="+221770000003", language="en", payload={"code": "731904"},
                      dedupe_key="pin_code:1")
    assert dispatcher.run_once().sent == 1
    assert provider.messages_to("+221770000003") == [
        "ElecNet: your verification code is 731904. Valid 3 minutes. Do not share it."]
    assert queue.get(1)["sealed"] is None and "731904" not in raw_rows(engine_db)
    # The provider reports it failed; an agent presses "Send again" (the console's resend).
    queue.record_report(provider="africastalking", message_id=provider.sent[0].message_id,
                        msisdn="+221770000003", status="Failed")
    console = SqlCustomerRecords(make_sessions(engine_db), security=None, identity=None)  # type: ignore[arg-type]
    assert console.resend("+221770000003", 1)
    assert dispatcher.run_once().failed == 1
    assert len(provider.sent) == 1                                # no "your code is -"
    row = queue.get(1)
    assert row["status"] == "failed"
    assert row["last_error"] == "not sent: its one-time code was erased after a first send; the customer asks " \
                                "for a new one"


def test_an_agent_sending_a_token_receipt_again_is_told_where_the_customer_reads_the_token(
        engine_db: str, outbox: SqlOutbox, queue: SqlDeliveryQueue, seal: OutboxSeal,
        provider: FakeAfricasTalking) -> None:
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url, timeout=(0.5, 2))
    dispatcher = Dispatcher(queue, TEMPLATES, {"sms": sms}, seal=seal, clock=lambda: NOW)
    token = "48213907561284730195"
    assert outbox.add(kind="payment_receipt", msisdn="+221770000003", language="en", dedupe_key="payment:P1",
                      payload={"payment_id": "P1", "reference": "MM1", "amount": "2000", "account_number": "3000001",
                               "purpose": "prepaid", "token": token, "failure_reason": None})
    assert token not in raw_rows(engine_db)
    assert dispatcher.run_once().sent == 1
    grouped = "4821 3907 5612 8473 0195"   # as the receipt prints it, for the meter's keypad
    assert grouped in provider.messages_to("+221770000003")[0] and token not in raw_rows(engine_db)
    queue.record_report(provider="africastalking", message_id=provider.sent[0].message_id,
                        msisdn="+221770000003", status="Failed")
    console = SqlCustomerRecords(make_sessions(engine_db), security=None, identity=None)  # type: ignore[arg-type]
    assert console.resend("+221770000003", 1)
    assert dispatcher.run_once().failed == 1 and len(provider.sent) == 1   # never a receipt without its token
    assert queue.get(1)["last_error"] == ("not sent: its prepaid token was erased after a first send; the customer "
                                          "reads it again in *123*3*2# (last payments)")


def test_without_a_seal_key_the_engine_and_the_worker_share_one_derived_from_secret_key() -> None:
    # two processes of one deployment (the engine seals, the worker opens) set only SECRET_KEY
    engine_seal = OutboxSeal.from_setting("", "deployment-secret")
    worker_seal = OutboxSeal.from_setting("", "deployment-secret")
    payload, token = engine_seal.seal({"code": "482913", "kind": "web_code"})
    assert "482913" not in str(payload) and token is not None and "482913" not in token
    assert worker_seal.open(payload, token)["code"] == "482913"
    # another deployment's key opens nothing
    with pytest.raises(SealBroken):
        OutboxSeal.from_setting("", "another-secret").open(payload, token)
