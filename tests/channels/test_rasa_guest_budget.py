# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""Guests are counted: whoever talks to the Rasa server chooses the conversation id, so each new id would be a
new session in the store. The action server admits at most ``RASA_GUESTS_PER_MINUTE`` new guest conversations a
minute, across its processes (Redis) or in its one process (embedded default); past that, a new guest is told to
come back in a minute (or to sign in) and gets no session, while guests already in and signed-in customers go on.
Through the action server over HTTP; conversations read like chats."""

from __future__ import annotations

import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sanic import Sanic

from app.actions_server import build_action_app
from app.settings import Settings
from app.storage.throttle import MemoryThrottle
from channels.rasa import GuestBudget, IdentityVerifier, RasaChannel
from channels.rasa.channel import RasaMessage
from engine import SecurityEvent

from .rasa_chat import RasaChat
from .rasa_visitor import AWA, GUEST_FR, TOKEN, Visitor, chat_settings, security_events  # noqa: F401

BUSY_SIGN_IN_FR = ("Le service sans connexion est très demandé en ce moment. Merci de réessayer dans une minute, "
                   "ou envoyez votre numéro de téléphone pour vous connecter.")
BUSY_EN = "The service without signing in is very busy right now. Please try again in a minute."


@pytest.fixture
def small_budget(chat_settings: Settings) -> Iterator[Sanic]:
    """The action server admitting three new guest conversations a minute."""
    app = build_action_app(replace(chat_settings, rasa_guests_per_minute=3))
    yield app
    Sanic.unregister_app(app)


def _has_session(app: Sanic, guest: Visitor) -> bool:
    """Whether the store holds a session of ``guest``'s conversation (as the channel keys a guest's)."""
    turn = RasaChannel(IdentityVerifier("", time.time)).parse(RasaMessage(guest.sender_id, {"text": "x"}))
    return app.ctx.parts["store"].load(turn.session_key) is not None


def _refused(app: Sanic) -> float:
    return app.ctx.metrics.registry.get_sample_value("chat_guest_conversations_total", {"outcome": "refused"}) or 0.0


def test_past_the_budget_a_new_guest_is_told_to_come_back_and_gets_no_session(small_budget):
    first, second, third = (Visitor(small_budget) for _ in range(3))
    assert [first.say("bonjour"), second.say("salut"), third.say("bonsoir")] == [GUEST_FR] * 3
    latecomer = Visitor(small_budget)
    assert latecomer.say("bonjour") == BUSY_SIGN_IN_FR
    assert latecomer.buttons == []
    # Writing again is no way in: each message of a conversation not admitted is a new guest, counted again.
    assert latecomer.say("1") == BUSY_SIGN_IN_FR
    assert not _has_session(small_budget, latecomer)
    assert all(_has_session(small_budget, guest) for guest in (first, second, third))
    # The guests already in go on with their simulation.
    assert first.press("Simulateur de facture") == "Simulateur de facture:"
    assert first.press("Je connais mes kWh par mois") == "Consommation par mois en kWh (ex: 180):"
    assert first.say("180").startswith("Pour 180 kWh par mois:\nFacture estimée 20 157 FCFA TTC")
    assert third.say("1") == "Simulateur de facture:"


def test_a_flood_of_minted_conversation_ids_leaves_as_many_sessions_as_the_budget(small_budget):
    flood = [Visitor(small_budget, sender_id=f"bot-{uuid.uuid4().hex}") for _ in range(12)]
    said = [guest.say("bonjour") for guest in flood]
    assert said == [GUEST_FR] * 3 + [BUSY_SIGN_IN_FR] * 9
    assert [_has_session(small_budget, guest) for guest in flood] == [True] * 3 + [False] * 9
    assert _refused(small_budget) == 9
    assert small_budget.ctx.metrics.registry.get_sample_value(
        "chat_guest_conversations_total", {"outcome": "admitted"}) == 3
    # One security event for the minute, not one per refused message (the audit is no second thing to fill).
    assert security_events(small_budget, flood[3].sender_id) == [
        ("guest_throttled", "rasa", "more than 3 new guest conversations a minute: refused till it ends")]
    assert all(security_events(small_budget, guest.sender_id) == [] for guest in flood[4:])


def test_customers_are_never_counted_and_english_guests_are_told_in_english(small_budget, chat_settings):
    for _ in range(3):
        assert Visitor(small_budget).say("hello") == GUEST_FR
    awa = RasaChat(small_budget, TOKEN, "chat-awa-1", AWA, "front-channel-secret")
    assert awa.say("mon solde", intent="check_balance").startswith("Compte 1000001\nÀ payer: 12 500 FCFA")
    # Where the chat cannot sign in (a short conversation id), the busy answer says nothing of signing in.
    short = Visitor(small_budget, language="en", sender_id="u-42")
    assert short.say("hello") == BUSY_EN


@pytest.mark.parametrize("chat_settings", ["redis"], indirect=True)   # the embedded default has one process
def test_the_budget_is_shared_by_every_action_server_process(chat_settings, small_budget):
    other = build_action_app(replace(chat_settings, rasa_guests_per_minute=3))
    try:
        assert [Visitor(small_budget).say("a"), Visitor(other).say("b"), Visitor(small_budget).say("c")] == \
            [GUEST_FR] * 3
        assert Visitor(other).say("d") == BUSY_SIGN_IN_FR
    finally:
        Sanic.unregister_app(other)


def _budget_of_one(chat_settings: Settings, idle: int, longest: int) -> Sanic:
    """The action server admitting one new guest conversation a minute, conversations idle out after ``idle``
    seconds and a guest chatting longer than ``longest`` is a new guest again."""
    return build_action_app(replace(chat_settings, rasa_guests_per_minute=1, rasa_session_idle_seconds=idle,
                                    web_max_seconds=longest))


def _at(started: float, second: float) -> None:
    time.sleep(max(0.0, started + second - time.monotonic()))


def test_a_guest_let_in_stays_in_while_chatting_past_the_idle_time_though_the_budget_is_spent(chat_settings):
    app = _budget_of_one(chat_settings, idle=3, longest=3600)
    try:
        guest = Visitor(app)
        assert guest.say("bonjour") == GUEST_FR
        let_in = time.monotonic()                                        # at the latest
        assert Visitor(app).say("bonjour") == BUSY_SIGN_IN_FR          # the minute's budget is spent
        _at(let_in, 1.0)
        assert guest.press("Simulateur de facture") == "Simulateur de facture:"
        _at(let_in, 2.0)
        assert guest.press("Je connais mes kWh par mois") == "Consommation par mois en kWh (ex: 180):"
        _at(let_in, 3.2)                                                 # past one idle time since it was let in
        assert guest.say("180").startswith("Pour 180 kWh par mois:\nFacture estimée 20 157 FCFA TTC")
        assert _refused(app) == 1
    finally:
        Sanic.unregister_app(app)


def test_a_guest_chatting_longer_than_a_visit_may_last_is_counted_again(chat_settings):
    app = _budget_of_one(chat_settings, idle=60, longest=1)
    try:
        guest = Visitor(app)
        assert guest.say("bonjour") == GUEST_FR
        _at(time.monotonic(), 1.3)                                       # past WEB_MAX_SECONDS: a new guest
        assert guest.press("Simulateur de facture") == BUSY_SIGN_IN_FR   # and the minute's budget is spent
        assert _refused(app) == 1
    finally:
        Sanic.unregister_app(app)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Audit:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def record(self, event: SecurityEvent) -> None:
        self.kinds.append(event.kind)


def test_a_minute_later_new_guests_are_admitted_again_and_the_embedded_counters_do_not_pile_up() -> None:
    clock, audit = Clock(), Audit()
    counted: list[str] = []
    budget = GuestBudget(MemoryThrottle(clock), audit, per_minute=60, admitted_seconds=900, longest_seconds=1800,
                         counted=counted.append)
    assert all(budget.admit(f"guest-{n}") for n in range(60))
    assert not budget.admit("guest-60")
    clock.now += 60
    assert budget.admit("guest-60")
    assert budget.admit("guest-0")     # still within its admission: not counted again
    assert counted == ["admitted"] * 60 + ["refused", "admitted"]

    def flood(minutes: int) -> int:  # 500 minted ids a minute, for ``minutes``: the memory traced after
        for _ in range(minutes):
            clock.now += 60
            for _ in range(500):
                budget.admit(uuid.uuid4().hex)
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        settled = flood(45)   # past the admissions' longest 30 minutes: the counters kept reach their steady state
        later = flood(120)
    finally:
        tracemalloc.stop()
    # Two hours more of flood (7 200 conversations admitted, 52 800 refused): what the process keeps does not
    # grow (without sweeping, each admitted conversation's counter stayed: 2 MB more).
    assert later - settled < 500_000, (settled, later)
    assert audit.kinds == ["guest_throttled"] * 166


def test_a_minute_spent_late_and_the_next_one_spent_early_are_audited_once_each():
    # The analyst reads one guest_throttled row per minute of the budget in which guests were turned away.
    clock, audit = Clock(), Audit()
    budget = GuestBudget(MemoryThrottle(clock), audit, per_minute=2)
    assert budget.admit("a") and budget.admit("b")        # the budget's minute starts with the first
    clock.now += 50
    assert not budget.admit("c")                          # 50 s into it: noted
    assert not budget.admit("d")
    clock.now += 11                                       # its next minute
    assert budget.admit("e") and budget.admit("f")
    clock.now += 9
    assert not budget.admit("g")                          # 9 s into it: that minute's first refusal, noted
    assert audit.kinds == ["guest_throttled"] * 2


def test_the_chats_hops_are_counted_with_the_engines_time_like_every_channels(small_budget):
    # The operator's dashboards read engine_hops_total and engine_own_seconds by channel: the chat is one.
    guest = Visitor(small_budget)
    guest.say("bonjour")
    guest.press("Simulateur de facture")
    registry = small_budget.ctx.metrics.registry
    hops = sum(registry.get_sample_value("engine_hops_total", {"channel": "rasa", "end": end}) or 0.0
               for end in ("true", "false"))
    assert hops == 2
    assert registry.get_sample_value("engine_own_seconds_count", {"channel": "rasa"}) == 2
