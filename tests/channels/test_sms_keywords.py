"""SMS keyword commands, French and English, against a fake Africa's Talking SMS API on loopback
that records what the official SDK sent: the replies, their parts, a retried message id answered
once, STOP, an unknown keyword. The real back office serves the accounts."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from app.factory import create_app
from engine.charset import sms_segments
from tests.support.fake_africastalking import FakeAfricasTalking

from .sms_phone import SmsPhone

PIN = "2468"
HELP_FR = ("Commandes ElecNet par SMS:\nSOLDE (ou SOLDE compte)\nCONSO\nPAYER montant\nPANNE\nSUIVI référence\n"
           "ALERTES ON/OFF\nEMAIL adresse\nCANAL SMS/WHATSAPP/EMAIL\nSTOP: plus aucune alerte\nAIDE")
HELP_EN = ("ElecNet SMS commands:\nBALANCE (or BALANCE account)\nUSAGE\nPAY amount\nOUTAGE\nTRACK reference\n"
           "ALERTS ON/OFF\nEMAIL address\nCHANNEL SMS/WHATSAPP/EMAIL\nSTOP: no more alerts\nHELP")
CHOOSE_EN = "Choose an account:\n1. 2000001 DKR-PLATEAU\n2. 2000002 THIES-NORD\n3. 2000003 DKR-PLATEAU"

@pytest.fixture
def deps(sms_app: Flask) -> Any:
    return sms_app.extensions["parts"]["deps"]


@pytest.fixture(autouse=True)
def _every_reply_fits_three_parts(fake_at: FakeAfricasTalking) -> Iterator[None]:
    yield
    for message in fake_at.sent:
        assert sms_segments(message.message) <= 3, message.message
        assert message.username == "sandbox" and message.api_key == fake_at.api_key


# ---------------------------------------------------------------- French
def test_solde_answers_the_balance_by_sms_and_the_http_answer_is_not_the_reply(texter, sms_app):
    awa = texter("+221770000001")
    client = sms_app.test_client()
    assert awa.say("SOLDE") == "Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures"
    assert awa.last_status == 200
    response = client.post("/sms/africastalking", data={"from": "+221770000001", "to": "21212", "text": "CONSO",
                                                        "id": "ATXid_http_answer", "date": "2026-11-26 10:00:00"})
    assert response.get_data(as_text=True) == "OK"


def test_a_reply_continues_the_conversation_and_a_long_list_stays_within_three_parts(texter):
    awa = texter("+221770000001")
    awa.say("solde")
    bills = awa.say("1")
    assert bills.startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")
    assert "12. décembre 2025 6 200 FCFA payée" in bills
    assert 2 <= sms_segments(bills) <= 3


def test_payer_asks_oui_and_the_pin_then_starts_the_payment_and_the_pin_is_kept_nowhere(
        texter, deps, redis_url, caplog):
    deps.pins.set_pin("+221770000001", PIN)
    awa = texter("+221770000001")
    caplog.set_level(logging.DEBUG)
    assert awa.say("PAYER 5000") == ("Payer 5 000 FCFA avec (répondez par le numéro):\n1. Orange Money\n2. Wave\n"
                                     "3. Free Money\n4. Annuler")
    assert awa.say("1") == (
        "Payer 5 000 FCFA au compte 1000001 avec Orange Money ? Pour confirmer, répondez OUI et votre "
        "code PIN (ex: OUI 1234) sous 5 minutes.")
    assert awa.say("NON") == (
        "Répondez OUI suivi de votre code PIN (ex: OUI 1234), ou ignorez ce message pour annuler.\n"
        "Payer 5 000 FCFA au compte 1000001 avec Orange Money ? Pour confirmer, répondez OUI et votre "
        "code PIN (ex: OUI 1234) sous 5 minutes.")
    started = awa.say(f"oui {PIN}")
    assert re.fullmatch(r"Validez le paiement de 5 000 FCFA sur votre téléphone \(invite mobile money\)\. "
                        r"Vous recevrez une confirmation par SMS\. Réf\. PAY-[0-9A-F]{16}", started), started
    stored = redis.Redis.from_url(redis_url)
    for key in stored.keys("*"):
        assert PIN.encode() not in (stored.get(key) or b""), key
    assert all(PIN not in str(row) for row in deps.outbox.pending())
    assert PIN not in caplog.text


def test_payer_cancelled_at_the_wallet_question_pays_nothing_and_says_so(texter, deps):
    deps.pins.set_pin("+221770000001", PIN)
    awa = texter("+221770000001")
    assert awa.say("PAYER 5000").endswith("\n3. Free Money\n4. Annuler")
    assert awa.say("4") == "Paiement annulé. Rien n'a été payé. Pour payer, envoyez PAYER suivi du montant."
    # The conversation is over: a late OUI and the PIN start nothing.
    assert not awa.say(f"OUI {PIN}").startswith("Validez le paiement")
    assert deps.ledger.recent("+221770000001") == []
    assert awa.say("SOLDE").startswith("Compte 1000001\nA payer: 12 500 FCFA\n")


def test_solde_says_a_payment_by_payer_is_being_confirmed(texter, deps):
    deps.pins.set_pin("+221770000001", PIN)
    awa = texter("+221770000001")
    awa.say("PAYER 5000")
    awa.say("1")
    assert awa.say(f"OUI {PIN}").startswith("Validez le paiement de 5 000 FCFA")
    # Not approved on the handset yet: the back office still counts the 5 000 as owed.
    assert texter("+221770000001").say("SOLDE") == (
        "Compte 1000001\nReste à payer: 7 500 FCFA\nPaiement de 5 000 FCFA en cours de confirmation\n"
        "Factures impayées: 2\n1. Dernières factures")


def test_a_payment_whose_provider_id_was_never_recorded_is_on_its_way_by_sms_too(texter, deps):
    # Started at the provider, its id never written (a database hiccup): our row stays "created".
    deps.ledger.create(idempotency_key="pay-unrecorded", msisdn="+221770000001", account_number="1000001",
                       purpose="bill", amount=Decimal(12500), wallet="orange_money")
    awa = texter("+221770000001")
    assert awa.say("SOLDE").startswith(
        "Compte 1000001\nReste à payer: 0 FCFA\nPaiement de 12 500 FCFA en cours de confirmation\n")
    assert texter("+221770000001").say("PAYER 12500") == (
        "Compte 1000001: votre paiement de 12 500 FCFA est en cours de confirmation. Rien d'autre à payer pour "
        "l'instant.\n3. Derniers paiements")


def test_payer_the_same_amount_while_a_prepaid_purchase_is_confirmed_asks_before_buying_again(texter, deps):
    deps.pins.set_pin("+221770000003", PIN)
    moussa = texter("+221770000003")
    moussa.say("PAYER 2000")
    moussa.say("2")                                     # Wave
    first = moussa.say(f"OUI {PIN}")
    assert first.startswith("Validez l'achat de 2 000 FCFA")
    again = texter("+221770000003")
    assert again.say("PAYER 2000") == ("Vous avez déjà un achat de 2 000 FCFA en cours de confirmation. Acheter "
                                       "encore ? Répondez:\n1. Oui\n2. Non")
    assert again.say("2") == "Rien de plus n'est acheté. Le code de l'achat en cours arrivera par message."
    assert [p.status for p in deps.ledger.recent("+221770000003")] == ["pending"]
    # Yes: a second purchase, its own payment (with the same wallet too: this is another conversation).
    assert texter("+221770000003").say("PAYER 2000").startswith("Vous avez déjà un achat de 2 000 FCFA")
    assert texter("+221770000003").say("1").startswith("Payer 2 000 FCFA avec (répondez par le numéro):\n")
    moussa.say("2")                                     # Wave again
    second = moussa.say(f"OUI {PIN}")
    assert second.startswith("Validez l'achat de 2 000 FCFA") and second != first
    assert [p.status for p in deps.ledger.recent("+221770000003")] == ["pending", "pending"]


def test_the_five_minutes_to_answer_oui_are_what_the_conversation_is_kept(texter, redis_url):
    awa = texter("+221770000001")
    awa.say("PAYER 5000")
    assert awa.say("1").endswith("répondez OUI et votre code PIN (ex: OUI 1234) sous 5 minutes.")
    stored = redis.Redis.from_url(redis_url)
    [conversation] = stored.keys("conv:s:*")
    # Redis drops it when the TTL runs out; an OUI after that starts anew (SMS_SESSION_IDLE_SECONDS).
    assert 290 < stored.ttl(conversation) <= 300
    stored.close()


def test_a_wrong_pin_by_sms_counts_like_on_ussd(texter, deps):
    deps.pins.set_pin("+221770000001", PIN)
    awa = texter("+221770000001")
    awa.say("PAYER 2000")
    awa.say("2")                      # Wave
    assert awa.say("OUI 1357") == ("Code PIN incorrect. Essais restants: 2. Répondez OUI suivi de votre code PIN.")


def test_menu_by_sms_leads_to_the_main_menu_in_the_sms_format(texter):
    awa = texter("+221770000001")
    assert awa.say("CONSO").startswith("Relevé ")
    assert awa.say("Menu") == ("ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n"
                               "4. Panne/réclamation\n5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n"
                               "8. Préférences")


def test_menu_by_sms_while_linking_leads_back_to_the_link_offer_not_an_empty_main_menu(texter):
    offer = "Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte. Voulez-vous lier votre compte ?\n1. Oui\n2. Non"
    stranger = texter("+221770009999")
    assert stranger.say("SOLDE") == offer
    assert stranger.say("1") == "Entrez votre numéro de compte (7 chiffres):"
    assert stranger.say("Menu") == offer
    assert stranger.say("1") == "Entrez votre numéro de compte (7 chiffres):"
    assert stranger.say("1000001").startswith("Pour vérifier, entrez le montant")
    assert stranger.say("00") == offer
    assert stranger.say("Retour") == offer


def test_a_retried_message_id_is_answered_once(texter, fake_at):
    awa = texter("+221770000001")
    assert len(awa.send("SOLDE")) == 1
    assert awa.send("SOLDE", message_id=awa.last_id) == []
    assert awa.last_status == 200
    assert len(fake_at.messages_to("+221770000001")) == 1


def test_a_message_posted_again_after_the_customer_wrote_since_is_not_run_again(texter, fake_at):
    # The engine's replay record knows only the last message: the provider's late repost of an earlier one
    # must not ask for a second balance, or start a second payment, in the middle of what the customer does now.
    awa = texter("+221770000001")
    assert awa.say("SOLDE").startswith("Compte 1000001\n")
    first = awa.last_id
    assert awa.say("PAYER 5000").startswith("Payer 5 000 FCFA")
    assert awa.send("SOLDE", message_id=first) == [] and awa.last_status == 200
    assert awa.send("PAYER 5000", message_id=awa.last_id) == [] and awa.last_status == 200
    assert len(fake_at.messages_to("+221770000001")) == 2


def test_alertes_on_then_stop_unsubscribes_from_everything_at_once(texter, deps):
    awa = texter("+221770000001")
    assert awa.say("ALERTES ON").startswith("Alertes activées par SMS pour le compte 1000001")
    deps.subscriptions.subscribe("+221770000001", "power_back", "DKR-MEDINA", channel="sms")
    assert len(deps.subscriptions.for_user("+221770000001")) == 4
    assert awa.say("STOP") == ("Vous ne recevrez plus aucune alerte ElecNet. "
                               "Envoyez ALERTES ON pour les reprendre.")
    assert deps.subscriptions.for_user("+221770000001") == []
    # Recorded for GDPR, and honoured by the outbox at once.
    assert deps.consent.is_stopped("+221770000001")
    assert [c.source for c in deps.consent.history("+221770000001")][-1] == "keyword STOP"


def test_an_unknown_keyword_gets_the_help_in_french_and_a_message_after_it_starts_anew(texter):
    awa = texter("+221770000001")
    assert awa.say("Bonjour") == HELP_FR
    assert awa.say("AIDE") == HELP_FR
    assert awa.say("Sôlde").startswith("Compte 1000001\nA payer: 12 500 FCFA")


def test_a_command_without_its_argument_or_with_a_wrong_one_gets_one_line_on_how_to_write_it(texter, deps):
    awa = texter("+221770000001")
    assert awa.say("PAYER") == "Envoyez PAYER suivi du montant, ex: PAYER 5000."
    assert awa.say("payer cinq mille") == "Envoyez PAYER suivi du montant, ex: PAYER 5000."
    assert deps.ledger.recent("+221770000001") == []
    assert awa.say("SUIVI xyz") == ("Envoyez SUIVI suivi de la référence de votre demande, ex: SUIVI INC-7K3Q, "
                                    "ou SUIVI seul pour la liste.")
    assert awa.say("SUIVI") == "Suivi de demande:\n1. Mes demandes\n2. Saisir une référence"  # alone: the list
    assert awa.say("CANAL fax") == "Envoyez CANAL suivi de SMS, WHATSAPP ou EMAIL, ex: CANAL WHATSAPP."
    assert awa.say("CANAL") == "Envoyez CANAL suivi de SMS, WHATSAPP ou EMAIL, ex: CANAL WHATSAPP."
    assert awa.say("ALERTES x") == "Envoyez ALERTES ON pour recevoir les alertes, ou ALERTES OFF pour les couper."
    assert deps.subscriptions.for_user("+221770000001") == []
    assert awa.say("EMAIL awa@") == ("Envoyez EMAIL suivi de votre adresse (ex: EMAIL awa.diop@exemple.sn), "
                                     "ou du code envoyé par e-mail (ex: EMAIL 123456).")
    assert awa.say("SOLDE 12") == ("Envoyez SOLDE pour votre compte, ou SOLDE suivi du numéro de compte à 7 "
                                   "chiffres, ex: SOLDE 1000001.")
    assert awa.say("ANNULER") == "Envoyez ANNULER suivi du code à 6 chiffres de notre message, ex: ANNULER 123456."
    # Written right, the command runs: the amount as customers write it, with its currency.
    assert awa.say("PAYER 5 000 FCFA").startswith("Payer 5 000 FCFA avec (répondez par le numéro):")


def test_a_stray_word_in_a_conversation_gets_the_help_and_a_wrong_number_the_invalid_choice(texter):
    awa = texter("+221770000001")
    balance = awa.say("SOLDE")
    assert balance == "Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures"
    assert awa.say("7") == "Choix invalide.\n" + balance       # a number the menu does not offer
    assert awa.say("merci") == HELP_FR                          # a word that is neither an answer nor a command
    assert awa.say("1") == HELP_FR                              # the help closed that conversation
    assert awa.say("SOLDE") == balance
    assert awa.say("retour") == balance     # a navigation word navigates (SOLDE opened the balance: it stays)


def test_a_stray_word_while_an_answer_is_typed_gets_that_screens_own_hint(texter, deps):
    deps.pins.set_pin("+221770000001", PIN)
    awa = texter("+221770000001")
    awa.say("PAYER 5000")
    awa.say("1")
    assert awa.say("bonjour").startswith("Répondez OUI suivi de votre code PIN (ex: OUI 1234)")


# ---------------------------------------------------------------- English
def test_balance_with_an_account_answers_that_account_in_english(texter):
    sahel = texter("+221770000002")
    assert sahel.say("BALANCE 2000002").startswith("Account 2000002\nBalance due: ")
    other = texter("+221770000001")
    assert other.say("SOLDE 2000002") == ("Le compte 2000002 n'est pas lié à votre numéro. "
                                          "Envoyez SOLDE pour votre compte.")


def test_an_outage_reported_by_sms_says_how_to_track_it_by_sms_and_suivi_does(texter):
    """The confirmation named a USSD menu only ("menu 5"), which means nothing in an SMS conversation."""
    awa = texter("+221770000001")
    assert awa.say("PANNE").startswith("Signaler une panne de courant\nCompte 1000001")
    reported = awa.say("1")
    found = re.fullmatch(r"Panne signalée\. Référence: (INC-[2-9A-Z]{4})\n"
                         r"Pour la suivre: menu 5, ou envoyez SUIVI \1 par SMS\.(\n.*)?", reported, re.DOTALL)
    assert found, reported
    tracked = awa.say(f"SUIVI {found.group(1)}")
    assert found.group(1) in tracked


def test_suivi_takes_a_payment_plans_reference_too(texter, backoffice_url):
    made = requests.post(f"{backoffice_url}/api/v1/accounts/1000001/arrangements", json={"kind": "deferral", "months": 1},
                         headers={"Idempotency-Key": "sms-track-plan"}, timeout=5)
    made.raise_for_status()
    plan = made.json()["arrangement_id"]
    awa = texter("+221770000001")
    assert awa.say(f"SUIVI {plan}").startswith(f"{plan}\nReport de paiement: ")
    assert awa.say(f"suivi {plan.lower()}").startswith(f"{plan}\n")


def test_balance_without_an_account_asks_which_one_then_answers_its_balance(texter):
    sahel = texter("+221770000002")
    assert sahel.say("BALANCE") == CHOOSE_EN
    assert sahel.say("2").startswith("Account 2000002\nBalance due: ")


def test_pay_in_english_can_be_cancelled_at_the_wallet_question(texter, deps):
    sahel = texter("+221770000002")
    assert sahel.say("PAY 5000") == CHOOSE_EN
    assert sahel.say("2") == ("Pay 5,000 FCFA with (reply with the number):\n1. Orange Money\n2. Wave\n"
                              "3. Free Money\n4. Cancel")
    assert sahel.say("4") == "Payment cancelled. Nothing was paid. To pay, send PAY and the amount."
    assert deps.ledger.recent("+221770000002") == []


def test_usage_asks_which_account_first_then_answers_it(texter):
    sahel = texter("+221770000002")
    assert sahel.say("usage") == CHOOSE_EN
    assert sahel.say("2").startswith("Reading ")


def test_an_unknown_keyword_gets_the_help_in_english_and_help_works_mid_conversation(texter):
    sahel = texter("+221770000002")
    assert sahel.say("Hello") == HELP_EN
    assert sahel.say("PAY 100") == CHOOSE_EN
    assert sahel.say("help") == HELP_EN        # a command while a screen waits: a new conversation
    assert sahel.say("ALRETS OFF") == CHOOSE_EN  # one typo from five letters up is forgiven


def test_a_command_without_its_argument_gets_one_line_on_how_to_write_it_in_english(texter):
    sahel = texter("+221770000002")
    assert sahel.say("PAY") == "Text PAY and the amount, e.g. PAY 5000."
    assert sahel.say("BALANCE") == CHOOSE_EN
    assert sahel.say("ALERTS maybe") == "Text ALERTS ON to get the alerts, or ALERTS OFF to stop them."  # mid-way too
    assert sahel.say("CHANNEL fax") == "Text CHANNEL and SMS, WHATSAPP or EMAIL, e.g. CHANNEL WHATSAPP."
    assert sahel.say("TRACK 42") == ("Text TRACK and the reference of your request, e.g. TRACK INC-7K3Q, "
                                     "or TRACK alone for the list.")
    assert sahel.say("UNDO") == "Text UNDO and the 6-digit code from our message, e.g. UNDO 123456."


def test_a_stray_word_gets_the_help_in_the_customers_language(texter):
    sahel = texter("+221770000002")
    assert sahel.say("BALANCE") == CHOOSE_EN
    assert sahel.say("merci") == HELP_EN        # a French word from an English-speaking customer: English help
    assert sahel.say("BALANCE") == CHOOSE_EN
    assert sahel.say("9") == "Invalid choice.\n" + CHOOSE_EN


def test_a_number_sent_to_a_screen_that_offers_none_gets_the_help_not_an_invalid_choice(texter):
    sahel = texter("+221770000002")
    sahel.say("TRACK")
    sahel.say("1")
    assert sahel.say("1") == "No requests on this account."    # nothing to choose, and SMS lists no Back
    assert sahel.say("1") == HELP_EN
    track = sahel.say("TRACK")                                 # the account chosen is kept
    assert track == "Track a request:\n1. My requests\n2. Enter a reference"
    assert sahel.say("9") == "Invalid choice.\n" + track       # where choices are listed, a wrong one is invalid


def test_alerts_off_in_english(texter, deps):
    moussa = texter("+221770000003")
    moussa.say("ALERTES ON")
    assert deps.subscriptions.for_user("+221770000003")
    sahel = texter("+221770000002")
    sahel.say("ALERTS OFF")
    assert sahel.say("1") == ("Alerts off for account 2000001. Send ALERTS ON to get them again.")


# ---------------------------------------------------------------- the edge
def test_a_caller_without_the_gateway_token_is_refused_and_nothing_is_sent(sms_settings, fake_at):
    app = create_app(replace(sms_settings, ussd_gateway_token="s3cret-token"))
    client = app.test_client()
    intruder = SmsPhone(client, fake_at, "+221770000001")
    assert intruder.send("SOLDE") == [] and intruder.last_status == 403
    allowed = SmsPhone(client, fake_at, "+221770000001", token="s3cret-token")
    assert len(allowed.send("SOLDE")) == 1


@pytest.mark.parametrize("form", [
    {"from": "+221770000001", "text": "SOLDE"},                                   # no id
    {"from": "not a number", "text": "SOLDE", "id": "ATXid_1"},
    {"from": "+221770000001", "id": "ATXid_2"},                                   # no text
])
def test_a_malformed_message_gets_a_plain_400_and_no_reply(sms_app, fake_at, form):
    response = sms_app.test_client().post("/sms/africastalking", data=form)
    assert response.status_code == 400 and response.mimetype == "text/plain"
    assert fake_at.sent == []


def test_a_reply_longer_than_three_parts_is_cut_between_words_gsm7_and_ucs2():
    from channels.sms import fit_segments

    gsm = " ".join(["Facture"] * 100)
    cut = fit_segments(gsm)
    assert sms_segments(cut) == 3 and cut.endswith("Facture...") and gsm.startswith(cut[:-3])
    ucs2 = " ".join(["Sénégal’s"] * 40)           # the typographic apostrophe is outside GSM-7
    cut = fit_segments(ucs2)
    assert sms_segments(cut) <= 3 and len(cut) <= 3 * 67 and cut.endswith("...")
    assert fit_segments("SOLDE: 12 500 FCFA") == "SOLDE: 12 500 FCFA"


# ---------------------------------------------------------------- where messages go
def test_email_by_sms_audits_the_code_sent_once_even_when_the_provider_posts_the_message_again(texter, sms_app):
    awa = texter("+221770000001")
    assert awa.say("EMAIL awa@exemple.sn").startswith("Un code a été envoyé à a***@exemple.sn.")
    assert awa.send("EMAIL awa@exemple.sn", message_id=awa.last_id) == []
    audit = sms_app.extensions["parts"]["security"]
    assert [(e.kind, e.channel, e.detail) for e in audit.for_subject("+221770000001")] == [
        ("code_sent", "sms", "e-mail code sent")]


def test_an_email_code_given_up_by_sms_offers_a_new_one_by_replying_1(texter, deps):
    awa = texter("+221770000001")
    awa.say("EMAIL awa@exemple.sn")
    [first] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != first]
    awa.say(f"EMAIL {wrong[0]}")
    awa.say(f"EMAIL {wrong[1]}")
    assert awa.say(f"EMAIL {wrong[2]}") == ("Aucun code en cours (expiré ou trop d'erreurs). Pour en recevoir un "
                                            "nouveau, répondez:\n1. Nouveau code")
    assert awa.say("1") == ("Nouveau code envoyé à a***@exemple.sn, l'ancien ne marche plus. Renvoyez EMAIL suivi "
                            "du code (ex: EMAIL 123456) dans les 30 minutes.")
    [_, second] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    assert awa.say(f"EMAIL {second}").startswith("Adresse e-mail confirmée: a***@exemple.sn.")


def test_an_email_code_typed_by_sms_with_none_pending_in_english_says_how_to_get_one(texter):
    sahel = texter("+221770000002")
    sahel.say("BALANCE 2000002")
    assert sahel.say("EMAIL 123456") == ("No code pending (expired or too many wrong tries). To get a new one, "
                                         "reply:\n1. New code")
    assert sahel.say("1").startswith("To get your messages by e-mail, send EMAIL")


def test_email_by_sms_sends_a_code_to_the_address_and_the_code_confirms_it(texter, deps, sms_settings, fake_at):
    from app import worker
    from tests.support.fake_smtp import fake_smtp

    awa = texter("+221770000001")
    assert awa.say("EMAIL") == ("Pour recevoir vos messages par e-mail, envoyez EMAIL suivi de votre adresse, "
                                "ex: EMAIL awa.diop@exemple.sn")
    assert awa.say("EMAIL awa@exemple.sn") == ("Un code a été envoyé à a***@exemple.sn. Renvoyez EMAIL suivi du code "
                                               "(ex: EMAIL 123456) dans les 30 minutes. Pas de code ? Renvoyez EMAIL et "
                                               "l'adresse.")
    with fake_smtp() as mail:
        worker.run_once(replace(sms_settings, smtp_url=mail.url, quiet_hours=""))
        [letter] = mail.messages_to("awa@exemple.sn")
    code = re.search(r"est (\d{6})\.", letter)
    assert code, letter
    assert len(fake_at.messages_to("+221770000001")) == 2, "the code went by e-mail only"
    assert awa.say("EMAIL 000000" if code.group(1) != "000000" else "EMAIL 111111") == (
        "Code incorrect. Essais restants: 2. Renvoyez EMAIL suivi du code envoyé par e-mail.")
    assert awa.say(f"EMAIL {code.group(1)}") == ("Adresse e-mail confirmée: a***@exemple.sn. Vos messages arriveront "
                                                 "par e-mail. Envoyez CANAL SMS pour revenir au SMS.")
    assert deps.contacts.contact("+221770000001").email == "awa@exemple.sn"
    assert [(c.action, c.topic, c.channel, c.source) for c in deps.consent.history("+221770000001")] == [
        ("email", "confirmed", "sms", "keyword EMAIL"), ("channel", "email", "sms", "keyword EMAIL")]
    assert awa.say("EMAIL") == ("Votre adresse e-mail: a***@exemple.sn. Vos messages arrivent par e-mail. "
                                "Pour la changer: EMAIL nouvelle@adresse.sn")
    assert awa.say("CANAL SMS") == "C'est noté: vos messages arriveront par SMS (par SMS s'il le faut)."


def _mailed_codes(sms_settings, address: str) -> list[str]:
    """The worker delivers the outbox; the codes the mailbox ``address`` received, oldest first."""
    from app import worker
    from tests.support.fake_smtp import fake_smtp

    with fake_smtp() as mail:
        worker.run_once(replace(sms_settings, smtp_url=mail.url, quiet_hours=""))
        letters = mail.messages_to(address)
    return [found.group(1) for found in (re.search(r"(?:est|is) (\d{6})\.", letter) for letter in letters) if found]


def test_email_again_by_sms_sends_a_new_code_the_old_one_void_and_wrong_codes_count_down(texter, deps, sms_settings):
    awa = texter("+221770000001")
    awa.say("EMAIL awa@exemple.sn")
    [old] = _mailed_codes(sms_settings, "awa@exemple.sn")
    # The e-mail never came (or was lost): the same command again sends a new one and says so.
    assert awa.say("EMAIL awa@exemple.sn") == (
        "Nouveau code envoyé à a***@exemple.sn, l'ancien ne marche plus. Renvoyez EMAIL suivi du code "
        "(ex: EMAIL 123456) dans les 30 minutes.")
    [new] = _mailed_codes(sms_settings, "awa@exemple.sn")
    # The old code no longer works (six random digits may, rarely, come twice: then another wrong one).
    stale = old if old != new else next(c for c in ("000000", "111111") if c != new)
    assert awa.say(f"EMAIL {stale}") == (
        "Code incorrect. Essais restants: 2. Renvoyez EMAIL suivi du code envoyé par e-mail.")
    wrong = next(c for c in ("222222", "333333") if c != new)
    assert awa.say(f"EMAIL {wrong}") == (
        "Code incorrect. Essais restants: 1. Renvoyez EMAIL suivi du code envoyé par e-mail.")
    assert awa.say(f"EMAIL {new}").startswith("Adresse e-mail confirmée: a***@exemple.sn.")
    assert deps.contacts.contact("+221770000001").email == "awa@exemple.sn"


def test_email_by_sms_past_the_days_codes_says_so_and_sends_nothing(texter, deps, sms_settings):
    awa = texter("+221770000001")
    for _ in range(3):                 # three codes a day to one address
        assert "a***@exemple.sn" in awa.say("EMAIL awa@exemple.sn")
    assert awa.say("EMAIL awa@exemple.sn") == "Trop de codes demandés aujourd'hui. Réessayez demain."
    assert len(_mailed_codes(sms_settings, "awa@exemple.sn")) == 3


def test_an_unknown_number_cannot_register_an_email_and_is_offered_to_link_in_french(texter, deps, sms_settings):
    offer = ("Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte. Voulez-vous lier votre compte ?\n"
             "1. Oui\n2. Non")
    stranger = texter("+221770009998")
    assert stranger.say("EMAIL inconnu@exemple.sn") == offer
    assert stranger.say("EMAIL 123456") == offer
    assert stranger.say("CANAL EMAIL") == offer
    assert stranger.say("1") == "Entrez votre numéro de compte (7 chiffres):"
    assert not [row for row in deps.outbox.pending() if row["kind"] == "email_code"]
    assert _mailed_codes(sms_settings, "inconnu@exemple.sn") == []
    assert deps.contacts.contact("+221770009998").email_pending is None
    # STOP is French and English alike: an unknown number hears the default language, French.
    assert texter("+221770009997").say("STOP") == ("Vous ne recevrez plus aucune alerte ElecNet. "
                                                   "Envoyez ALERTES ON pour les reprendre.")


def test_channel_by_sms_in_english_and_email_without_an_address(texter, deps):
    sahel = texter("+221770000002")
    assert sahel.say("CHANNEL whatsapp") == "Done: your messages will come by WhatsApp (by SMS when need be)."
    assert deps.contacts.contact("+221770000002").channel == "whatsapp"
    assert sahel.say("CHANNEL EMAIL") == ("To get your messages by e-mail, send EMAIL and your address, "
                                          "e.g. EMAIL awa.diop@example.com")
    assert deps.contacts.contact("+221770000002").channel == "whatsapp"
    assert [(c.action, c.topic, c.source) for c in deps.consent.history("+221770000002")] == [
        ("channel", "whatsapp", "keyword CANAL")]


def test_alertes_on_for_a_prepaid_meter_means_low_credit_not_bills(texter, deps):
    moussa = texter("+221770000003")
    assert moussa.say("ALERTES ON") == ("Alertes activées par SMS pour le compte 3000001: panne dans votre zone, crédit "
                                        "faible, paiement d'un autre numéro. Envoyez ALERTES OFF pour les couper.")
    topics = {s.topic for s in deps.subscriptions.for_user("+221770000003")}
    assert topics == {"outage_zone", "low_credit", "payment_received"}
    assert {c.source for c in deps.consent.history("+221770000003")} == {"keyword ALERTES"}


# ---------------------------------------------------------------- ANNULER <code>: the link notice's undo
def _link_by_sms(texter, deps, stranger: str) -> str:
    """A stranger links account 1000001 by SMS; the undo keyword the holder's notice gives."""
    other = texter(stranger)
    assert other.say("SOLDE").startswith("Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")
    other.say("1")
    other.say("1000001")
    other.say("5500")
    [code] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "link_code"]
    assert other.say(code).startswith("Compte 1000001 lié à votre numéro.")
    [notice] = [row for row in deps.outbox.pending() if row["kind"] == "link_notice"]
    assert notice["msisdn"] == "+221770000001"
    return str(notice["payload"]["undo_keyword"])


def test_the_holder_replies_the_undo_keyword_of_the_link_notice_and_the_link_is_gone(texter, deps):
    undo = _link_by_sms(texter, deps, "+221770016666")
    awa = texter("+221770000001")
    wrong = "ANNULER " + ("000000" if undo[-6:] != "000000" else "111111")
    assert awa.say(wrong) == ("Code non reconnu, ou ce lien est déjà retiré. Les numéros liés à votre compte: "
                              "*123# menu 8 > 5.")
    assert [link.account_number for link in deps.links.accounts_for("+221770016666")] == ["1000001"]
    assert awa.say(undo.lower()) == "Le numéro +2217*****666 n'est plus lié au compte 1000001."
    assert not deps.links.accounts_for("+221770016666")
    assert texter("+221770016666").say("SOLDE").startswith("Bienvenue chez ElecNet. Ce numéro n'est lié à aucun")
    assert awa.say(undo).startswith("Code non reconnu")        # once only


def test_only_the_holder_can_use_an_undo_code(texter, deps):
    undo = _link_by_sms(texter, deps, "+221770017777")
    # The linked number itself (or anyone else) cannot undo with the code: it is the holder's.
    assert texter("+221770017777").say(undo).startswith("Code non reconnu")
    assert [link.account_number for link in deps.links.accounts_for("+221770017777")] == ["1000001"]


def test_a_channel_word_spelt_with_a_lookalike_letter_gets_the_usage_line_never_an_error(texter, deps):
    # A dotless ı (Turkish keyboards), a dotted İ, a long ſ pass a case-blind match for "i" or "s": none is a
    # channel, and the customer is told how to write the command (it was "Service temporarily unavailable").
    sahel = texter("+221770000002")
    usage = "Text CHANNEL and SMS, WHATSAPP or EMAIL, e.g. CHANNEL WHATSAPP."
    for lookalike in ("EMAıL", "EMAİL", "WHATſAPP", "ſMS"):
        assert sahel.say(f"CHANNEL {lookalike}") == usage
    assert deps.contacts.contact("+221770000002").channel == "sms"
    # Digits of another script are the amount they write (a phone set to Arabic): PAY goes on as PAY 5000.
    assert sahel.say("PAY ٥٠٠٠").startswith("Choose an account:")
    assert "5,000 FCFA" in sahel.say("1")
