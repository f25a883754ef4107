"""Transcripts of "where messages go" and the alert topics, French and English: a customer chooses
WhatsApp or e-mail from the USSD preferences, confirms an address with the code the worker sent to
it (a real SMTP server on loopback), and then receives the back office's notices there; a prepaid
customer turns low-credit alerts on and off, and one turned off after it was queued never goes.
Every change is in the consent history with its time, channel and source."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask

from app import worker
from app.factory import build_notice_relay
from app.settings import Settings
from app.storage import SqlConsent, make_sessions
from backoffice.notices import publish
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp
from tests.support.fake_twilio import FakeTwilio, fake_twilio

AWA, BUSINESS, PREPAID = "+221770000001", "+221770000002", "+221770000003"
NAV_FR, NAV_EN = "0. Retour 00. Accueil", "0. Back 00. Home"
BILL_FR = "ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. Payez par *123#."




@pytest.fixture
def whatsapp() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, provider: FakeAfricasTalking, mail: FakeSmtp, whatsapp: FakeTwilio) -> Settings:
    """SMS, WhatsApp and e-mail through their fakes; quiet hours off (tests run at any hour)."""
    return replace(settings, at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   twilio_account_sid=whatsapp.account_sid, twilio_auth_token=whatsapp.auth_token,
                   twilio_whatsapp_from="+14155238886", twilio_api_url=whatsapp.url, smtp_url=mail.url,
                   quiet_hours="")


@pytest.fixture
def consent(settings: Settings) -> SqlConsent:
    return SqlConsent(make_sessions(settings.database_url))


def history(consent: SqlConsent, msisdn: str) -> list[tuple[str, str, str, str]]:
    return [(c.action, c.topic, c.channel, c.source) for c in consent.history(msisdn)]


def publish_bill(backoffice_app: Flask, msisdn: str = AWA) -> None:
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        publish(session, "bill_issued", msisdn=msisdn, account_number="1000001", amount="12500",
                due_date="2026-12-15")


def test_email_chosen_in_the_menu_is_confirmed_by_the_code_sent_to_it_then_bills_arrive_there(
        phone, settings, mail, provider, consent, backoffice_app):
    p = phone(AWA)
    p.dial()
    p.answer("8")
    assert p.answer("6") == ("CON Vos messages arrivent par SMS. Les recevoir par:\n1. SMS\n2. WhatsApp\n3. E-mail\n"
                             f"4. Ajouter une adresse e-mail\n{NAV_FR}")
    assert p.answer("3") == ("CON Tapez votre adresse e-mail (ex: awa.diop@exemple.sn). Un code vous y sera "
                             f"envoyé:\n{NAV_FR}")
    assert p.answer("awa.diop@") == ("CON Adresse non valide.\nTapez votre adresse e-mail (ex: awa.diop@exemple.sn). "
                                     f"Un code vous y sera envoyé:\n{NAV_FR}")
    assert p.answer("Awa.Diop@Exemple.SN") == ("CON Un code a été envoyé à A***@exemple.sn. Tapez-le ici (valable "
                                               f"30 minutes):\n1. Renvoyer le code\n{NAV_FR}")
    worker.run_once(settings)                                     # the worker sends it through SMTP
    [letter] = mail.messages_to("Awa.Diop@exemple.sn")
    assert provider.sent == [], "the code proves the mailbox: it never goes by SMS"
    found = re.search(r"code de confirmation d'adresse e-mail est (\d{6})\.", letter)
    assert found, letter
    wrong = "000000" if found.group(1) != "000000" else "111111"
    assert p.answer(wrong) == ("CON Code incorrect. Essais restants: 2. Tapez le code envoyé à A***@exemple.sn:\n"
                               f"1. Renvoyer le code\n{NAV_FR}")
    assert p.answer("12345") == ("CON Le code a 6 chiffres.\nTapez le code envoyé à A***@exemple.sn:\n"
                                 f"1. Renvoyer le code\n{NAV_FR}")
    assert p.answer(found.group(1)) == ("CON Adresse e-mail confirmée: A***@exemple.sn. Vos messages arriveront "
                                        f"par e-mail (par SMS s'il le faut).\n1. Menu principal\n{NAV_FR}")
    assert history(consent, AWA) == [("email", "confirmed", "ussd", "menu"), ("channel", "email", "ussd", "menu")]
    consent.opt_in(AWA, "bill_issued", "1000001", channel="ussd", source="menu")
    publish_bill(backoffice_app)
    worker.run_once(settings)
    assert mail.messages_to("Awa.Diop@exemple.sn")[-1] == BILL_FR and provider.messages_to(AWA) == []
    again = phone(AWA)
    again.dial()
    again.answer("8")
    assert again.answer("6") == ("CON Vos messages arrivent par e-mail. Les recevoir par:\n1. SMS\n2. WhatsApp\n"
                                 f"3. E-mail A***@exemple.sn\n4. Changer d'adresse e-mail\n{NAV_FR}")


def test_someone_elses_address_cannot_be_registered_without_its_code(phone, settings, mail, consent):
    p = phone(AWA)
    p.dial()
    p.answer("8")
    p.answer("6")
    p.answer("4")
    p.answer("victim@example.com")
    for guess in ("123456", "234567"):
        assert p.answer(guess).startswith("CON Code incorrect.")
    assert p.answer("345678") == ("CON Code expiré ou trop d'erreurs. Pour recevoir un nouveau code:\n"
                                  f"1. Nouveau code\n{NAV_FR}")
    worker.run_once(settings)
    [letter] = mail.messages_to("victim@example.com")
    code = re.search(r"(\d{6})", letter)
    assert code
    late = phone(AWA)                   # even the right code, after three wrong ones, is refused
    late.dial()
    late.answer("8")
    late.answer("6")
    assert late.answer("5") == ("CON Un code a été envoyé à v***@example.com. Tapez-le ici (valable 30 minutes):\n"
                                f"1. Renvoyer le code\n{NAV_FR}")
    assert late.answer(code.group(1)).startswith("CON Code expiré ou trop d'erreurs.")
    assert [c for c in history(consent, AWA) if c[0] in ("email", "channel")] == []


def test_whatsapp_chosen_in_english_and_the_next_receipt_goes_there(phone, settings, whatsapp, provider, consent,
                                                                    backoffice_app):
    p = phone(BUSINESS)
    p.dial()
    p.answer("1")
    p.answer("8")
    assert p.answer("6") == ("CON Your messages come by SMS. Get them by:\n1. SMS\n2. WhatsApp\n3. E-mail\n"
                             f"4. Add an e-mail address\n{NAV_EN}")
    assert p.answer("2") == f"CON Done: your messages will come by WhatsApp (by SMS when need be).\n1. Main menu\n{NAV_EN}"
    assert history(consent, BUSINESS) == [("channel", "whatsapp", "ussd", "menu")]
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        publish(session, "ticket_status", msisdn=BUSINESS, reference="REC-7K3M", status="resolved", language="en")
    worker.run_once(settings)
    [message] = whatsapp.sent
    assert message["To"] == f"whatsapp:{BUSINESS}" and message["Body"].startswith("ElecNet: your request REC-7K3M")
    assert provider.messages_to(BUSINESS) == []
    e = phone(BUSINESS)
    e.dial()
    e.answer("1")
    e.answer("8")
    e.answer("6")
    assert e.answer("3") == ("CON Type your e-mail address (e.g. awa.diop@example.com). A code will be sent to it:\n"
                             f"{NAV_EN}")
    assert e.answer("ops@entreprise.sn") == ("CON A code was sent to o***@entreprise.sn. Type it here (valid for 30 "
                                             f"minutes):\n1. Send the code again\n{NAV_EN}")
    assert e.answer("12345") == ("CON The code has 6 digits.\nA code was sent to o***@entreprise.sn. Type it here "
                                 f"(valid for 30 minutes):\n1. Send the code again\n{NAV_EN}")
    assert e.answer("000001").startswith("CON Wrong code. Tries left: 2. Type the code sent to o***@entreprise.sn:")
    assert e.answer("1234567") == ("CON The code has 6 digits.\nType the code sent to o***@entreprise.sn:\n"
                                   f"1. Send the code again\n{NAV_EN}")


def test_a_prepaid_customer_switches_low_credit_alerts_and_one_turned_off_in_time_never_goes(
        phone, settings, provider, consent, backoffice_app):
    p = phone(PREPAID)
    p.dial()
    p.answer("8")
    assert p.answer("2") == ("CON Alertes par SMS (choisissez pour changer):\n1. Panne dans ma zone: non\n"
                             f"2. Crédit faible: non\n3. Paiement d'un autre numéro: non\n{NAV_FR}")
    assert "2. Crédit faible: oui" in p.answer("2")
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        publish(session, "low_credit", msisdn=PREPAID, account_number="3000001", credit="4.5")
    worker.run_once(settings)
    assert provider.messages_to(PREPAID) == [
        "ElecNet: crédit faible sur le compteur du compte 3000001: 4,5 kWh restants. Rechargez par *123#."]
    # Queued while on, turned off before the worker's next pass: it does not go.
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        publish(session, "low_credit", msisdn=PREPAID, account_number="3000001", credit="1.5")
    assert build_notice_relay(settings, make_sessions(settings.database_url)).run_once() == 1
    assert "2. Crédit faible: non" in p.answer("2")
    worker.run_once(settings)
    assert len(provider.messages_to(PREPAID)) == 1
    assert history(consent, PREPAID) == [("opt_in", "low_credit", "ussd", "menu"),
                                         ("opt_out", "low_credit", "ussd", "menu")]


def test_low_credit_alerts_in_english_and_bills_for_a_postpaid_account(phone, consent):
    p = phone(PREPAID)
    p.dial()
    p.answer("8")
    p.answer("1")
    p.answer("2")                                   # English
    p.answer("1")                                   # main menu
    p.answer("8")
    assert p.answer("2") == ("CON Alerts by SMS (choose to switch):\n1. Outage in my area: off\n2. Low credit: off\n"
                             f"3. Payment by another number: off\n{NAV_EN}")
    assert "2. Low credit: on" in p.answer("2")
    postpaid = phone(AWA)
    postpaid.dial()
    postpaid.answer("8")
    assert "2. Facture émise: non" in postpaid.answer("2")
    assert [c[:2] for c in history(consent, PREPAID)] == [("opt_in", "low_credit")]
