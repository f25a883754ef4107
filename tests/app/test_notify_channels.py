"""Where each message goes: the channel the customer chose (WhatsApp through a fake Twilio API,
e-mail through a real SMTP server on loopback), SMS when that channel refuses or has no address,
an e-mail code only to the address it proves, and an alert topic turned off between queueing and
sending that stops the message (through the real dispatcher and the official SDKs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app.notify import Dispatcher, NotificationTemplates
from app.storage import SqlConsent, SqlOutbox, make_sessions
from app.storage.contacts import SqlContacts
from backend_clients.africastalking_sms import AfricasTalkingSms
from backend_clients.smtp_email import SmtpEmail
from backend_clients.twilio_whatsapp import TwilioWhatsApp
from dialogs.codes import hash_code
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp
from tests.support.fake_twilio import FakeTwilio, fake_twilio

TEMPLATES = NotificationTemplates.load("config/notifications.yaml")
AWA, BOB = "+221770000001", "+221770000002"
BILL = {"account_number": "1000001", "amount": "12500", "due_date": "2026-12-15"}
BILL_FR = "ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. Payez par *123#."
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def whatsapp() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake



@pytest.fixture
def contacts(engine_db: str) -> SqlContacts:
    return SqlContacts(make_sessions(engine_db))


@pytest.fixture
def consent(engine_db: str) -> SqlConsent:
    return SqlConsent(make_sessions(engine_db))


def senders(provider: FakeAfricasTalking, whatsapp: FakeTwilio | None = None,
            mail: FakeSmtp | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"sms": AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url,
                                                      timeout=(0.5, 2))}
    if whatsapp is not None:
        found["whatsapp"] = TwilioWhatsApp(whatsapp.account_sid, whatsapp.auth_token, "+14155238886",
                                           api_url=whatsapp.url)
    if mail is not None:
        found["email"] = SmtpEmail(mail.url, "notifications@elecnet.example")
    return found


def confirmed_email(contacts: SqlContacts, msisdn: str, address: str) -> None:
    contacts.stage_email(msisdn, address, hash_code("123456"), datetime(2026, 11, 26, 11, 0, tzinfo=UTC))
    assert contacts.confirm_email(msisdn, "123456", NOW, via="ussd", source="menu") == "ok"


def add_bill(outbox: SqlOutbox, key: str, msisdn: str = AWA) -> None:
    assert outbox.add(kind="bill_issued", msisdn=msisdn, language="fr", payload=BILL, dedupe_key=key)


def test_a_customer_who_chose_whatsapp_gets_their_messages_there_and_sms_when_twilio_refuses(
        outbox, queue, contacts, provider, whatsapp):
    contacts.set_channel(AWA, "whatsapp", via="ussd", source="menu")
    add_bill(outbox, "bill:1")
    add_bill(outbox, "bill:2", msisdn=BOB)
    assert [queue.get(1)["channel"], queue.get(2)["channel"]] == ["whatsapp", "sms"]   # marked when queued
    dispatcher = Dispatcher(queue, TEMPLATES, senders(provider, whatsapp), contacts=contacts)
    assert dispatcher.run_once().sent == 2
    assert [(m["To"], m["Body"]) for m in whatsapp.sent] == [("whatsapp:+221770000001", BILL_FR)]
    assert provider.messages_to(AWA) == [] and provider.messages_to(BOB) == [BILL_FR]
    whatsapp.next_error = [(400, 63016, "Outside the allowed window")]
    add_bill(outbox, "bill:3")
    dispatcher.run_once()
    assert provider.messages_to(AWA) == [BILL_FR] and queue.get(3)["channel"] == "sms"


def test_a_channel_chosen_after_the_message_was_queued_is_the_one_it_goes_by(outbox, queue, contacts, provider,
                                                                             whatsapp):
    add_bill(outbox, "bill:1")
    contacts.set_channel(AWA, "whatsapp", via="sms", source="keyword CANAL")
    Dispatcher(queue, TEMPLATES, senders(provider, whatsapp), contacts=contacts).run_once()
    assert len(whatsapp.sent) == 1 and provider.sent == []


def test_a_customer_who_chose_email_gets_it_at_their_confirmed_address_only(outbox, queue, contacts, provider,
                                                                            mail):
    contacts.set_channel(AWA, "email", via="ussd", source="menu")
    add_bill(outbox, "bill:1")
    dispatcher = Dispatcher(queue, TEMPLATES, senders(provider, mail=mail), contacts=contacts)
    dispatcher.run_once()
    # No confirmed address yet: SMS, not an address nobody proved.
    assert provider.messages_to(AWA) == [BILL_FR] and mail.received == []
    confirmed_email(contacts, AWA, "awa.diop@exemple.sn")
    add_bill(outbox, "bill:2")
    dispatcher.run_once()
    assert mail.messages_to("awa.diop@exemple.sn") == [BILL_FR]
    assert queue.get(2)["channel"] == "email" and len(provider.sent) == 1
    [(_, message)] = mail.received
    assert message["From"] == "notifications@elecnet.example" and message["Subject"].startswith("ElecNet:")


def test_an_email_code_goes_to_the_address_it_proves_and_never_by_sms(outbox, queue, contacts, provider, mail,
                                                                     seal):
    assert outbox.add(kind="email_code", msisdn=AWA, language="en", channel="email", dedupe_key="code:1",
                      payload={"code": "482913", "email": "awa@example.com"})
    clock = SettableClock(NOW)
    without_smtp = Dispatcher(queue, TEMPLATES, senders(provider), contacts=contacts, clock=clock, seal=seal)
    assert without_smtp.run_once().retried == 1            # waits for an SMTP server, not for SMS
    assert provider.sent == [] and queue.get(1)["status"] == "pending"
    clock.advance(seconds=5)
    with_smtp = Dispatcher(queue, TEMPLATES, senders(provider, mail=mail), contacts=contacts, clock=clock,
                           seal=seal)
    assert with_smtp.run_once().sent == 1
    [text] = mail.messages_to("awa@example.com")
    assert text.startswith("ElecNet: your e-mail confirmation code is 482913.") and provider.sent == []


@pytest.mark.parametrize("kind", ["pin_code", "web_code", "link_code"])
def test_a_code_the_screen_says_was_sent_by_sms_goes_by_sms_whatever_channel_was_chosen(
        outbox, queue, contacts, provider, whatsapp, mail, seal, kind):
    # "Un code de 6 chiffres vous a été envoyé par SMS": it proves the number, so it goes to the number's
    # SMS, not to the e-mail address or the WhatsApp chat the customer chose for their messages.
    confirmed_email(contacts, AWA, "awa.diop@exemple.sn")
    contacts.set_channel(AWA, "email", via="ussd", source="menu")
    contacts.set_channel(BOB, "whatsapp", via="ussd", source="menu")
    payload = {"code": "482913", "minutes": 5, "account_number": "1000001", "requested_by": "+2217*****999"}
    for n, msisdn in enumerate((AWA, BOB)):
        assert outbox.add(kind=kind, msisdn=msisdn, language="fr", payload=payload, dedupe_key=f"code:{n}")
    dispatcher = Dispatcher(queue, TEMPLATES, senders(provider, whatsapp, mail), contacts=contacts,
                            clock=SettableClock(NOW), seal=seal)
    assert dispatcher.run_once().sent == 2
    assert mail.received == [] and whatsapp.sent == []
    assert all("482913" in text for who in (AWA, BOB) for text in provider.messages_to(who))
    assert len(provider.messages_to(AWA)) == len(provider.messages_to(BOB)) == 1


def test_a_topic_turned_off_after_the_message_was_queued_is_not_sent(outbox, queue, consent, provider):
    consent.opt_in(AWA, "bill_issued", "1000001", channel="ussd", source="menu")
    consent.opt_in(BOB, "bill_issued", "1000001", channel="ussd", source="menu")
    add_bill(outbox, "bill:awa")
    add_bill(outbox, "bill:bob", msisdn=BOB)
    assert outbox.add(kind="payment_receipt", msisdn=AWA, language="fr", dedupe_key="pay:1", payload={
        "amount": "5500", "account_number": "1000001", "reference": "MM1", "token": None})
    consent.opt_out(AWA, "bill_issued", "1000001", channel="sms", source="keyword ALERTES")
    result = Dispatcher(queue, TEMPLATES, senders(provider), stops=consent, opt_ins=consent).run_once()
    assert (result.sent, result.suppressed) == (2, 1)
    assert provider.messages_to(BOB) == [BILL_FR]
    assert [m.startswith("ElecNet: paiement de 5 500 FCFA") for m in provider.messages_to(AWA)] == [True]
    assert (queue.get(1)["status"], queue.get(1)["last_error"]) == (
        "suppressed", "suppressed: the customer turned bill_issued off")


def test_a_low_credit_alert_of_another_meter_is_not_covered_by_this_ones_opt_in(outbox, queue, consent, provider):
    consent.opt_in(AWA, "low_credit", "3000001", channel="ussd", source="menu")
    for number in ("3000001", "3000002"):
        assert outbox.add(kind="low_credit", msisdn=AWA, language="fr", dedupe_key=f"low:{number}",
                          payload={"account_number": number, "credit": "4.5"})
    Dispatcher(queue, TEMPLATES, senders(provider), opt_ins=consent).run_once()
    [text] = provider.messages_to(AWA)
    assert "3000001" in text and queue.get(2)["status"] == "suppressed"
