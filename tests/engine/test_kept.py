"""What a new command of the same chat user carries over (``keeps:`` on the flow, ``engine.kept``), on the demo
flow: the item picked (``keeps: [picked, receipt]``) carries, within the idle window, after an answer that ended
too; an amount typed (not kept), a receipt a PIN-checked hop wrote (a proof), another customer's pick, a pick
past the window and a pick on a USSD session (a new dial is a new conversation) do not. ``CHOIX`` (``recap``)
says what the new session holds. On the in-process and the Redis stores."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import ChannelCapabilities, Engine, FlowSet, Reply, SessionStore, Turn
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps

IDLE = 300
AWA, MOUSSA = "+221770000001", "+221770000002"
_ids = itertools.count(1)


class Clock:
    """The engine's clock, moved on by the test (the idle window is counted on it)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Writer:
    """Someone writing on the chat channel (keyed by the sender): one message, one hop."""

    def __init__(self, engine: Engine, address: str, customer: str | None, guest: bool = False) -> None:
        self.engine, self.address, self.customer, self.guest = engine, address, customer, guest

    def send(self, text: str) -> Reply:
        return self.engine.handle(Turn("chat", self.address, f"chat:{self.address}", text, f"m{next(_ids)}",
                                       customer=self.customer, guest=self.guest))


def _engine(store: SessionStore, clock: Clock, menus: Path = DEMO) -> Engine:
    engine = Engine(FlowSet(load_menus(menus)), store, CountingSteps(items=5), clock=clock)
    engine.declare(ChannelCapabilities("chat", max_chars=4096), idle_seconds=IDLE)
    engine.declare(ChannelCapabilities("ussd", 182), key_ends_with_session=True)
    return engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def writer(store: SessionStore, clock: Clock) -> Callable[..., Writer]:
    engine = _engine(store, clock)
    return lambda address=AWA, customer=AWA: Writer(engine, address, customer)


def test_the_item_picked_carries_into_the_next_command_even_after_an_answer_that_ended(writer, clock):
    awa = writer()
    assert awa.send("CHOIX").text.startswith("Rien de choisi.")
    awa.send("LISTE")
    assert awa.send("3").text.startswith("Choisi: Article 3")
    assert awa.send("CHOIX").text.startswith("Choisi: Article 3")         # a new command, a new session: kept
    assert awa.send("FIN").text == "Au revoir."
    clock.now += timedelta(seconds=IDLE - 10)
    assert awa.send("CHOIX").text.startswith("Choisi: Article 3")         # after the end, within the window
    assert awa.send("LISTE").text.startswith("Choisissez:\n1. Article 1")  # the journey itself starts afresh


def test_an_amount_typed_does_not_carry_but_the_pick_does(writer):
    awa = writer()
    awa.send("LISTE")
    awa.send("2")
    assert awa.send("PAYER 700").text.startswith("PIN:")
    assert awa.send("CHOIX").text.startswith("Choisi: Article 2")          # not "Montant en cours: 700 FCFA"


def test_what_a_pin_checked_hop_wrote_never_carries(writer):
    awa = writer()
    awa.send("PAYER 700")
    assert awa.send("1234").text == "Payé 700 FCFA le 25/11/2026."          # the receipt is written behind the PIN
    assert awa.send("CHOIX").text.startswith("Rien de choisi.")            # declared kept, yet a proof: left behind


def test_past_the_idle_window_nothing_carries(writer, clock):
    awa = writer()
    awa.send("LISTE")
    awa.send("4")
    clock.now += timedelta(seconds=IDLE + 1)
    assert awa.send("CHOIX").text.startswith("Rien de choisi.")


def test_another_sender_or_another_customer_on_the_same_address_gets_nothing(writer):
    awa = writer()
    awa.send("LISTE")
    awa.send("1")
    assert writer(MOUSSA, MOUSSA).send("CHOIX").text.startswith("Rien de choisi.")
    # The same address vouched for as another customer (a shared chat, a number changed): nothing of Awa's.
    assert writer(AWA, MOUSSA).send("CHOIX").text.startswith("Rien de choisi.")


def test_a_new_ussd_dial_carries_nothing(store: SessionStore, clock: Clock):
    engine = _engine(store, clock)
    first = Handset(engine, session="d1")
    first.dial()
    first.answer("1")
    assert first.answer("3").text.startswith("Choisi: Article 3")
    again = Handset(engine, session="d2")
    assert again.dial("6").text.startswith("Rien de choisi.")               # *123*6#: the recap, on a new dial


def test_a_guest_who_signs_in_carries_nothing_from_the_guest_conversation(store: SessionStore, clock: Clock,
                                                                          tmp_path: Path):
    """A chatbot or web guest (nobody vouched for them) picks an item, then the same conversation is a verified
    customer's: the customer's new command starts without it, whether the guest's session ended or not."""
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace("    start: greet\n",
                                                              "    start: greet\n    guests: true\n", 1),
                     encoding="utf-8")
    engine = _engine(store, clock, menus)
    guest = Writer(engine, "conv-1", None, guest=True)
    guest.send("LISTE")
    assert guest.send("3").text.startswith("Choisi: Article 3")
    assert guest.send("CHOIX").text.startswith("Choisi: Article 3")       # the guest's own next command keeps it
    signed_in = Writer(engine, "conv-1", AWA)
    assert signed_in.send("CHOIX").text.startswith("Rien de choisi.")
    # And after the guest's answer ended the conversation.
    other_guest = Writer(engine, "conv-2", None, guest=True)
    other_guest.send("LISTE")
    other_guest.send("2")
    assert other_guest.send("FIN").text == "Au revoir."
    assert Writer(engine, "conv-2", AWA).send("CHOIX").text.startswith("Rien de choisi.")
