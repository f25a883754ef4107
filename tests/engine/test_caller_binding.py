"""A session is its caller's alone, and what it keeps of a hop reveals no PIN.

A second number sending the first one's session id (a guessed or leaked ``sessionId``) gets
a polite end, reads and changes nothing, and is reported as a security event. The saved
replay record is an HMAC of the caller and the hop under the server key: without the key,
trying every PIN does not find it.
"""

from __future__ import annotations

import hashlib

import pytest

from engine import Engine, FlowSet, SecurityEvent, SessionStore
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps

OWNER, INTRUDER = "+221770000001", "+221770000009"


class KeptEvents:
    """A ``SecurityAudit`` that keeps what it is told, for the test to read."""

    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def record(self, event: SecurityEvent) -> None:
        self.events.append(event)


@pytest.fixture
def security() -> KeptEvents:
    return KeptEvents()


@pytest.fixture
def engine(store: SessionStore, steps: CountingSteps, security: KeptEvents) -> Engine:
    return Engine(FlowSet(load_menus(DEMO)), store, steps, security=security, hop_key=b"server-key-1")


def saved(store: SessionStore, key: str = "ussd:s1") -> str:
    session = store.load(key)
    assert session is not None
    return session.to_json()


def test_another_number_on_a_callers_session_gets_a_polite_end_and_reads_nothing(engine, store, security):
    owner = Handset(engine, msisdn=OWNER)
    owner.dial()
    owner.answer("2")
    assert owner.answer("500").text.startswith("PIN:")
    before = saved(store)

    intruder = Handset(engine, msisdn=INTRUDER)
    # The very request the owner just sent, replayed from another number: no screen of the owner's.
    reply = intruder.hop("2*500")
    assert reply.end
    assert reply.text == "Service indisponible."
    assert saved(store) == before
    assert [(e.kind, e.channel, e.subject) for e in security.events] == [("caller_mismatch", "ussd", INTRUDER)]
    assert OWNER not in security.events[0].detail and INTRUDER not in security.events[0].detail

    # The owner's session carries on as if nothing happened.
    assert owner.answer("1234").text == "Payé 500 FCFA le 25/11/2026."


def test_another_number_cannot_move_a_callers_session_on(engine, store, steps, security):
    owner = Handset(engine, msisdn=OWNER)
    owner.dial()
    owner.answer("2")
    owner.answer("500")
    before = saved(store)
    reply = Handset(engine, msisdn=INTRUDER).hop("2*500*1234")
    assert reply.end and reply.text == "Service indisponible."
    assert steps.seen_pins == []
    assert saved(store) == before
    assert len(security.events) == 1


def test_another_number_gets_nothing_of_an_ended_session(engine, security):
    owner = Handset(engine, msisdn=OWNER)
    owner.dial()
    assert owner.answer("4").text == "Au revoir."
    for text in ("4", "anything"):
        reply = Handset(engine, msisdn=INTRUDER).hop(text)
        assert reply.text == "Service indisponible."
    assert [e.kind for e in security.events] == ["caller_mismatch", "caller_mismatch"]


def test_the_saved_hop_record_does_not_reveal_the_pin(engine, store):
    phone = Handset(engine, msisdn=OWNER)
    phone.dial()
    phone.answer("2")
    phone.answer("500")
    assert phone.answer("4821").text.startswith("PIN:")  # a wrong PIN: the session goes on, saved
    record = saved(store)
    assert "4821" not in record
    # What an attacker holding the saved session would try: every PIN through the unkeyed digest.
    for guess in (f"{n:04d}" for n in range(10_000)):
        for text in (f"2*500*{guess}", f"{OWNER}2*500*{guess}"):
            digest = hashlib.sha256(text.encode()).hexdigest()
            assert digest[:32] not in record, guess


def test_a_replayed_hop_is_answered_from_the_record_without_running_again(engine, steps):
    phone = Handset(engine, msisdn=OWNER)
    phone.dial()
    phone.answer("2")
    phone.answer("500")
    first = phone.answer("4821")
    assert steps.calls["demo.check_pin"] == 1
    again = phone.hop("2*500*4821")
    assert again.text == first.text
    assert steps.calls["demo.check_pin"] == 1


def _last_hop_id(store: SessionStore, hop_key: bytes, session: str, msisdn: str) -> str:
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=hop_key)
    phone = Handset(engine, session=session, msisdn=msisdn)
    phone.dial()
    phone.answer("2")
    found = store.load(f"ussd:{session}")
    assert found is not None and found.last_hop_id
    return found.last_hop_id


def test_the_hop_record_depends_on_the_server_key_and_on_the_caller(store):
    one = _last_hop_id(store, b"key-one", "a", OWNER)
    assert _last_hop_id(store, b"key-one", "b", OWNER) == one
    assert _last_hop_id(store, b"key-two", "c", OWNER) != one
    assert _last_hop_id(store, b"key-one", "d", INTRUDER) != one
