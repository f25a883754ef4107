"""WhatsApp through Meta's Cloud API, French and English: Meta's signed events posted like Meta does,
the replies read from a fake Graph API on loopback as the customer sees them (text, ``[key Label]``
reply buttons, ``- key Label`` list rows). Signatures use Meta's documented formula
(``whatsapp_phones.meta_signature``). The real back office serves the accounts."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis

from app.factory import create_app
from app.storage.delivery import SqlDeliveryQueue

from .whatsapp_phones import META_SECRET, META_VERIFY, MetaWhatsAppPhone, meta_signature

PIN = "2468"
MAIN_FR = ("ElecNet - 1000001\n(Choisir)\n- 1 Solde et factures\n- 2 Consommation\n- 3 Payer\n"
           "- 4 Panne/réclamation\n- 5 Suivi demande\n- 6 Délai de paiement\n- 7 Simulateur\n- 8 Préférences")
CHOOSE_EN = ("Choose an account:\n[1 2000001 DKR-PLATEAU] [2 2000002 THIES-NORD] [3 2000003 DKR-PLATEAU]")
TEXT_ONLY = ("Merci de répondre par écrit (un numéro du menu, ou MENU). / "
             "Please answer in writing (a number from the menu, or MENU).")


def test_a_french_customer_taps_through_balance_pays_with_a_pin_and_reports_an_outage(
        meta_phone, wa_app, graph, redis_url, caplog):
    deps = wa_app.extensions["parts"]["deps"]
    deps.pins.set_pin("+221770000001", PIN)
    caplog.set_level(logging.DEBUG)
    awa = meta_phone("+221770000001")
    assert awa.say("Bonjour") == MAIN_FR
    assert awa.last_status == 200
    assert awa.tap("1") == ("Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n"
                            "[1 Dernières factures] [0 Retour] [00 Accueil]")
    assert awa.tap("00") == MAIN_FR
    assert awa.tap("3") == ("Payer - compte 1000001\nÀ payer: 12 500 FCFA\n(Choisir)\n- 1 Payer tout le solde\n"
                            "- 2 Payer un autre montant\n- 3 Derniers paiements\n- 0 Retour\n- 00 Accueil")
    # Four choices with Cancel: a list rather than three reply buttons.
    assert awa.tap("1") == ("Payer 12 500 FCFA avec:\n(Choisir)\n- 1 Orange Money\n- 2 Wave\n- 3 Free Money\n"
                            "- 4 Annuler\n- 0 Retour\n- 00 Accueil")
    assert awa.tap("1") == ("Payer 12 500 FCFA sur le compte 1000001 avec Orange Money ?\n00. Accueil\n"
                            "[1 Confirmer] [2 Annuler] [0 Retour]")
    assert awa.tap("1") == "Entrez votre code PIN (4 chiffres):\n[0 Retour] [00 Accueil]"
    started = awa.say(PIN)
    assert re.fullmatch(r"Validez le paiement de 12 500 FCFA sur votre téléphone \(invite mobile money\)\. "
                        r"Vous recevrez une confirmation par SMS\. Réf\. PAY-[0-9A-F]{16}", started), started
    # Never echoed, kept nowhere: not in what was sent, Redis (sessions, answers), the outbox or the log.
    assert all(PIN not in json.dumps(m) for m in graph.sent)
    stored = redis.Redis.from_url(redis_url)
    for key in stored.keys("*"):
        assert PIN.encode() not in (stored.get(key) or b""), key
    assert all(PIN not in str(row) for row in deps.outbox.pending())
    assert PIN not in caplog.text

    assert awa.say("PANNE") == ("Signaler une panne de courant\nCompte 1000001, zone DKR-MEDINA\n00. Accueil\n"
                                "[1 Confirmer] [2 Annuler] [0 Retour]")
    reported = awa.tap("1")
    assert re.fullmatch(r"Panne signalée\. Référence: (INC-[2-9A-Z]{4})\n"
                        r"Pour la suivre: menu 5, ou envoyez SUIVI \1 par SMS\.\n\[0 Retour\] \[00 Accueil\]", reported)


def test_an_english_business_customer_chooses_an_account_and_reports_an_outage(meta_phone):
    sahel = meta_phone("+221770000002")
    assert sahel.say("Hello") == CHOOSE_EN
    assert sahel.tap("2").startswith("ElecNet - 2000002\n(Choose)\n- 1 Balance and bills\n")
    assert sahel.tap("1").startswith("Account 2000002\nBalance due: ")
    assert sahel.say("home").startswith("ElecNet - 2000002\n(Choose)\n")
    assert sahel.tap("4") == ("Outage or complaint:\n00. Home\n"
                              "[1 Report an outage] [2 Make a complaint] [0 Back]")
    known = sahel.tap("1")
    assert known.startswith("An outage is already known in your area (THIES-NORD). Power expected back: ")
    # A label longer than a row title (24): cut, and whole in the row's description.
    assert known.endswith("\n(Choose)\n- 1 Alert me when power is… (Alert me when power is back)\n"
                          "- 2 Fault at my home only\n- 0 Back\n- 00 Home")
    assert sahel.tap("1") == ("You will be told by WhatsApp when power is back in your area (THIES-NORD).\n"
                              "[0 Back] [00 Home]")


def test_typed_numbers_work_as_well_as_taps_and_a_stray_button_counts_as_its_title(meta_phone):
    awa = meta_phone("+221770000001")
    awa.say("Bonjour")
    assert awa.say("2").startswith("Relevé ")
    other = awa.post(awa.event(awa.message("button", {"payload": "PROMO-2026", "text": "Menu"})))
    assert other == [MAIN_FR]                      # an old template's button: its title, typed


# ---------------------------------------------------------------- subscription check
def test_the_subscription_check_answers_the_challenge_only_with_our_verify_token(wa_app):
    client = wa_app.test_client()
    ok = client.get("/whatsapp/meta", query_string={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY,
                                                    "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "1158201444"
    wrong = client.get("/whatsapp/meta", query_string={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                                       "hub.challenge": "1158201444"})
    assert wrong.status_code == 403 and wrong.is_json and "1158201444" not in wrong.get_data(as_text=True)
    hostile = client.get("/whatsapp/meta", query_string={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY,
                                                         "hub.challenge": "<script>alert(1)</script>"})
    assert hostile.status_code == 400 and hostile.is_json


# ---------------------------------------------------------------- replays and failed sends
def test_a_redelivered_message_is_answered_once_even_after_the_conversation_moved_on(meta_phone, graph):
    awa = meta_phone("+221770000001")
    awa.say("Bonjour")
    event = awa.event(awa.message("text", {"body": "1"}))
    assert len(awa.post(event)) == 1
    assert awa.post(event) == []                   # Meta's retry: acknowledged, nothing sent, no step
    assert awa.last_status == 200
    assert awa.say("1").startswith("Factures (choisissez):")
    assert awa.post(event) == []                   # a late one too
    assert awa.say("0").startswith("Compte 1000001\n")


def test_a_graph_api_failure_answers_503_and_meta_s_redelivery_sends_the_reply_without_a_second_step(
        meta_phone, graph):
    awa = meta_phone("+221770000001")
    awa.say("Bonjour")
    graph.next_errors[:] = [(500, 2), (503, 2)]    # the client's immediate retry fails too
    event = awa.event(awa.message("text", {"body": "1"}))
    assert awa.post(event) == [] and awa.last_status == 503
    redelivered = awa.post(event)                  # Meta delivers the event again later
    assert awa.last_status == 200
    assert redelivered == [("Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n"
                            "[1 Dernières factures] [0 Retour] [00 Accueil]")]
    assert awa.post(event) == []                   # and only once
    assert awa.tap("1").startswith("Factures (choisissez):")   # the hop ran once: one screen further only


def test_a_reply_meta_refuses_for_good_is_not_retried(meta_phone, graph):
    awa = meta_phone("+221770000001")
    graph.next_errors[:] = [(400, 131047)]         # more than 24 hours since the customer wrote
    event = awa.event(awa.message("text", {"body": "Bonjour"}))
    assert awa.post(event) == [] and awa.last_status == 200
    assert awa.post(event) == [] and awa.last_status == 200


def test_a_status_update_moves_an_outbox_message_to_delivered(meta_phone, wa_app):
    parts = wa_app.extensions["parts"]
    parts["deps"].outbox.add(kind="bill_issued", msisdn="+221770000001", language="fr",
                             payload={"amount": 5500}, dedupe_key="bill:test:1")
    queue = SqlDeliveryQueue(parts["db"])
    now = datetime.now(UTC)
    [claimed] = queue.claim(now, timedelta(seconds=60))
    queue.sent(claimed.id, channel="whatsapp", message_id="wamid.OUTBOX0001", now=now)
    awa = meta_phone("+221770000001")
    event = awa.event(awa.message("text", {"body": "x"}))
    value = event["entry"][0]["changes"][0]["value"]
    del value["messages"], value["contacts"]
    value["statuses"] = [{"id": "wamid.OUTBOX0001", "status": "delivered", "timestamp": "1764150000",
                          "recipient_id": "221770000001"}]
    assert awa.post(event) == [] and awa.last_status == 200
    assert queue.get(claimed.id)["delivery_status"] == "delivered"
    value["statuses"] = [{"id": "wamid.OUTBOX0001", "status": "failed", "recipient_id": "221770000001",
                          "errors": [{"code": 131026, "title": "Message undeliverable"}]}]
    awa.post(event)
    assert queue.get(claimed.id)["delivery_status"] == "failed"


def test_a_picture_gets_a_request_for_text_and_a_reaction_gets_nothing(meta_phone):
    awa = meta_phone("+221770000001")
    picture = awa.message("image", {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "abc"})
    assert awa.post(awa.event(picture)) == [TEXT_ONLY]
    assert awa.post(awa.event(picture)) == []      # once per message
    reaction = awa.message("reaction", {"message_id": "wamid.X", "emoji": "👍"})
    assert awa.post(awa.event(reaction)) == [] and awa.last_status == 200


# ---------------------------------------------------------------- trust
def test_a_forged_signature_is_refused_audited_and_sends_nothing(meta_phone, wa_app, graph):
    mallory = meta_phone("+221770000001")
    body = json.dumps(mallory.event(mallory.message("text", {"body": "Bonjour"}))).encode()
    assert mallory.post_raw(body, signature="sha256=" + "0" * 64) == 403
    assert mallory.post_raw(body, signature="") == 403
    assert mallory.post_raw(body, signature=meta_signature("another-secret", body)) == 403
    tampered = body.replace(b"Bonjour", b"SOLDE  ")
    assert mallory.post_raw(tampered, signature=meta_signature(META_SECRET, body)) == 403
    assert graph.sent == []
    events = wa_app.extensions["parts"]["security"].for_subject("127.0.0.1")
    assert [e.detail for e in events] == ["meta webhook: bad or missing signature"] * 4


@pytest.mark.parametrize("missing", ["meta_app_secret", "meta_access_token"])
def test_without_the_app_secret_or_the_access_token_the_webhook_is_closed(wa_settings, graph, missing):
    app = create_app(replace(wa_settings, **{missing: ""}))
    phone = MetaWhatsAppPhone(app.test_client(), graph, "+221770000001")
    assert phone.post(phone.event(phone.message("text", {"body": "Bonjour"}))) == []
    assert phone.last_status == 503


def test_without_a_verify_token_the_subscription_check_is_refused(wa_settings):
    app = create_app(replace(wa_settings, meta_verify_token=""))
    answer = app.test_client().get("/whatsapp/meta", query_string={"hub.mode": "subscribe",
                                                                    "hub.verify_token": "", "hub.challenge": "1"})
    assert answer.status_code == 403 and answer.is_json


# ---------------------------------------------------------------- hostile
@pytest.mark.parametrize("body", [
    b"not json at all",
    b"[1, 2, 3]",
    b'{"object": "page", "entry": []}',
    b'{"object": "whatsapp_business_account", "entry": {"$gt": ""}}',
    (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": '
     b'{"metadata": {"phone_number_id": ["x"]}, "messages": []}}]}]}'),
    "\u202e\x00\ud800".encode("utf-8", "surrogatepass"),
])
def test_a_signed_body_that_is_not_a_meta_event_gets_a_json_400(meta_phone, body, graph):
    phone = meta_phone("+221770000001")
    assert phone.post_raw(body) == 400
    assert graph.sent == []


@pytest.mark.parametrize("message", [
    {"id": "wamid.A1", "type": "text", "text": {"body": "Bonjour"}},                          # no sender
    {"from": "221770000001", "type": "text", "text": {"body": "Bonjour"}},                    # no id
    {"from": "not-a-number", "id": "wamid.A2", "type": "text", "text": {"body": "Bonjour"}},
    {"from": "221770000001", "id": "wamid.A3", "type": "text", "text": {"body": ["Bonjour"]}},
    {"from": "221770000001", "id": "wamid.A4", "type": "text", "text": {"body": "x" * 5000}},
    {"from": "221770000001", "id": "wamid.A5", "type": "interactive", "interactive": {"type": "button_reply"}},
    {"from": 221770000001, "id": 5, "type": None},
])
def test_a_malformed_message_in_a_signed_event_is_skipped_with_200_and_no_reply(meta_phone, message, graph):
    phone = meta_phone("+221770000001")
    assert phone.post(phone.event(message)) == [] and phone.last_status == 200
    assert graph.sent == []


def test_an_oversized_body_gets_a_json_413(meta_phone):
    phone = meta_phone("+221770000001")
    assert phone.post_raw(b'{"object": "' + b"x" * 20000 + b'"}') == 413


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_get_a_json_405(wa_app, method):
    response = wa_app.test_client().open("/whatsapp/meta", method=method, data=b"{}")
    assert response.status_code == 405 and response.is_json


def test_home_on_a_balance_opened_by_keyword_is_a_button_that_shows_the_main_menu(meta_phone):
    awa = meta_phone("+221770000001")
    assert awa.say("SOLDE") == ("Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n"
                                "[1 Dernières factures] [0 Retour] [00 Accueil]")
    assert awa.tap("00") == MAIN_FR
    assert awa.say("SOLDE").startswith("Compte 1000001\n")
    assert awa.say("home") == MAIN_FR


def test_a_link_code_that_never_came_is_sent_again_with_a_tap_and_the_new_one_links(meta_phone, wa_app):
    deps = wa_app.extensions["parts"]["deps"]
    stranger = meta_phone("+221770019101")
    assert stranger.say("Bonjour").startswith("Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")
    stranger.tap("1")
    stranger.say("1000001")
    assert stranger.say("5500") == (
        "Un code a été envoyé par SMS au numéro du titulaire du compte (+2217*****001). Entrez ce code (valable "
        "5 min):\n[1 Renvoyer le code] [0 Retour] [00 Accueil]")
    assert stranger.tap("1") == (
        "Nouveau code envoyé au titulaire du compte (+2217*****001), l'ancien ne marche plus. Entrez-le (valable "
        "5 min):\n[1 Renvoyer le code] [0 Retour] [00 Accueil]")
    first, second = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "link_code"]
    if first != second:
        assert stranger.say(first).startswith("Code incorrect. Essais restants: 2.")
    assert stranger.say(second).startswith("Compte 1000001 lié à votre numéro.")


def test_an_email_code_given_up_after_three_wrong_tries_offers_a_new_code_with_a_tap(meta_phone, wa_app):
    deps = wa_app.extensions["parts"]["deps"]
    awa = meta_phone("+221770000001")
    awa.say("Bonjour")
    awa.tap("8")
    awa.tap("6")
    awa.tap("4")
    assert awa.say("awa@exemple.sn").startswith("Un code a été envoyé à a***@exemple.sn.")
    [first] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != first]
    awa.say(wrong[0])
    awa.say(wrong[1])
    assert awa.say(wrong[2]) == ("Code expiré ou trop d'erreurs. Pour recevoir un nouveau code:\n"
                                 "[1 Nouveau code] [0 Retour] [00 Accueil]")
    assert awa.tap("1").startswith("Nouveau code envoyé à a***@exemple.sn, l'ancien ne marche plus.")
    [_, second] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    assert awa.say(second).startswith("Adresse e-mail confirmée: a***@exemple.sn.")
