"""The chatbot channel: the Rasa server's calls to our action server, French and English, against
the real back office, Redis and the engine's database. Conversations read like chats: what the
user typed (or tapped), what the bot answered and which buttons it offered."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import redis
from sanic import Sanic

from app.actions_server import build_action_app
from app.settings import Settings
from channels.rasa import sign_identity

from ..support.ports import closed_port
from .rasa_chat import RasaChat, action_call, post

TOKEN = "rasa-action-token-for-tests"
SECRET = "front-channel-identity-secret"
PIN = "2468"


@pytest.fixture
def rasa_settings(settings: Settings) -> Settings:
    return replace(settings, rasa_action_token=TOKEN, rasa_identity_secret=SECRET)


@pytest.fixture
def action_app(rasa_settings: Settings) -> Iterator[Sanic]:
    # A fresh app per test (rasa-sdk names every app "rasa_sdk"; Sanic keeps one per name).
    app = build_action_app(rasa_settings)
    yield app
    Sanic.unregister_app(app)


@pytest.fixture
def chat(action_app: Sanic) -> Callable[..., RasaChat]:
    def user(sender_id: str, msisdn: str | None, language: str | None = None) -> RasaChat:
        return RasaChat(action_app, TOKEN, sender_id, msisdn, SECRET, language)
    return user


# ---------------------------------------------------------------- French
def test_balance_in_french_answers_with_buttons_for_the_next_steps(chat):
    awa = chat("conv-awa-1", "+221770000001")
    assert awa.say("je veux mon solde", intent="check_balance") == (
        "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2")
    assert awa.buttons == [{"title": "Dernières factures", "payload": "1"}, {"title": "Retour", "payload": "0"},
                           {"title": "Accueil", "payload": "00"}]
    assert awa.press("Dernières factures").startswith("Factures (choisissez):")
    assert awa.titles()[0] == "novembre 2026 5 500 FCFA impayée"


def test_a_greeting_opens_the_main_menu_and_a_tap_follows_it(chat):
    awa = chat("conv-awa-2", "+221770000001")
    assert awa.say("bonjour", intent="greet") == "ElecNet - 1000001"
    assert awa.titles()[:4] == ["Solde et factures", "Consommation", "Payer", "Panne/réclamation"]
    assert awa.press("Solde et factures").startswith("Compte 1000001\nÀ payer: 12 500 FCFA")


def test_a_bill_payment_asks_the_pin_and_the_pin_is_echoed_nowhere(chat, action_app, redis_url, caplog):
    deps = action_app.ctx.parts["deps"]
    deps.pins.set_pin("+221770000001", PIN)
    caplog.set_level(logging.DEBUG)
    awa = chat("conv-awa-pay", "+221770000001")
    assert awa.say("je veux payer", intent="pay_bill") == "Payer - compte 1000001\nÀ payer: 12 500 FCFA"
    assert awa.titles() == ["Payer tout le solde", "Payer un autre montant", "Derniers paiements", "Retour", "Accueil"]
    assert awa.press("Payer tout le solde") == "Payer 12 500 FCFA avec:"
    assert awa.press("Orange Money") == "Payer 12 500 FCFA sur le compte 1000001 avec Orange Money ?"
    prompt = awa.press("Confirmer")
    assert "PIN" in prompt, prompt
    started = awa.say(PIN)
    assert re.search(r"PAY-[0-9A-F]{16}", started), started
    assert PIN not in str(awa.last)    # neither a response nor a slot event carries it
    stored = redis.Redis.from_url(redis_url)
    for key in stored.keys("*"):
        assert PIN.encode() not in (stored.get(key) or b""), key
    assert PIN not in caplog.text


def test_a_first_pin_code_that_never_came_is_sent_again_with_its_button(chat, action_app):
    deps = action_app.ctx.parts["deps"]
    moussa = chat("conv-moussa-code", "+221770000003")          # a prepaid meter, no PIN yet
    assert moussa.say("bonjour", intent="greet") == "ElecNet - 3000001"
    moussa.press("Préférences")
    assert moussa.press("Changer mon code PIN").startswith("Premier usage. Un code de 6 chiffres vous a été envoyé")
    assert moussa.titles() == ["Renvoyer le code", "Retour", "Accueil"]
    assert moussa.press("Renvoyer le code") == (
        "Nouveau code envoyé par SMS au +2217*****003, l'ancien ne marche plus. Entrez-le (valable 15 min):")
    first, second = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "pin_code"]
    if first != second:
        assert moussa.say(first).startswith("Code incorrect. Essais restants: 2.")
    assert moussa.say(second) == "Premier usage: choisissez un code PIN secret (4 chiffres):"


def test_an_outage_report_in_french_gives_a_reference(chat):
    moussa = chat("conv-moussa", "+221770000003")
    assert moussa.say("plus de courant chez moi", intent="report_outage") == (
        "Signaler une panne de courant\nCompte 3000001, zone DKR-PARCELLES")
    assert moussa.titles() == ["Confirmer", "Annuler", "Retour", "Accueil"]
    assert re.fullmatch(r"Panne signalée\. Référence: (INC-[2-9A-Z]{4})\n"
                        r"Pour la suivre: menu 5, ou envoyez SUIVI \1 par SMS\.", moussa.press("Confirmer"))


# ---------------------------------------------------------------- English
def test_an_english_customer_chooses_an_account_then_sees_its_balance(chat):
    sahel = chat("conv-sahel", "+221770000002", language="en")
    assert sahel.say("what do I owe", intent="check_balance") == "Choose an account:"
    assert sahel.titles()[:3] == ["2000001 DKR-PLATEAU", "2000002 THIES-NORD", "2000003 DKR-PLATEAU"]
    assert sahel.press("2000002 THIES-NORD").startswith("Account 2000002\nBalance due: ")
    assert sahel.titles()[0] == "Latest bills"


def test_an_english_outage_report_and_typed_navigation_words(chat):
    sahel = chat("conv-sahel-2", "+221770000002", language="en")
    sahel.say("hello", intent="greet")
    assert sahel.press("2000001 DKR-PLATEAU") == "ElecNet - 2000001"
    assert sahel.press("Outage/complaint").startswith("Outage")
    assert sahel.say("home") == "ElecNet - 2000001"


def test_an_english_email_code_given_up_offers_a_new_code_button_that_confirms(chat, action_app):
    deps = action_app.ctx.parts["deps"]
    sahel = chat("conv-sahel-email", "+221770000002", language="en")
    sahel.say("hello", intent="greet")
    sahel.press("2000001 DKR-PLATEAU")
    sahel.press("Preferences")
    sahel.press("Where messages go")
    sahel.press("Add an e-mail address")
    assert sahel.say("ops@entreprise.sn").startswith("A code was sent to o***@entreprise.sn.")
    [first] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    for guess in [c for c in ("000000", "111111", "222222", "333333") if c != first][:3]:
        said = sahel.say(guess)
    assert said == "Code expired or too many wrong tries. To get a new code:"
    assert sahel.titles() == ["New code", "Back", "Home"]
    assert sahel.press("New code").startswith("New code sent to o***@entreprise.sn; the old one no longer works.")
    [_, second] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    assert sahel.say(second).startswith("E-mail address confirmed: o***@entreprise.sn.")


def test_a_button_payload_sent_as_an_entity_is_the_choice(chat):
    awa = chat("conv-awa-entity", "+221770000001")
    awa.say("salut", intent="greet")
    assert awa.say("/choose", intent="choose",
                   entities=[{"entity": "elecnet_choice", "value": "1"}]).startswith("Compte 1000001")


def test_a_rasa_retry_of_the_same_message_gets_the_same_answer_without_a_second_hop(chat):
    awa = chat("conv-awa-retry", "+221770000001")
    awa.say("salut", intent="greet")
    first = awa.say("1", message_id="msg-retry-1")
    assert awa.say("1", message_id="msg-retry-1") == first
    # Run twice, the second "1" would have opened the latest bills.
    assert awa.press("Dernières factures").startswith("Factures (choisissez):")


# ---------------------------------------------------------------- who is who
UNVERIFIED_FR = ("Pour consulter votre compte ici, ouvrez la discussion depuis l'application après avoir vérifié "
                 "votre numéro de téléphone, ou composez le code USSD depuis ce numéro.")


def test_without_a_verified_number_the_bot_says_how_to_get_one_and_reads_no_account(chat):
    stranger = chat("conv-stranger", None)
    assert stranger.say("mon solde", intent="check_balance") == UNVERIFIED_FR
    assert stranger.buttons == []
    english = chat("conv-stranger-en", None, language="en")
    assert english.say("my balance", intent="check_balance").startswith("To use your account here")


def test_a_claim_signed_with_another_secret_or_expired_or_for_another_conversation_is_worthless(chat, action_app):
    forger = RasaChat(action_app, TOKEN, "conv-forger", "+221770000001", "not-the-secret")
    assert forger.say("solde", intent="check_balance") == UNVERIFIED_FR
    awa = chat("conv-awa-claim", "+221770000001")
    latest = awa.latest("solde", "check_balance")
    # Awa's claim copied into the attacker's conversation: signed for another sender_id.
    status, answer = post(action_app, "/webhook", action_call("conv-attacker", latest), token=TOKEN)
    assert status == 200 and answer["responses"][0]["text"] == UNVERIFIED_FR
    expired = dict(latest, metadata={"elecnet_identity": sign_identity(SECRET, "+221770000001", "conv-awa-claim",
                                                                       int(time.time()) - 1)})
    status, answer = post(action_app, "/webhook", action_call("conv-awa-claim", expired), token=TOKEN)
    assert answer["responses"][0]["text"] == UNVERIFIED_FR
    # A claim made to last for ever (a leaked one would) is refused too: a day at most.
    forever = dict(latest, metadata={"elecnet_identity": sign_identity(SECRET, "+221770000001", "conv-awa-claim",
                                                                       int(time.time()) + 2 * 86400)})
    status, answer = post(action_app, "/webhook", action_call("conv-awa-claim", forever), token=TOKEN)
    assert answer["responses"][0]["text"] == UNVERIFIED_FR
    # The genuine claim opens the account.
    status, answer = post(action_app, "/webhook", action_call("conv-awa-claim", latest), token=TOKEN)
    assert answer["responses"][0]["text"].startswith("Compte 1000001")


def test_a_conversation_id_reused_by_another_customer_does_not_reach_the_first_ones_session(chat):
    awa = chat("conv-shared", "+221770000001")
    awa.say("payer", intent="pay_bill")
    assert awa.press("Payer tout le solde") == "Payer 12 500 FCFA avec:"
    moussa = chat("conv-shared", "+221770000003")    # same sender_id, another verified number
    answer = moussa.say("1")
    assert "1000001" not in answer and "12 500" not in answer
    assert answer.startswith("ElecNet - 3000001")


# ---------------------------------------------------------------- the action server's HTTP surface
def test_health_is_open_and_the_actions_list_needs_the_token(action_app):
    async def get(path: str) -> tuple[int, object]:
        _, response = await action_app.asgi_client.get(path)
        return response.status, response.json

    assert asyncio.run(get("/health")) == (200, {"status": "ok"})
    assert asyncio.run(get("/actions"))[0] == 401
    assert asyncio.run(get(f"/actions?token={TOKEN}")) == (200, [{"name": "action_elecnet_turn"}])


def test_a_call_without_the_token_or_with_a_wrong_one_is_refused(chat, action_app):
    awa = chat("conv-awa-token", "+221770000001")
    body = action_call("conv-awa-token", awa.latest("solde", "check_balance"))
    assert post(action_app, "/webhook", body) == (401, {"error": "Unauthorized"})
    assert post(action_app, "/webhook", body, token="wrong")[0] == 401
    assert post(action_app, "/webhook", body, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_an_unknown_action_is_404_and_a_call_without_the_domain_is_449_as_rasa_expects(chat, action_app):
    awa = chat("conv-awa-sdk", "+221770000001")
    latest = awa.latest("solde", "check_balance")
    status, answer = post(action_app, "/webhook", action_call("conv-awa-sdk", latest, next_action="action_nope"),
                          token=TOKEN)
    assert (status, answer["action_name"]) == (404, "action_nope")
    assert "No registered action found for name 'action_nope'" in answer["error"]
    status, answer = post(action_app, "/webhook", action_call("conv-awa-sdk", latest, domain=False), token=TOKEN)
    assert (status, answer["action_name"]) == (449, "action_elecnet_turn")
    assert answer["error"].startswith("Missing domain context")
    # Rasa retries with the domain: answered.
    assert post(action_app, "/webhook", action_call("conv-awa-sdk", latest), token=TOKEN)[0] == 200


@pytest.mark.parametrize("body, error", [
    (b"not json", "Invalid body request"),
    (b"[1, 2]", "Invalid body request"),
    (b'{"next_action": ["action_elecnet_turn"]}', "next_action must be a string"),
    (b'{"next_action": "action_elecnet_turn"}', "tracker missing"),
    (b'{"next_action": "action_elecnet_turn", "tracker": {"sender_id": 7}}', "tracker.sender_id must be a string"),
    (b'{"next_action": "action_elecnet_turn", "tracker": {"sender_id": "a", "events": {}}}', "tracker.events malformed"),
    (b'{"next_action": "action_elecnet_turn", "version": 3, "tracker": {"sender_id": "a"}}',
     "version must be a string"),
])
def test_hostile_bodies_get_a_400_in_rasa_format_that_echoes_nothing(action_app, body, error):
    status, answer = post(action_app, "/webhook", token=TOKEN, data=body, headers={"Content-Type": "application/json"})
    assert status == 400
    assert answer["error"] == error
    assert "request_body" not in answer


def test_a_compressed_call_is_read_and_a_compression_bomb_is_refused(chat, action_app):
    awa = chat("conv-awa-deflate", "+221770000001")

    packed = zlib.compress(json.dumps(action_call("conv-awa-deflate", awa.latest("salut", "greet"))).encode())
    status, answer = post(action_app, "/webhook", token=TOKEN, data=packed, headers={"Content-Encoding": "deflate"})
    assert status == 200 and answer["responses"][0]["text"] == "ElecNet - 1000001"
    bomb = zlib.compress(b"{" + b" " * (64 * 1024 * 1024) + b"}")
    assert post(action_app, "/webhook", token=TOKEN, data=bomb, headers={"Content-Encoding": "deflate"}) == (
        413, {"error": "Request body too large"})


def test_a_malformed_message_is_answered_politely_not_with_an_error(chat, action_app):
    latest = {"text": "x" * 5000, "intent": {"name": "greet"}, "entities": [], "metadata": {}}
    status, answer = post(action_app, "/webhook", action_call("conv-long", latest), token=TOKEN)
    assert status == 200
    assert answer["responses"][0]["text"] == "Message illisible. Merci de réessayer."
    status, answer = post(action_app, "/webhook", action_call("bad sender\n", latest), token=TOKEN)
    assert status == 200 and answer["responses"][0]["text"] == "Message illisible. Merci de réessayer."


def test_when_the_session_store_is_down_the_customer_gets_a_polite_text_not_a_500(rasa_settings):
    app = build_action_app(replace(rasa_settings, redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    try:
        awa = RasaChat(app, TOKEN, "conv-awa-down", "+221770000001", SECRET)
        assert awa.say("solde", intent="check_balance") == (
            "Service momentanément indisponible. Merci de réessayer plus tard.")
    finally:
        Sanic.unregister_app(app)
