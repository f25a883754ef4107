"""A hop nobody vouched for (no verified number: a chatbot's guest) runs only in a flow the menus open to
guests (``guests: true``). Anywhere else it gets a polite end, no dialog step runs (a step would act for a
customer it does not have), and the refusal is a security event: a wrongly wired entry point cannot turn a
guest into a customer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine import ChannelCapabilities, Engine, FlowSet, SessionStore, Turn
from menus import load_menus

from .conftest import DEMO
from .fakes import CountingSteps
from .test_caller_binding import KeptEvents

AWA = "+221770000001"


def guest(text: str, hop: str, key: str = "rasa:conv-guest-1") -> Turn:
    """A hop the adapter serves as a guest's: nobody vouched for the caller."""
    return Turn("rasa", "conv-guest-1", key, text, hop, guest=True)


@pytest.fixture
def security() -> KeptEvents:
    return KeptEvents()


def test_a_hop_nobody_vouched_for_runs_no_step_of_a_flow_not_open_to_guests(store: SessionStore,
                                                                           steps: CountingSteps, security):
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, security=security)
    reply = engine.handle(guest("hello", "h1"))
    assert reply.end and "indisponible" in reply.text
    assert steps.calls == {}
    assert [(e.kind, e.channel, e.subject, e.detail) for e in security.events] == [
        ("guest_refused", "rasa", "conv-guest-1", "flow main is not open to guests")]


def test_a_guest_refused_is_told_in_their_language_and_nothing_fails(store: SessionStore, steps: CountingSteps,
                                                                    security, caplog):
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, security=security)
    reply = engine.handle(Turn("rasa", "conv-guest-2", "rasa:conv-guest-2", "hello", "h1", guest=True,
                               language_hint="en"))
    assert (reply.text, reply.end) == ("Service unavailable.", True)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []   # refused, not failed


def test_a_flow_open_to_guests_serves_them(store: SessionStore, steps: CountingSteps, security, tmp_path: Path):
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace("    start: greet\n",
                                                              "    start: greet\n    guests: true\n", 1),
                     encoding="utf-8")
    engine = Engine(FlowSet(load_menus(menus)), store, steps, security=security)
    reply = engine.handle(guest("hello", "h1"))
    assert not reply.end and steps.calls == {"demo.greet": 1}
    assert security.events == []


def test_a_guests_hop_on_a_customers_session_reads_nothing_of_it(store: SessionStore, steps: CountingSteps,
                                                                 security, tmp_path: Path):
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace("    start: greet\n",
                                                              "    start: greet\n    guests: true\n", 1),
                     encoding="utf-8")
    engine = Engine(FlowSet(load_menus(menus)), store, steps, security=security)
    first = engine.handle(Turn("rasa", "conv-guest-1", "rasa:shared", "hello", "h1", customer="+221770000001"))
    assert "Awa" in first.text
    # The very same hop, as a guest's, on that key: not the recorded answer, nothing run.
    replayed = engine.handle(guest("hello", "h1", key="rasa:shared"))
    assert replayed.end and "Awa" not in replayed.text
    assert steps.calls == {"demo.greet": 1}
    assert [e.kind for e in security.events] == ["guest_refused"]


def _open_to_guests(tmp_path: Path) -> Path:
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace("    start: greet\n",
                                                              "    start: greet\n    guests: true\n", 1),
                     encoding="utf-8")
    return menus


def chat(text: str, hop: str, customer: str | None = None) -> Turn:
    """A chat message on the one conversation key ``chat:conv-1``: a guest's, or vouched for as ``customer``."""
    return Turn("chat", "conv-1", "chat:conv-1", text, hop, customer=customer, guest=customer is None)


def test_a_verified_customer_on_a_guests_live_session_starts_afresh_as_themselves(store: SessionStore,
                                                                                 steps: CountingSteps, security,
                                                                                 tmp_path: Path):
    engine = Engine(FlowSet(load_menus(_open_to_guests(tmp_path))), store, steps, security=security)
    engine.declare(ChannelCapabilities("chat", max_chars=4096), idle_seconds=300)
    assert engine.handle(chat("LISTE", "g1")).text.startswith("Choisissez:\n1. Article 1 1 000 FCFA")
    # The guest signs in: the same conversation key now comes vouched for. Her "2" is no answer to the
    # guest's list (that went on with nobody behind it): she starts afresh, as herself.
    reply = engine.handle(chat("2", "c1", customer=AWA))
    assert not reply.text.startswith("Choisi: Article 2"), reply.text
    assert reply.text.startswith("Bonjour Awa"), reply.text
    assert steps.seen_customers == ["", "", AWA]        # the guest's greeting and list, then her own greeting
    saved = store.load("chat:conv-1")
    assert saved is not None and saved.customer == AWA
    # Her next message goes on in her own session.
    assert engine.handle(chat("1", "c2", customer=AWA)).text.startswith("Choisissez:")
    assert steps.seen_customers[-1] == AWA
    assert security.events == []


def test_the_retry_of_a_guests_hop_arriving_verified_is_not_the_guests_answer(store: SessionStore,
                                                                             steps: CountingSteps, security,
                                                                             tmp_path: Path):
    engine = Engine(FlowSet(load_menus(_open_to_guests(tmp_path))), store, steps, security=security)
    engine.declare(ChannelCapabilities("chat", max_chars=4096), idle_seconds=300)
    engine.handle(chat("LISTE", "g1"))
    assert engine.handle(chat("3", "g2")).text.startswith("Choisi: Article 3")
    # The very same message id, now vouched for: not the guest's recorded answer, but her own start.
    again = engine.handle(chat("3", "g2", customer=AWA))
    assert not again.replayed and again.text.startswith("Bonjour Awa"), again.text
