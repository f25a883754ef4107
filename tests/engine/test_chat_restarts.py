"""When a chat message mid-conversation starts over and when it is an answer to the screen shown.

A command (a keyword, or an intent a chatbot recognised) that the current screen cannot take starts over;
anything the screen takes, Back, an empty message, and any message on a channel whose chatbot recognised
no intent are answers. ``chat`` (``flows/demo.yaml``) has keywords and intents; ``bot``
(``flows/lifecycle.yaml``) has intents only.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from engine import ChannelCapabilities, Engine, FlowSet, Reply, SessionStore, Turn
from menus import load_menus

from .conftest import DEMO
from .fakes import CountingSteps
from .resume_steps import ResumeSteps

LIFECYCLE = Path(__file__).parent / "flows" / "lifecycle.yaml"
HOME = "Bonjour Awa, être à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"
_ids = itertools.count(1)


class Sender:
    """One customer writing to a chat channel: each message one hop, with what the chatbot read in it."""

    def __init__(self, engine: Engine, channel: str = "chat", sender: str = "+221770000001") -> None:
        self.engine, self.channel, self.sender = engine, channel, sender

    def send(self, text: str | None, intent: str | None = None) -> Reply:
        return self.engine.handle(Turn(self.channel, self.sender, f"{self.channel}:{self.sender}", text,
                                       f"m-{next(_ids)}", intent=intent))


def test_an_empty_message_mid_conversation_is_answered_by_the_screen_whatever_intent_was_read_in_it(engine):
    chat = Sender(engine)
    assert chat.send("LISTE").text.startswith("Choisissez:\n1. Article 1")
    reply = chat.send(None, intent="goodbye")
    assert not reply.end
    assert reply.text.startswith("Choix invalide.\nChoisissez:\n1. Article 1")


def test_an_amount_the_screen_takes_is_an_answer_even_when_the_chatbot_reads_an_intent_in_it(engine):
    chat = Sender(engine)
    assert chat.send("bonjour").text == HOME
    assert chat.send("2").text.startswith("Montant (100 à 5000):")
    assert chat.send("500", intent="show_list").text.startswith("PIN:")
    assert chat.send("1234").text == "Payé 500 FCFA le 25/11/2026."


def test_back_is_back_even_when_the_chatbot_reads_an_intent_in_it(engine):
    chat = Sender(engine)
    assert chat.send("bonjour").text == HOME
    assert chat.send("1").text.startswith("Choisissez:\n1. Article 1")
    assert chat.send("0", intent="show_list").text == HOME


def test_a_command_after_a_menu_reload_still_starts_over_from_a_screen_the_new_menus_dropped(store: SessionStore,
                                                                                          tmp_path):
    flows = FlowSet(load_menus(DEMO))
    chat = Sender(Engine(flows, store, CountingSteps()))
    chat.send("LISTE")
    assert chat.send("3").text.startswith("Choisi: Article 3")
    renamed = tmp_path / "menus.yaml"
    renamed.write_text(DEMO.read_text(encoding="utf-8").replace("picked", "chosen"), encoding="utf-8")
    flows.load(load_menus(renamed))
    assert chat.send("PAYER 900").text.startswith("PIN:")
    assert chat.send("1234").text == "Payé 900 FCFA le 25/11/2026."


def bot(store: SessionStore) -> Sender:
    return Sender(Engine(FlowSet(load_menus(LIFECYCLE)), store, ResumeSteps()), channel="bot", sender="rasa-7")


def test_on_a_chatbot_channel_without_keywords_a_message_with_no_intent_is_an_answer(store: SessionStore):
    chat = bot(store)
    assert chat.send("salut").text == "Accueil\n1. Payer\n2. Fin\n3. Message"
    assert chat.send("1").text.startswith("Montant:")
    assert chat.send("500").text.startswith("PIN:")


def test_on_a_chatbot_channel_without_keywords_a_recognised_intent_mid_conversation_starts_over(
        store: SessionStore):
    chat = bot(store)
    chat.send("salut")
    assert chat.send("1").text.startswith("Montant:")
    reply = chat.send("au revoir", intent="goodbye")
    assert reply.end and reply.text == "Au revoir."


def test_a_command_sent_to_the_resume_offer_is_a_wrong_answer_to_the_offer(engine):
    def send(session_key: str, text: str | None) -> Reply:
        return engine.handle(Turn("chat", "+221770000001", session_key, text, f"m-{next(_ids)}"))

    assert send("chat:visit-1", "PAYER 500").text.startswith("PIN:")     # left on the PIN prompt
    offer = send("chat:visit-2", None)                                 # a chat keyed per visit: a new session
    assert offer.text == "Reprendre ?\n1. Oui\n2. Non"
    assert send("chat:visit-2", "LISTE").text == "Choix invalide.\nReprendre ?\n1. Oui\n2. Non"
    assert send("chat:visit-2", "1").text.startswith("PIN:")


def test_a_first_message_with_a_command_runs_it_rather_than_offering_the_dropped_session(engine):
    def send(session_key: str, text: str | None) -> Reply:
        return engine.handle(Turn("chat", "+221770000001", session_key, text, f"m-{next(_ids)}"))

    assert send("chat:visit-1", "PAYER 500").text.startswith("PIN:")     # left on the PIN prompt
    assert send("chat:visit-2", "LISTE").text.startswith("Choisissez:\n1. Article 1")


# ---------------------------------------------------------------- a stray word
HELP = "Aide: LISTE, PAYER montant, FIN"


def with_help(tmp_path: Path) -> Path:
    """The demo flow where ``chat`` answers an unknown first message with a help screen (as SMS does)."""
    text = DEMO.read_text(encoding="utf-8")
    path = tmp_path / "menus.yaml"
    path.write_text(text.replace("chat: {keywords:", "chat: {unknown: help, keywords:").replace(
        "      bye:\n", f"      help:\n        kind: end\n        text: {{fr: \"{HELP}\", en: \"{HELP}\"}}\n"
                       "      bye:\n"), encoding="utf-8")
    return path


@pytest.fixture
def helping(store: SessionStore, tmp_path: Path) -> Sender:
    engine = Engine(FlowSet(load_menus(with_help(tmp_path))), store, CountingSteps())
    engine.declare(ChannelCapabilities("chat", max_chars=4096, navigation_words={"retour": "0"}), idle_seconds=300)
    return Sender(engine)


def test_a_stray_word_on_a_menu_gets_what_an_unknown_first_message_gets(helping: Sender):
    assert helping.send("bonjour").text == HELP
    assert helping.send("LISTE").text.startswith("Choisissez:\n1. Article 1")
    assert helping.send("merci").text == HELP


def test_a_wrong_number_on_a_menu_is_an_invalid_choice_not_the_help(helping: Sender):
    helping.send("LISTE")
    assert helping.send("77").text.startswith("Choix invalide.\nChoisissez:\n1. Article 1")


def test_a_word_on_an_input_screen_gets_its_error_line_not_the_help(helping: Sender):
    assert helping.send("PAYER").text == "Envoyez PAYER suivi du montant, ex: PAYER 500."   # how, not the help
    helping.send("LISTE")
    helping.send("retour")
    assert helping.send("2").text.startswith("Montant (100 à 5000):")
    assert helping.send("cent").text.startswith("Saisie invalide.\nMontant (100 à 5000):")


def test_a_command_without_its_argument_on_a_menu_says_how_to_write_it_not_the_whole_help(helping: Sender):
    helping.send("LISTE")
    assert helping.send("PAY").text == "Send PAY and the amount, e.g. PAY 500."
    assert helping.send("LISTE").text.startswith("Choisissez:\n1. Article 1")


def test_a_navigation_word_on_a_menu_navigates(helping: Sender):
    helping.send("LISTE")
    assert helping.send("retour").text == HOME


def test_without_an_answer_for_unknown_messages_a_stray_word_is_an_invalid_choice(engine):
    chat = Sender(engine)
    chat.send("LISTE")
    assert chat.send("merci").text.startswith("Choix invalide.\nChoisissez:\n1. Article 1")
