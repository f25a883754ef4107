"""Resuming a dropped session, from the redial's offer to the end of the resumed session: never past the
PIN, in the menus it started with, marked in the audit trail, and only while resuming is on.

The flow (``flows/lifecycle.yaml``): 1 a payment, an amount, then a PIN prompt behind a gate step whose
right answer leads straight to the confirmation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine import Engine, EngineLimits, FlowSet, MemorySessionStore, SessionStore
from engine.steps import StepResult
from menus import load_menus

from ..support.clock import SettableClock
from .conftest import Handset
from .fakes import RecordingAudit
from .resume_steps import PIN, ResumeSteps

FLOW = Path(__file__).parent / "flows" / "lifecycle.yaml"
HOME = "Accueil\n1. Payer\n2. Fin\n3. Message"
OFFER = "Reprendre ?\n1. Oui\n2. Non"
CONFIRM = "Payer 500 ?\n1. Confirmer\n0. Retour 00. Accueil"



def engine_on(store: SessionStore, steps: ResumeSteps, **kwargs: object) -> Engine:
    return Engine(FlowSet(load_menus(FLOW)), store, steps, hop_key=b"test-key", **kwargs)  # type: ignore[arg-type]


def dropped(engine: Engine, *inputs: str, session: str = "first") -> list[str]:
    """A session that the network drops after ``inputs``: the screens it showed."""
    phone = Handset(engine, session=session)
    phone.dial()
    return [phone.answer(value).text for value in inputs]


def test_a_session_dropped_on_the_confirmation_right_after_the_pin_asks_the_pin_again(store):
    steps = ResumeSteps()
    engine = engine_on(store, steps)
    assert dropped(engine, "1", "500", PIN) == ["Montant:\n0. Retour 00. Accueil", "PIN:\n0. Retour 00. Accueil",
                                                CONFIRM]
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER
    # Never past the gate: the confirmation the PIN led to is reached through the PIN prompt again.
    assert again.answer("1").text.startswith("PIN:")
    assert again.answer(PIN).text == CONFIRM
    assert again.answer("1").text == "Payé 500."
    assert steps.transfers == 1


def test_back_from_the_pin_prompt_leaves_the_gate_a_drop_there_resumes_on_the_amount(store):
    engine = engine_on(store, ResumeSteps())
    assert dropped(engine, "1", "500", "0") == ["Montant:\n0. Retour 00. Accueil", "PIN:\n0. Retour 00. Accueil",
                                                "Montant:\n0. Retour 00. Accueil"]
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER
    assert again.answer("1").text == "Montant:\n0. Retour 00. Accueil"


def test_the_offer_is_the_screen_named_resume_in_the_agents_simulator(store):
    engine = engine_on(store, ResumeSteps())
    dropped(engine, "1")
    offer = Handset(engine, session="again").dial()
    assert offer.text == OFFER and not offer.end
    assert offer.screen is not None and offer.screen.node == "resume"


def test_a_session_resumed_after_a_menu_reload_continues_in_the_menus_it_started_with(store, tmp_path):
    flows = FlowSet(load_menus(FLOW))
    engine = Engine(flows, store, ResumeSteps(), hop_key=b"test-key")
    dropped(engine, "1")
    reworded = tmp_path / "menus.yaml"
    reworded.write_text(FLOW.read_text(encoding="utf-8").replace("Montant:", "Combien ?"), encoding="utf-8")
    flows.load(load_menus(reworded))
    someone = Handset(engine, session="new", msisdn="+221770000002")
    someone.dial()
    assert someone.answer("1").text.startswith("Combien ?")     # a new session: the new menus
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER
    assert again.answer("1").text == "Montant:\n0. Retour 00. Accueil"
    assert again.answer("500").text.startswith("PIN:")


def test_the_audit_trail_shows_where_a_session_was_resumed(store):
    audit = RecordingAudit()
    engine = engine_on(store, ResumeSteps(), audit=audit)
    dropped(engine, "1")
    again = Handset(engine, session="again")
    again.dial()
    again.answer("1")
    again.answer("500")
    again.answer(PIN)
    assert again.answer("1").text == "Payé 500."
    [record] = audit.records
    assert record.session_key == "ussd:again"
    assert record.nodes == ("home", "pay_amount", "resumed", "pay_gate", "pay_pin", "pay_check", "pay_confirm",
                            "pay_apply", "paid")


def test_a_gate_step_whose_system_is_down_on_resuming_ends_with_the_systems_message(store):
    steps = ResumeSteps()
    engine = engine_on(store, steps)
    dropped(engine, "1", "500")                       # dropped on the PIN prompt, behind the gate
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER
    steps._steps["demo.require"] = lambda ctx: StepResult("backend_down")
    reply = again.answer("1")
    assert reply.end and reply.text == "Systèmes indisponibles."


def test_with_resuming_turned_off_a_session_left_resumable_before_is_not_offered(store):
    clock = SettableClock(datetime(2027, 3, 1, tzinfo=UTC))    # the redial comes in the same second
    dropped(engine_on(store, ResumeSteps(), clock=clock), "1")
    off = engine_on(store, ResumeSteps(), clock=clock, limits=EngineLimits(resume_window_seconds=0))
    assert Handset(off, session="again").dial().text == HOME


def test_a_session_dropped_while_resuming_was_off_is_not_offered_once_it_is_back_on(store):
    dropped(engine_on(store, ResumeSteps(), limits=EngineLimits(resume_window_seconds=0)), "1")
    assert Handset(engine_on(store, ResumeSteps()), session="again").dial().text == HOME


def test_no_offer_when_the_dropped_sessions_key_now_holds_another_callers_session():
    seconds = [0.0]
    store = MemorySessionStore(clock=lambda: seconds[0])
    engine = engine_on(store, ResumeSteps())
    dropped(engine, "1", session="reused")            # the first caller's session, left mid-task
    seconds[0] += 181                                  # it expires; the caller's resume pointer lives on
    other = Handset(engine, session="reused", msisdn="+221770000002")
    other.dial()
    assert other.answer("1").text.startswith("Montant:")   # the gateway's id, reused by another number
    assert Handset(engine, session="again").dial().text == HOME


def test_a_redial_after_the_dropped_session_expired_opens_the_main_menu():
    seconds = [0.0]
    engine = engine_on(MemorySessionStore(clock=lambda: seconds[0]), ResumeSteps())
    dropped(engine, "1")
    seconds[0] += 181                                  # the session expires; the caller's resume pointer lives on
    assert Handset(engine, session="again").dial().text == HOME


def test_three_wrong_answers_to_the_offer_end_the_session_at_the_flows_start(store):
    engine = engine_on(store, ResumeSteps())
    dropped(engine, "1")
    again = Handset(engine, session="again")
    again.dial()
    again.answer("7")
    again.answer("8")
    reply = again.answer("9")
    assert reply.end and reply.text == "Trop d'erreurs."
    # The agents' simulator names the screen the session ended on: the flow's start, never entered past.
    assert reply.screen is not None and reply.screen.node == "home"
