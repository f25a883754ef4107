"""Resuming a dropped session on redial: offered only mid-task, never past a gate.

The flow (``flows/resume.yaml``): 1 an info screen, 2 a typed quantity then a confirmation,
3 a confirmation straight away, 4 a secret change behind a PIN prompt, 6 a transfer whose
payee is chosen after the PIN and confirmed after that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine, FlowSet, SessionStore, Turn
from menus import load_menus

from .conftest import Handset
from .resume_steps import PIN, ResumeSteps

FLOW = Path(__file__).parent / "flows" / "resume.yaml"
HOME = "Accueil\n1. Horaires\n2. Commander\n3. Commander 1\n4. Changer le secret\n5. Panne\n6. Virement"
OFFER = "Reprendre ?\n1. Oui\n2. Non"


@pytest.fixture
def steps() -> ResumeSteps:
    return ResumeSteps()


@pytest.fixture
def engine(store: SessionStore, steps: ResumeSteps) -> Engine:
    return Engine(FlowSet(load_menus(FLOW)), store, steps, hop_key=b"test-key")


def dropped_after(engine: Engine, *inputs: str) -> list[str]:
    """A session of the customer that the network drops after ``inputs``: the screens it showed."""
    first = Handset(engine, session="first")
    first.dial()
    return [first.answer(value).text for value in inputs]


def redial(engine: Engine, session: str = "again") -> tuple[Handset, str]:
    phone = Handset(engine, session=session)
    return phone, phone.dial().text


def test_a_session_dropped_on_an_information_screen_is_not_offered_back(engine):
    [hours] = dropped_after(engine, "1")
    assert hours.startswith("Ouvert de 8h à 18h.")
    _, screen = redial(engine)
    assert screen == HOME


def test_a_session_dropped_while_asking_for_an_input_is_offered_back(engine):
    [asked] = dropped_after(engine, "2")
    assert asked.startswith("Quantité:")
    again, screen = redial(engine)
    assert screen == OFFER
    assert again.answer("1").text.startswith("Quantité:")
    assert again.answer("5").text.startswith("Commander 5 ?")


def test_a_session_dropped_on_a_pending_confirmation_is_offered_back_and_completes_once(engine, steps):
    [confirm] = dropped_after(engine, "3")
    assert confirm.startswith("Commander 1 ?\n1. Confirmer")
    again, screen = redial(engine)
    assert screen == OFFER
    assert again.answer("1").text.startswith("Commander 1 ?\n1. Confirmer")
    assert again.answer("1").text == "Commande de 1 passée."
    assert steps.placed == 1


@pytest.mark.parametrize(("status", "offered"), [("Success", False), ("Incomplete", True), ("Failed", True)])
def test_the_gateways_end_of_session_status_decides_whether_a_redial_is_offered_back(engine, status, offered):
    dropped_after(engine, "3")
    engine.finish(channel="ussd", session_key="ussd:first", user_id="+221770000001", status=status)
    _, screen = redial(engine)
    assert screen == (OFFER if offered else HOME)


def test_another_numbers_end_of_session_event_does_not_cancel_the_offer(engine):
    dropped_after(engine, "3")
    engine.finish(channel="ussd", session_key="ussd:first", user_id="+221770000009", status="Success")
    _, screen = redial(engine)
    assert screen == OFFER


def test_a_session_resumed_behind_the_pin_prompt_asks_the_pin_again(engine, steps):
    pin, new_secret = dropped_after(engine, "4", PIN)
    assert pin.startswith("PIN:") and new_secret.startswith("Nouveau secret:")
    # Someone redials on the same handset.
    again, screen = redial(engine)
    assert screen == OFFER
    assert again.answer("1").text.startswith("PIN:")
    assert again.answer(PIN).text.startswith("Nouveau secret:")
    assert again.answer("5678").text == "Secret changé."
    assert steps.changed_to == ["5678"]


def test_a_wrong_pin_after_resuming_changes_nothing(engine, steps):
    dropped_after(engine, "4", PIN)
    again, _ = redial(engine)
    again.answer("1")
    assert again.answer("0000").text.startswith("PIN:")
    assert steps.changed_to == []


def test_a_proof_of_the_pin_is_not_carried_into_a_resumed_session(engine, steps):
    pin, payee, confirm = dropped_after(engine, "6", PIN, "1")
    assert pin.startswith("PIN:") and payee.startswith("Pour qui ?") and confirm.startswith("Virer à Awa ?")
    again, screen = redial(engine)
    assert screen == OFFER
    assert again.answer("1").text.startswith("Virer à Awa ?")
    # Confirming in the resumed session needs the PIN again: the first session's proof stayed behind.
    assert again.answer("1").text.startswith("PIN:")
    assert steps.transfers == 0
    assert again.answer(PIN).text.startswith("Pour qui ?")


def test_no_offer_to_a_different_number(engine):
    dropped_after(engine, "2")
    other = Handset(engine, session="other", msisdn="+221770000002")
    assert other.dial().text == HOME



def signed_in(engine: Engine, customer: str, key: str, text: str | None) -> str:
    """A chatbot message from the sender ``conv-1`` signed in as ``customer``: the chatbot keys a session on
    the conversation and the customer together (``key``)."""
    return engine.handle(Turn("rasa", "conv-1", f"rasa:{key}", text, f"{key}:{text}", customer=customer)).text


def test_a_dropped_session_is_offered_back_to_its_own_customer_only(engine):
    """One chat conversation signed in as Awa, who leaves an order half-way, then as Moussa (signed out,
    signed in again): Moussa is never offered Awa's order; Awa, back, is."""
    signed_in(engine, "+221770000001", "awa", None)
    assert signed_in(engine, "+221770000001", "awa", "2").startswith("Quantité:")
    assert signed_in(engine, "+221770000002", "moussa", None) == HOME
    assert signed_in(engine, "+221770000001", "awa-again", None) == OFFER
