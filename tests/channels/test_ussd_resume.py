"""Transcripts of redialling after a drop, and of a session that is its caller's alone.

"Continue where you left off?" is offered only when the dropped session was in the middle of
a task (an amount typed, a confirmation pending) and the gateway did not report a normal end;
a resumed session goes through the PIN gate again; a second number sending the first one's
sessionId gets a polite END and nothing of the first one's session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app.factory import create_app
from app.settings import Settings
from engine.types import Turn
from tests.support.engine import UssdPhone

OWNER, INTRUDER = "+221770000001", "+221770000009"
PAYMENT_OFFER = "CON Reprendre votre paiement de 1 000 FCFA ?\n1. Oui\n2. Non"
SORRY = "END Service momentanément indisponible. Merci de réessayer plus tard."
PIN, NEW_PIN = "4821", "7395"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, resume_window_seconds=120, session_ttl_seconds=240, secret_key="test-secret-key")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def phone(client: FlaskClient) -> Callable[[str], UssdPhone]:
    return lambda msisdn: UssdPhone(client, msisdn)


def end_of_session(client: FlaskClient, phone: UssdPhone, status: str) -> None:
    """The gateway's end-of-session notification for ``phone``'s session."""
    response = client.post("/ussd/africastalking/events", data={
        "sessionId": phone.session_id, "serviceCode": "*123#", "networkCode": "99999",
        "phoneNumber": phone.msisdn, "status": status, "durationInMillis": "20000",
        "hopsCount": str(len(phone.inputs) + 1), "date": "2026-11-25 10:00:00"})
    assert response.status_code == 200


def pay_another_amount(p: UssdPhone) -> str:
    """Pay -> another amount -> 1000: the confirmation screen, as shown."""
    p.dial()
    p.answer("3")
    assert p.answer("2").startswith("CON A payer: 12 500 FCFA\nMontant à régler (FCFA):")
    assert p.answer("1000").startswith("CON Payer 1 000 FCFA avec:\n1. Orange Money")
    confirm = p.answer("1")
    assert confirm.startswith("CON Payer 1 000 FCFA sur le compte 1000001 avec Orange Money ?")
    return confirm


def test_a_redial_after_screens_that_only_showed_information_goes_to_the_main_menu(phone):
    p = phone(OWNER)
    p.dial()
    p.answer("1")
    assert p.answer("1").startswith("CON Factures (choisissez):")
    # the network drops the session; the customer dials again
    again = phone(OWNER).dial()
    assert not again.startswith("CON Reprendre")
    assert "1. Solde et factures" in again


def test_a_redial_with_a_payment_to_confirm_offers_to_continue_it(phone):
    confirm = pay_another_amount(phone(OWNER))
    again = phone(OWNER)
    assert again.dial() == PAYMENT_OFFER
    assert again.answer("1") == confirm
    # Confirm leads to the PIN gate, as before the drop (a first PIN: the last-bill proof first).
    assert again.answer("1").startswith("CON Premier usage. Pour vérifier, entrez le montant de la dernière facture")


def test_a_redial_while_an_amount_is_asked_offers_to_continue(phone):
    p = phone(OWNER)
    p.dial()
    p.answer("3")
    asked = p.answer("2")
    again = phone(OWNER)
    assert again.dial() == "CON Reprendre votre paiement ?\n1. Oui\n2. Non"      # no amount typed yet
    assert again.answer("1") == asked
    assert again.answer("1000").startswith("CON Payer 1 000 FCFA avec:")


def test_a_redial_while_the_wallet_is_asked_offers_to_continue(phone):
    # README "Try it": '3*2*1000', the wallet is asked ... and the call drops.
    p = phone(OWNER)
    p.dial()
    p.answer("3")
    p.answer("2")
    asked = p.answer("1000")
    assert asked.startswith("CON Payer 1 000 FCFA avec:\n1. Orange Money")
    again = phone(OWNER)
    assert again.dial() == PAYMENT_OFFER
    assert again.answer("1") == asked
    assert again.answer("2").startswith("CON Payer 1 000 FCFA sur le compte 1000001 avec Wave ?")


def test_the_offer_names_the_payment_in_english_and_again_after_a_wrong_answer(phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")                                          # account 2000001
    p.answer("3")
    p.answer("2")
    p.answer("1500")
    confirm = p.answer("2")                                # Wave
    assert confirm.startswith("CON Pay 1,500 FCFA to account 2000001 with Wave?")
    again = phone("+221770000002")
    assert again.dial() == "CON Resume your payment of 1,500 FCFA?\n1. Yes\n2. No"
    assert again.answer("7") == "CON Invalid choice.\nResume your payment of 1,500 FCFA?\n1. Yes\n2. No"
    assert again.answer("1") == confirm


# Dropped a minute before midnight at February's end; the window (two minutes here) runs into March.
@pytest.mark.parametrize("product_clock", [datetime(2027, 2, 28, 23, 59, tzinfo=UTC)], ids=["feb-28th-23:59"],
                         indirect=True)
def test_the_offer_stands_for_the_resume_window_and_not_a_second_longer(phone, product_clock):
    confirm = pay_another_amount(phone(OWNER))
    product_clock.advance(minutes=2)
    again = phone(OWNER)
    assert again.dial() == PAYMENT_OFFER
    assert again.answer("1") == confirm                  # and dropped again, on the same confirmation
    product_clock.advance(minutes=2, seconds=1)
    late = phone(OWNER).dial()
    assert late.startswith("CON ElecNet - 1000001\n1. Solde et factures")


def test_no_offer_once_the_gateway_reported_a_normal_end(client, phone):
    p = phone(OWNER)
    pay_another_amount(p)
    end_of_session(client, p, "Success")
    again = phone(OWNER).dial()
    assert not again.startswith("CON Reprendre") and "1. Solde et factures" in again


def test_the_offer_stands_when_the_gateway_reports_a_dropped_session(client, phone):
    p = phone(OWNER)
    pay_another_amount(p)
    end_of_session(client, p, "Incomplete")
    assert phone(OWNER).dial() == PAYMENT_OFFER


def test_a_pin_change_resumed_after_a_drop_asks_the_current_pin_again(app, phone):
    pins = app.extensions["parts"]["deps"].pins
    pins.set_pin(OWNER, PIN)
    p = phone(OWNER)
    p.dial()
    p.answer("8")
    assert p.answer("3") == "CON Entrez votre code PIN (4 chiffres):\n0. Retour 00. Accueil"
    assert p.answer(PIN) == "CON Nouveau code PIN (4 chiffres):\n0. Retour 00. Accueil"
    # Dropped past the PIN step; whoever holds the handset redials within the window.
    again = phone(OWNER)
    assert again.dial() == "CON Reprendre le changement de votre code PIN ?\n1. Oui\n2. Non"
    assert again.answer("1") == "CON Entrez votre code PIN (4 chiffres):\n0. Retour 00. Accueil"
    assert again.answer("1111").startswith("CON Code PIN incorrect.")
    assert pins.verify(OWNER, PIN, datetime.now(UTC)).result == "ok"  # nothing changed

    thief = phone(OWNER)  # declining the offer gives no way round the gate either
    thief.dial()
    assert thief.answer("2").startswith("CON ElecNet - 1000001")

    owner = phone(OWNER)
    owner.dial()
    owner.answer("8")
    owner.answer("3")
    assert owner.answer(PIN) == "CON Nouveau code PIN (4 chiffres):\n0. Retour 00. Accueil"
    owner.answer(NEW_PIN)
    assert owner.answer(NEW_PIN).startswith("CON Votre code PIN a été changé.")
    assert pins.verify(OWNER, NEW_PIN, datetime.now(UTC)).result == "ok"


def test_a_link_resumed_at_its_code_asks_for_the_code_already_sent(app, phone):
    outbox = app.extensions["parts"]["deps"].outbox
    p = phone("+221770009001")
    p.dial()
    p.answer("1")
    p.answer("1000001")
    code_asked = p.answer("5500")                             # then the call drops
    assert code_asked.startswith("CON Un code a été envoyé par SMS au numéro du titulaire du compte (+2217*****001).")
    [sent] = [e for e in outbox.pending() if e["kind"] == "link_code"]
    again = phone("+221770009001")
    assert again.dial() == "CON Reprendre la liaison du compte 1000001 ?\n1. Oui\n2. Non"
    assert again.answer("1") == code_asked
    # The code the holder already received still works, and no second code was sent.
    assert [e for e in outbox.pending() if e["kind"] == "link_code"] == [sent]
    assert again.answer(sent["payload"]["code"]).startswith("CON Compte 1000001 lié à votre numéro.")


def test_a_redial_while_the_account_number_is_asked_offers_to_resume_linking(phone):
    p = phone("+221770009002")
    p.dial()
    assert p.answer("1").startswith("CON Entrez votre numéro de compte (7 chiffres):")   # then the call drops
    again = phone("+221770009002")
    assert again.dial() == "CON Reprendre la liaison de votre compte ?\n1. Oui\n2. Non"
    assert again.answer("1").startswith("CON Entrez votre numéro de compte (7 chiffres):")
    assert again.answer("1000001").startswith("CON Pour vérifier, entrez le montant de votre dernière facture")


def test_linking_resumed_in_english_names_the_account_typed(app):
    """Through the engine with an English hint (a caller with no account has no language of their own yet)."""
    engine = app.extensions["engine"]

    def hop(session: str, value: str | None, n: int) -> str:
        return engine.handle(Turn("ussd", "+221770009003", f"ussd:{session}", value, f"{session}-{n}",
                                  language_hint="en", customer="+221770009003")).text

    assert hop("link-en-1", None, 0).startswith("Welcome to ElecNet. This number is not linked to any account.")
    hop("link-en-1", "1", 1)
    assert hop("link-en-1", "1000001", 2).startswith("To check, enter the amount of your last bill (FCFA):")
    # the call drops; the redial names the task and the account, and Yes goes on where it stopped
    assert hop("link-en-2", None, 0) == "Resume linking account 1000001?\n1. Yes\n2. No"
    assert hop("link-en-2", "1", 1).startswith("To check, enter the amount of your last bill (FCFA):")


def test_a_prepaid_first_pin_resumed_at_its_code_asks_for_the_code_already_sent(app, phone):
    outbox = app.extensions["parts"]["deps"].outbox
    p = phone("+221770000003")
    p.dial("3")
    p.answer("1")                                             # buy credit
    p.answer("2000")
    p.answer("2")                                             # Wave
    code_asked = p.answer("1")
    assert code_asked.startswith("CON Premier usage. Un code de 6 chiffres vous a été envoyé par SMS.")
    for _ in range(3):                                        # the call drops, again and again
        again = phone("+221770000003")          # behind the PIN gate: the task the gate protects
        assert again.dial() == "CON Reprendre votre achat de crédit de 2 000 FCFA ?\n1. Oui\n2. Non"
        assert again.answer("1") == code_asked
    [sent] = [e for e in outbox.pending() if e["kind"] == "pin_code"]     # one code, still the good one
    assert again.answer(sent["payload"]["code"]) == (
        "CON Premier usage: choisissez un code PIN secret (4 chiffres):\n0. Retour 00. Accueil")


def test_an_email_address_resumed_at_its_code_asks_for_the_code_already_sent(app, phone):
    outbox = app.extensions["parts"]["deps"].outbox
    p = phone(OWNER)
    p.dial("8")
    p.answer("6")                                             # where messages go
    p.answer("4")                                             # add an e-mail address
    code_asked = p.answer("moussa@exemple.sn")                # then the call drops
    assert code_asked == ("CON Un code a été envoyé à m***@exemple.sn. Tapez-le ici (valable 30 minutes):\n"
                          "1. Renvoyer le code\n0. Retour 00. Accueil")
    again = phone(OWNER)
    assert again.dial() == "CON Reprendre la confirmation de votre adresse e-mail ?\n1. Oui\n2. Non"
    assert again.answer("1") == code_asked                    # not "type your address" again
    [sent] = [e for e in outbox.pending() if e["kind"] == "email_code"]
    assert again.answer(sent["payload"]["code"]).startswith("CON Adresse e-mail confirmée: m***@exemple.sn.")


def test_continuing_a_first_pin_does_not_count_the_last_bill_again(phone):
    for _ in range(6):                                        # proven once, then the call drops five times
        p = phone(OWNER)
        if p.dial() == PAYMENT_OFFER:
            assert p.answer("1") == "CON Premier usage: choisissez un code PIN secret (4 chiffres):\n0. Retour 00. Accueil"
        else:
            pay_another_amount(p)
            assert p.answer("1").startswith("CON Premier usage. Pour vérifier, entrez le montant")
            assert p.answer("5500").startswith("CON Premier usage: choisissez un code PIN secret")
        end_of_session(p.client, p, "Failed")
    # One proof counted against the account, not six: someone else linking it is not refused for the day.
    other = phone("+221770009002")
    other.dial()
    other.answer("1")
    other.answer("1000001")
    assert other.answer("5500").startswith("CON Un code a été envoyé par SMS")


def test_another_number_sending_a_callers_session_id_gets_a_polite_end_and_nothing_else(phone):
    owner = phone(OWNER)
    owner.dial()
    balance = owner.answer("1")
    assert balance.startswith("CON Compte 1000001\nA payer: 12 500 FCFA")

    intruder = phone(INTRUDER)
    intruder.session_id = owner.session_id
    for text in ("", "1", "1*1"):  # the owner's exact requests, and one step further
        assert intruder.post(text) == SORRY

    assert owner.answer("1").startswith("CON Factures (choisissez):")  # the owner carries on


def test_session_lifetimes_in_redis(settings, phone):
    client = redis.Redis.from_url(settings.redis_url or "")
    p = phone(OWNER)
    p.dial()
    key = f"conv:s:ussd:{p.session_id}"  # one neutral store prefix; the key names the channel
    assert 235 <= client.ttl(key) <= 240  # SESSION_TTL_SECONDS after each hop
    p.answer("1")
    assert 235 <= client.ttl(key) <= 240
    p.answer("0")
    p.answer("9")
    p.answer("9")
    assert p.answer("9").startswith("END ")  # three errors end the session
    assert 115 <= client.ttl(key) <= 120  # an ended session is kept two minutes to answer replays
    client.close()


def test_two_app_instances_share_the_replay_record_with_the_same_key(settings):
    one, two = create_app(settings).test_client(), create_app(settings).test_client()
    p = UssdPhone(one, OWNER)
    p.dial()
    first = p.answer("1")
    p.client = two
    assert p.post("1") == first  # the gateway's retry reached the other instance: same answer
    assert p.answer("1").startswith("CON Factures (choisissez):")
