# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""A chat user who has not signed in (a web chat widget, no front-channel claim) uses what needs no account
(the bill simulator) at once; anything about an account asks for the number first, then goes on as a
signed-in chat. Nothing a guest sends reads or changes a customer's data, whatever conversation id it
chooses: the Rasa ``sender_id`` is whatever reaches the Rasa server. Through the action server over HTTP,
on Redis and on the embedded default; conversations read like chats."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sanic import Sanic

from app.actions_server import build_action_app
from dialogs.registry import guest_steps
from menus.loader import load_menus
from menus.schema import ActionNode

from .rasa_chat import RasaChat
from .rasa_visitor import AWA, GUEST_FR, TOKEN, Visitor, action_app, chat_settings, code_in, sms, visitor  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
GUEST_EN = "Welcome to ElecNet. Without signing in:"
SIGN_IN_FIRST_FR = ("Pour accéder à votre compte, envoyez votre numéro de téléphone : nous vous enverrons un code "
                    "par SMS.")
AWA_SECRETS = ("1000001", "12 500", "DKR-PARCELLES", "Awa")


def test_a_guest_simulates_a_bill_without_signing_in(visitor):
    guest = visitor()
    assert guest.say("bonjour") == GUEST_FR
    assert guest.titles() == ["Simulateur de facture", "Mon compte (connexion)"]
    assert guest.press("Simulateur de facture") == "Simulateur de facture:"
    assert guest.press("Je connais mes kWh par mois") == "Consommation par mois en kWh (ex: 180):"
    assert guest.say("180") == ("Pour 180 kWh par mois:\nFacture estimée 20 157 FCFA TTC\n"
                                "(tarif domestique indicatif)")
    assert guest.titles() == ["Détails", "Nouvelle simulation", "Retour", "Accueil"]
    # Home is the guest's menu, never the account's main menu.
    assert guest.press("Accueil") == GUEST_FR


def test_in_english_the_simulator_opens_from_its_intent_and_works_out_appliances(visitor):
    guest = visitor(language="en")
    assert guest.say("how much would my bill be", intent="simulate_bill") == "Bill simulator:"
    assert guest.press("Work it out from appliances") == "Appliance:"
    assert guest.press("Fridge 150W") == "Fridge: hours of use a day (e.g. 4):"
    assert guest.say("24").startswith("Added: Fridge 108 kWh/month")
    assert guest.press("Work out the bill").startswith("For 108 kWh a month:\nEstimated bill ")
    assert guest.press("Home") == GUEST_EN


def test_an_account_question_asks_for_the_number_and_the_sign_in_goes_on_to_the_account(visitor, sms):
    awa = visitor()
    assert awa.say("quel est mon solde", intent="check_balance") == SIGN_IN_FIRST_FR
    assert awa.buttons == []
    assert awa.say("bonjour") == GUEST_FR
    assert awa.press("Mon compte (connexion)") == ("Pour votre compte (solde, factures, paiement), envoyez votre "
                                                    "numéro de téléphone : un code vous sera envoyé par SMS.")
    assert awa.say("77 000 00 01").startswith("Un code a été envoyé par SMS au +2217*****001.")
    assert awa.answers(code_in(sms(AWA)[-1])) == ["Numéro vérifié. Envoyez « déconnexion » pour quitter.",
                                                  "ElecNet - 1000001"]
    assert awa.press("Solde et factures").startswith("Compte 1000001\nÀ payer: 12 500 FCFA")
    # Signed out, the conversation is a guest's again: the account is out of reach.
    awa.say("déconnexion")
    assert awa.say("1") == GUEST_FR
    assert awa.say("mon solde", intent="check_balance") == SIGN_IN_FIRST_FR


def test_every_intent_of_an_account_journey_asks_for_the_number_first(visitor):
    guest = visitor(language="en")
    for intent in ("check_balance", "check_consumption", "pay_bill", "report_outage", "track_request"):
        assert guest.say("please", intent=intent) == ("To use your account, send your phone number: we will "
                                                      "text you a code."), intent


def test_where_the_chat_cannot_sign_in_a_guest_still_simulates_and_is_told_how_to_verify_a_number(chat_settings):
    app = build_action_app(replace(chat_settings, rasa_chat_sign_in=False))
    try:
        guest = Visitor(app)
        assert guest.say("bonjour") == GUEST_FR
        for said in (guest.say("77 000 00 01"), guest.say("mon solde", intent="check_balance")):
            assert said.startswith("Pour consulter votre compte ici, ouvrez la discussion depuis l'application"), said
        assert guest.say("1") == "Simulateur de facture:"
    finally:
        Sanic.unregister_app(app)


def test_a_guest_writing_as_a_customers_conversation_reads_and_changes_nothing_of_it(action_app, visitor):
    # A messaging platform's conversation id is the customer's number: anyone can send it to the Rasa server.
    awa = RasaChat(action_app, TOKEN, AWA, AWA, "front-channel-secret")
    assert awa.say("payer", intent="pay_bill").startswith("Payer - compte 1000001")
    assert awa.press("Payer tout le solde") == "Payer 12 500 FCFA avec:"
    intruder = visitor(sender_id=AWA)
    said = [intruder.say("bonjour")]
    said += [intruder.say(word) for word in ("1", "2", "0", "00", "98", "Orange Money", "Confirmer")]
    said.append(intruder.say("1", message_id=awa.last_body["tracker"]["latest_message"]["message_id"]))
    said += [intruder.say("solde", intent=intent) for intent in ("check_balance", "pay_bill", "greet", None)]
    assert not [text for text in said for secret in AWA_SECRETS if secret in text], said
    # Awa's payment is where she left it.
    assert awa.press("Orange Money") == "Payer 12 500 FCFA sur le compte 1000001 avec Orange Money ?"


def test_the_guest_journeys_call_no_step_that_reads_a_customer():
    # The guest flow is a flow of its own: its Home and Back stay in it, and its steps are the simulator's only.
    menus = load_menus(ROOT / "config" / "menus.yaml").menus
    guest = menus.flows[menus.entry_points["rasa"].codes["guest"]]
    assert [name for name, flow in menus.flows.items() if flow.guests] == ["guest"]    # the engine enforces it
    steps = {node.step for node in guest.nodes.values() if isinstance(node, ActionNode)}
    assert steps and steps <= guest_steps() and all(step.startswith("simulator.") for step in steps), steps
