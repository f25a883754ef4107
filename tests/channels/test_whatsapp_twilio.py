"""WhatsApp through Twilio, French and English: Twilio's signed form posted like Twilio does, the TwiML
answer read like the customer reads it. The real back office serves the accounts; the signatures are
computed with Twilio's documented formula (``whatsapp_phones.twilio_signature``), over the public URL."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest
import redis

from app.factory import create_app
from channels.whatsapp_twilio import split_body

from .whatsapp_phones import TWILIO_PUBLIC_URL, TwilioWhatsAppPhone, twilio_signature, twiml_messages

PIN = "2468"
MAIN_FR = ("ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n4. Panne/réclamation\n"
           "5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n8. Préférences")
NAV_FR = "0. Retour 00. Accueil"
NAV_EN = "0. Back 00. Home"
CHOOSE_EN = "Choose an account:\n1. 2000001 DKR-PLATEAU\n2. 2000002 THIES-NORD\n3. 2000003 DKR-PLATEAU"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def test_a_french_customer_checks_the_balance_pays_with_a_pin_and_reports_an_outage(
        twilio_phone, wa_app, redis_url, caplog):
    deps = wa_app.extensions["parts"]["deps"]
    deps.pins.set_pin("+221770000001", PIN)
    caplog.set_level(logging.DEBUG)
    awa = twilio_phone("+221770000001")
    assert awa.say("Bonjour") == MAIN_FR
    assert awa.last_status == 200
    assert awa.say("1") == f"Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures\n{NAV_FR}"
    assert awa.say("menu") == MAIN_FR
    assert awa.say("3") == ("Payer - compte 1000001\nÀ payer: 12 500 FCFA\n1. Payer tout le solde\n"
                            f"2. Payer un autre montant\n3. Derniers paiements\n{NAV_FR}")
    assert awa.say("1") == f"Payer 12 500 FCFA avec:\n1. Orange Money\n2. Wave\n3. Free Money\n4. Annuler\n{NAV_FR}"
    assert awa.say("1") == f"Payer 12 500 FCFA sur le compte 1000001 avec Orange Money ?\n1. Confirmer\n2. Annuler\n{NAV_FR}"
    assert awa.say("1") == f"Entrez votre code PIN (4 chiffres):\n{NAV_FR}"
    started = awa.say(PIN)
    assert re.fullmatch(r"Validez le paiement de 12 500 FCFA sur votre téléphone \(invite mobile money\)\. "
                        r"Vous recevrez une confirmation par SMS\. Réf\. PAY-[0-9A-F]{16}", started), started
    # The PIN is never echoed, and kept nowhere: not in Redis (sessions, answers), the outbox or the log.
    assert PIN not in awa.last_twiml
    stored = redis.Redis.from_url(redis_url)
    for key in stored.keys("*"):
        assert PIN.encode() not in (stored.get(key) or b""), key
    assert all(PIN not in str(row) for row in deps.outbox.pending())
    assert PIN not in caplog.text

    assert awa.say("PANNE") == f"Signaler une panne de courant\nCompte 1000001, zone DKR-MEDINA\n1. Confirmer\n2. Annuler\n{NAV_FR}"
    reported = awa.say("1")
    assert re.fullmatch(r"Panne signalée\. Référence: (INC-[2-9A-Z]{4})\n"
                        r"Pour la suivre: menu 5, ou envoyez SUIVI \1 par SMS\.\n0\. Retour 00\. Accueil", reported), reported


def test_an_english_business_customer_picks_an_account_sees_its_balance_and_reports_an_outage(twilio_phone):
    sahel = twilio_phone("+221770000002")
    assert sahel.say("Hello") == CHOOSE_EN
    assert sahel.say("2").startswith("ElecNet - 2000002\n1. Balance and bills\n")
    assert sahel.say("1").startswith("Account 2000002\nBalance due: ")
    assert sahel.say("home").startswith("ElecNet - 2000002\n")      # Home within the conversation
    # MENU starts afresh, on the account chosen in this conversation ("Other account" switches it).
    assert sahel.say("MENU").startswith("ElecNet - 2000002\n")
    assert sahel.say("MENU").endswith("\n9. Other account")
    assert sahel.say("4") == f"Outage or complaint:\n1. Report an outage\n2. Make a complaint\n{NAV_EN}"
    known = sahel.say("1")
    assert known.startswith("An outage is already known in your area (THIES-NORD). Power expected back: ")
    assert known.endswith(f"\n1. Alert me when power is back\n2. Fault at my home only\n{NAV_EN}")
    assert sahel.say("1") == f"You will be told by WhatsApp when power is back in your area (THIES-NORD).\n{NAV_EN}"


def test_payer_by_whatsapp_can_be_cancelled_at_the_wallet_question_in_french_and_english(twilio_phone, wa_app):
    awa = twilio_phone("+221770000001")
    assert awa.say("PAYER 5000") == ("Payer 5 000 FCFA avec (répondez par le numéro):\n1. Orange Money\n2. Wave\n"
                                     f"3. Free Money\n4. Annuler\n{NAV_FR}")
    assert awa.say("4") == "Paiement annulé. Rien n'a été payé. Pour payer, envoyez PAYER suivi du montant."
    sahel = twilio_phone("+221770000002")
    sahel.say("PAY 5000")
    assert sahel.say("2").endswith(f"\n3. Free Money\n4. Cancel\n{NAV_EN}")
    assert sahel.tap("4", "Cancel") == "Payment cancelled. Nothing was paid. To pay, send PAY and the amount."
    ledger = wa_app.extensions["parts"]["deps"].ledger
    assert ledger.recent("+221770000001") == [] and ledger.recent("+221770000002") == []


def test_a_command_without_its_amount_by_whatsapp_says_how_to_write_it_and_a_greeting_opens_the_menu(twilio_phone):
    awa = twilio_phone("+221770000001")
    assert awa.say("PAYER") == "Envoyez PAYER suivi du montant, ex: PAYER 5000."
    assert awa.say("Bonjour").startswith("ElecNet - 1000001\n1. Solde et factures\n")
    sahel = twilio_phone("+221770000002")
    assert sahel.say("ALERTS please") == "Send ALERTS ON to get the alerts, or ALERTS OFF to stop them."


def test_balance_keyword_in_english_and_a_tapped_quick_reply_counts_as_its_option(twilio_phone):
    sahel = twilio_phone("+221770000002")
    assert sahel.say("BALANCE 2000003").startswith("Account 2000003\nBalance due: 46,100 FCFA\n")
    assert sahel.tap("1", "Latest bills").startswith("Bills (choose one):\n1. November 2026 46,100 FCFA unpaid\n")


def test_a_picture_without_words_gets_a_request_for_text_and_moves_nothing(twilio_phone):
    awa = twilio_phone("+221770000001")
    awa.say("Bonjour")
    picture = awa.form("", NumMedia="1", MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1",
                       MediaContentType0="image/jpeg", MessageType="image")
    assert awa.post(picture) == [("Merci de répondre par écrit (un numéro du menu, ou MENU). / "
                                  "Please answer in writing (a number from the menu, or MENU).")]
    assert awa.say("1").startswith("Compte 1000001\n")      # still on the main menu


# ---------------------------------------------------------------- replays
def test_a_retried_message_sid_gets_the_same_answer_and_moves_nothing(twilio_phone):
    awa = twilio_phone("+221770000001")
    awa.say("Bonjour")
    balance = awa.say("1")
    first_sid = awa.last_sid
    assert awa.send("1", sid=first_sid) == [balance]          # Twilio's retry: same answer, no second step
    assert awa.say("1").startswith("Factures (choisissez):")
    # A late retry, after the conversation moved on, still gets its own answer and moves nothing.
    assert awa.send("1", sid=first_sid) == [balance]
    assert awa.say("0").startswith("Compte 1000001\n")


# ---------------------------------------------------------------- trust
def test_a_forged_or_missing_signature_is_refused_audited_and_runs_nothing(twilio_phone, wa_app):
    mallory = twilio_phone("+221770000001")
    form = mallory.form("Bonjour")
    assert mallory.post(form, signature="bm90IGEgc2lnbmF0dXJl") == [] and mallory.last_status == 403
    assert mallory.last_twiml == EMPTY
    assert mallory.post(form, signature="") == [] and mallory.last_status == 403
    # Signed for another number than the one posted: the signature covers every parameter.
    signed = twilio_signature("test-twilio-auth-token", f"{TWILIO_PUBLIC_URL}/whatsapp/twilio", form)
    assert mallory.post({**form, "From": "whatsapp:+221770000002"}, signature=signed) == []
    # Signed over the URL the server sees instead of the public one Twilio calls.
    local = twilio_signature("test-twilio-auth-token", "http://localhost/whatsapp/twilio", form)
    assert mallory.post(form, signature=local) == [] and mallory.last_status == 403
    events = wa_app.extensions["parts"]["security"].for_subject("127.0.0.1")
    assert [e.kind for e in events].count("gateway_refused") == 4
    assert all(e.detail == "twilio webhook: bad or missing signature" for e in events)
    # Nothing ran: the first genuine message opens the main menu.
    assert mallory.say("Bonjour") == MAIN_FR


def test_without_an_auth_token_the_endpoint_is_closed(settings):
    app = create_app(replace(settings, twilio_auth_token=""))
    phone = TwilioWhatsAppPhone(app.test_client(), "+221770000001", token="")
    assert phone.post(phone.form("Bonjour"), signature="") == [] and phone.last_status == 503


# ---------------------------------------------------------------- hostile
def post_signed(client, form: dict[str, str]):
    url = f"{TWILIO_PUBLIC_URL}/whatsapp/twilio"
    return client.post("/whatsapp/twilio", data=form,
                       headers={"X-Twilio-Signature": twilio_signature("test-twilio-auth-token", url, form)})


@pytest.mark.parametrize(("change", "status", "notice"), [
    ({"Body": "x" * 5000}, 200, True),                        # longer than WhatsApp allows
    ({"Body": None}, 200, True),                               # no Body at all
    ({"WaId": "221770000002"}, 200, True),                     # WaId of another number than From
    ({"MessageSid": "SM' OR 1=1 --"}, 200, True),
    ({"From": "+221770000001"}, 400, False),                  # not a whatsapp: address: nobody to answer
    ({"From": None}, 400, False),
    ({"From": "whatsapp:<script>"}, 400, False),
])
def test_a_malformed_message_gets_twiml_never_a_500(wa_app, change, status, notice):
    phone = TwilioWhatsAppPhone(wa_app.test_client(), "+221770000001")
    form = {k: v for k, v in {**phone.form("Bonjour"), **change}.items() if v is not None}
    response = post_signed(wa_app.test_client(), form)
    assert response.status_code == status and response.mimetype == "application/xml"
    messages = twiml_messages(response.get_data(as_text=True))
    notice_text = ("Désolé, nous n'avons pas pu lire votre message. Écrivez MENU pour recommencer. / "
                   "Sorry, we could not read your message. Write MENU to start again.")
    assert messages == ([notice_text] if notice else [])


def test_a_message_as_long_as_whatsapp_allows_is_answered_whatever_its_script(twilio_phone):
    # WhatsApp carries up to 4 096 characters; in Arabic script (or emoji) Twilio's form is then well over
    # 16 KiB. The customer is told what is wrong, not left without an answer (a 413 answers nothing).
    p = twilio_phone("+221770000001")
    p.say("MENU")
    p.say("4")
    p.say("2")
    assert p.say("4").startswith("Décrivez le problème en quelques mots (160 caractères max)")
    assert p.say("ب" * 4096).startswith("Description trop longue: 160 caractères au plus.")
    assert p.last_status == 200


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/x-www-form-urlencoded", b"Body=" + b"A" * 70000),      # over the webhook's body limit
    ("application/json", b"{\"From\": [1, 2], \"Body\": {\"$gt\": \"\"}}"),
    ("application/octet-stream", bytes(range(256)) * 4),
])
def test_a_hostile_body_gets_an_empty_twiml_answer(wa_app, content_type, body):
    response = wa_app.test_client().post("/whatsapp/twilio", data=body, content_type=content_type,
                                         headers={"X-Twilio-Signature": "x"})
    assert response.status_code in (403, 413) and response.mimetype == "application/xml"
    assert response.get_data(as_text=True) == EMPTY
    assert wa_app.test_client().get("/whatsapp/twilio").status_code == 405


def test_a_reply_longer_than_twilios_cap_goes_as_several_messages_cut_between_lines():
    lines = [f"{n}. Facture numéro {n} " + "x" * 60 for n in range(1, 60)]
    bodies = split_body("\n".join(lines))
    assert len(bodies) > 1 and all(len(b) <= 1600 for b in bodies)
    assert "\n".join(bodies) == "\n".join(lines)
    assert split_body("court") == ["court"]
    long_line = " ".join(["mot"] * 1000)
    assert all(len(b) <= 1600 for b in split_body(long_line))
    assert " ".join(split_body(long_line)) == long_line


def test_home_on_a_balance_opened_by_keyword_shows_the_main_menu(twilio_phone):
    awa = twilio_phone("+221770000001")
    # SOLDE opens the balance with the navigation line, and Home (typed or as its word) leads to the menu.
    assert awa.say("SOLDE") == f"Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures\n{NAV_FR}"
    assert awa.say("00") == MAIN_FR
    assert awa.say("SOLDE").startswith("Compte 1000001\n")
    assert awa.say("accueil") == MAIN_FR
    sahel = twilio_phone("+221770000002")
    # A business customer naming the account lands on its balance, then Home: that account's menu.
    assert sahel.say("BALANCE 2000003").endswith(f"\n1. Latest bills\n{NAV_EN}")
    assert sahel.say("home").startswith("ElecNet - 2000003\n1. Balance and bills\n")


def test_an_unknown_number_writing_email_and_an_address_is_offered_to_link_in_french(twilio_phone, wa_app):
    deps = wa_app.extensions["parts"]["deps"]
    stranger = twilio_phone("+221770019201")
    assert stranger.say("EMAIL inconnu@exemple.sn") == (
        "Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte. Voulez-vous lier votre compte ?\n1. Oui\n2. Non")
    assert not [row for row in deps.outbox.pending() if row["kind"] == "email_code"]
    assert deps.contacts.contact("+221770019201").email_pending is None
