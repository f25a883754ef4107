"""The redial pointer names the caller's resumable session, and only that session's own saves take it away.

An older session's late save (the gateway's report of its normal end, its own last hop, its take-over by a
redial) must not drop a newer session's pointer: the newer session, dropped mid-task, is still offered on
redial. Over the embedded store and Redis (the ``store`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import ChannelCapabilities, Engine, FlowSet, SessionStore
from menus import load_menus

from .conftest import Handset
from .resume_steps import ResumeSteps

FLOW = Path(__file__).parent / "flows" / "resume.yaml"
HOME = "Accueil\n1. Horaires\n2. Commander\n3. Commander 1\n4. Changer le secret\n5. Panne\n6. Virement"
OFFER = "Reprendre ?\n1. Oui\n2. Non"


@pytest.fixture
def engine(store: SessionStore) -> Engine:
    engine = Engine(FlowSet(load_menus(FLOW)), store, ResumeSteps(), hop_key=b"test-key")
    # As the USSD adapter declares it: a gateway's session id never carries another conversation once ended.
    engine.declare(ChannelCapabilities("ussd", 182, "gsm7", 80, 4), key_ends_with_session=True)
    return engine


def _older_and_newer(engine: Engine) -> tuple[Handset, Handset]:
    """Session A on the main menu, then session B of the same caller asking a quantity, and B drops."""
    older = Handset(engine, session="older")
    assert older.dial().text == HOME
    newer = Handset(engine, session="newer")
    assert newer.dial().text == HOME                   # A asks nothing: no offer
    assert newer.answer("2").text.startswith("Quantité:")   # ... and B drops here
    return older, newer


def test_the_gateways_late_end_report_of_an_older_session_leaves_the_newer_one_offered(engine):
    _older_and_newer(engine)
    engine.finish(channel="ussd", session_key="ussd:older", user_id="+221770000001", status="Success")
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER
    assert again.answer("1").text.startswith("Quantité:")   # B's task, where it was left
    assert again.answer("5").text.startswith("Commander 5 ?")


def test_an_older_sessions_late_last_hop_leaves_the_newer_one_offered(engine):
    older, _ = _older_and_newer(engine)
    assert older.answer("1").text.startswith("Ouvert de 8h à 18h.")   # A's late hop: an information screen
    assert Handset(engine, session="again").dial().text == OFFER


def test_closing_an_older_dropped_session_on_a_late_answer_to_its_offer_leaves_the_newer_one_offered(engine):
    dropped = Handset(engine, session="dropped")
    dropped.dial()
    assert dropped.answer("2").text.startswith("Quantité:")   # A drops mid-task
    offered = Handset(engine, session="offered")
    assert offered.dial().text == OFFER                 # B is offered A, and waits on the offer
    newer = Handset(engine, session="newer")
    assert newer.dial("3").text.startswith("Commander 1 ?")   # C dials straight to a confirmation, and drops
    assert offered.answer("2").text == HOME             # B declines late: A is closed under its lock
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER                   # C is still offered
    assert again.answer("1").text.startswith("Commander 1 ?")


def test_a_late_answer_to_an_offer_already_settled_leaves_the_newer_session_offered(engine):
    dropped = Handset(engine, session="dropped")
    dropped.dial()
    assert dropped.answer("2").text.startswith("Quantité:")   # A drops mid-task
    taking = Handset(engine, session="taking")
    assert taking.dial().text == OFFER                  # B is offered A, and waits on the offer
    newer = Handset(engine, session="newer")
    assert newer.dial().text == OFFER                   # C too
    assert newer.answer("2").text == HOME               # C declines and starts afresh ...
    assert newer.answer("3").text.startswith("Commander 1 ?")   # ... to a confirmation, and drops
    assert taking.answer("1").text == HOME              # B accepts late: A is closed (C declined it)
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER                   # C is still offered
    assert again.answer("1").text.startswith("Commander 1 ?")


def test_declining_the_offer_closes_the_dropped_session_so_it_is_not_offered_again(engine):
    dropped = Handset(engine, session="dropped")
    dropped.dial()
    assert dropped.answer("2").text.startswith("Quantité:")   # A drops mid-task
    declining = Handset(engine, session="declining")
    assert declining.dial().text == OFFER
    assert declining.answer("2").text == HOME           # B declines, looks at the main menu, and drops
    assert Handset(engine, session="again").dial().text == HOME   # A is not offered a second time
    assert (dropped.answer("5").text, dropped.hop("2*5").end) == ("Session terminée.", True)   # nor open on its id
