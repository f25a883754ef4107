"""Chat-style turns (SMS, WhatsApp): a session keyed by the sender, a first message that is a
command with its argument, replay of the identical message only, a new message after a goodbye."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from engine import ChannelCapabilities, Engine, FlowSet, Reply, SessionStore, Turn
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps

_ids = itertools.count(1)
HOME = "Bonjour Awa, être à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"


class Chat:
    """A customer writing on a chat channel: one message, one hop; the session is theirs."""

    def __init__(self, engine: Engine, sender: str = "+221770000001") -> None:
        self.engine, self.sender = engine, sender
        self.last_id = ""

    def send(self, text: str, message_id: str | None = None) -> Reply:
        self.last_id = message_id or f"msg-{next(_ids)}"
        return self.engine.handle(Turn("chat", self.sender, f"chat:{self.sender}", text, self.last_id,
                                       customer=self.sender))


@pytest.fixture
def chat(engine: Engine) -> Chat:
    return Chat(engine)


def test_a_first_message_with_a_keyword_and_its_argument_starts_at_the_command(chat, steps, store):
    reply = chat.send("PAYER 500")
    assert reply.text == "PIN:\n0. Retour 00. Accueil"
    assert steps.calls == {"demo.greet": 1}    # the flow's start ran first: who is writing
    saved = store.load("chat:+221770000001")
    assert saved.data["amount"] == "500" and saved.language == "fr"
    assert chat.send("1234").text == "Payé 500 FCFA le 25/11/2026."


def test_the_keyword_chooses_the_language_accents_case_and_one_typo_forgiven(chat):
    assert chat.send("pay 700").text.startswith("PIN:\n0. Back")
    assert chat.send("1234").text == "Paid 700 FCFA on 25/11/2026."
    other = Chat(chat.engine, "+221770000009")
    assert other.send("lïsté").text.startswith("Choisissez:\n1. Article 1")
    third = Chat(chat.engine, "+221770000008")
    assert third.send("PAYEER 800").text.startswith("PIN:")


def test_a_command_without_its_argument_or_with_a_wrong_one_says_how_to_write_it_in_the_keywords_language(chat):
    usage = chat.send("PAYER")
    assert usage.end and usage.text == "Envoyez PAYER suivi du montant, ex: PAYER 500."
    assert chat.send("PAYER cinq cents").text == "Envoyez PAYER suivi du montant, ex: PAYER 500."
    assert chat.send("PAYER 9000").text == "Envoyez PAYER suivi du montant, ex: PAYER 500."    # above 5 000
    assert chat.send("pay").text == "Send PAY and the amount, e.g. PAY 500."
    assert chat.send("PAYER 500").text.startswith("PIN:")     # written right, the command runs


def test_an_unknown_word_opens_the_main_menu(chat):
    assert chat.send("Bonjour").text == HOME


def test_a_message_after_a_goodbye_starts_a_new_session_and_only_a_retry_gets_the_goodbye_again(chat, steps):
    goodbye = chat.send("FIN")
    assert goodbye.end and goodbye.text == "Au revoir."
    retry = chat.send("FIN", chat.last_id)
    assert retry.replayed and retry.text == "Au revoir." and retry.screen is not None
    assert retry.screen.node == "bye" and retry.screen.blocks == ("Au revoir.",)
    fresh = chat.send("LISTE")
    assert not fresh.end and not fresh.replayed
    assert fresh.text.startswith("Choisissez:\n1. Article 1")


def test_a_new_command_while_a_screen_waits_for_an_answer_starts_over(chat):
    chat.send("LISTE")
    assert chat.send("PAYER 900").text.startswith("PIN:")
    assert chat.send("1234").text == "Payé 900 FCFA le 25/11/2026."


def test_an_answer_the_screen_takes_is_an_answer_not_a_command(chat):
    chat.send("PAYER 900")
    reply = chat.send("1234")
    assert reply.end and reply.text.startswith("Payé 900")


def test_a_replay_keeps_the_screen_not_only_its_text(chat):
    first = chat.send("LISTE")
    again = chat.send("LISTE", chat.last_id)
    assert again.replayed and again.screen == first.screen and again.pages == first.pages


def test_the_customer_steps_see_is_the_verified_number_not_the_address(store: SessionStore) -> None:
    seen: list[tuple[str, str]] = []
    steps = CountingSteps()
    original = steps._steps["demo.greet"]

    def greet(ctx):
        seen.append((ctx.user_id, ctx.address))
        return original(ctx)

    steps._steps["demo.greet"] = greet
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps)
    engine.handle(Turn("chat", "whatsapp:+221770000001", "chat:w1", "LISTE", "m1"))
    engine.handle(Turn("chat", "whatsapp:+221770000002", "chat:w2", "LISTE", "m2", customer="+221770000002"))
    assert seen == [("", "whatsapp:+221770000001"), ("+221770000002", "whatsapp:+221770000002")]


def test_a_chatbot_intent_starts_at_its_node_and_an_intent_mid_conversation_starts_over(engine):
    def said(text: str, intent: str | None, message_id: str) -> Reply:
        return engine.handle(Turn("chat", "rasa-sender-7", "chat:rasa-sender-7", text, message_id, intent=intent))

    assert said("show me my stuff", "show_list", "r1").text.startswith("Choisissez:\n1. Article 1")
    assert said("3", None, "r2").text.startswith("Choisi: Article 3")
    assert said("bye now", "goodbye", "r3").text == "Au revoir."
    assert said("hey", "no_such_intent", "r4").text == HOME


def test_each_chat_conversation_is_its_own_for_the_steps_and_a_ussd_one_is_its_session(store, steps):
    """A payment's or a plan's idempotency key is per conversation: on a chat channel the session key is the
    sender's in every conversation, so the steps are told which conversation this is."""
    now = [datetime(2026, 11, 27, 9, 0, tzinfo=UTC)]
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, clock=lambda: now[0])
    chat = Chat(engine)
    chat.send("bonjour")                                 # the greeting step runs: conversation one
    assert chat.send("FIN").end
    now[0] += timedelta(minutes=5)
    chat.send("bonjour")                                 # a later conversation of the same sender
    first, later = steps.seen_conversations
    assert first.startswith("chat:+221770000001@") and later.startswith("chat:+221770000001@") and first != later
    engine.declare(ChannelCapabilities("ussd", 182), key_ends_with_session=True)
    Handset(engine).dial()
    assert steps.seen_conversations[-1] == "ussd:s1"    # USSD: the gateway's session is the conversation
