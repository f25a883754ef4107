"""A USSD session id is spent once its session is over: a hop that carries it long after (a replay of an
old request: its ``*``-joined history would otherwise be followed again as a new dial) is refused
with ``session_over`` and a ``session_reused`` security event for a day, while the full session
itself is kept only two minutes. On Redis and on the embedded store; time passes on the store's
clock (embedded) or with TTLs of a second (Redis), never minutes of sleep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from engine import ChannelCapabilities, Engine, EngineLimits, FlowSet, MemorySessionStore, RedisSessionStore
from engine.store import SessionStore
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps
from .resume_steps import ResumeSteps
from .test_hop_safety import prefix, redis_client  # noqa: F401  (fixtures: a Redis key prefix of this test's own)
from .test_session_end import EnglishHandset, Security

NUMBER, OTHER = "+221770000001", "+221770000009"
USSD = ChannelCapabilities("ussd", 182, "gsm7", 80, 4)
HOME = "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"
OVER = ("Session terminée.", True)


@dataclass
class Place:
    """A session store, the limits its engine runs with, and how time passes past a session's TTL."""

    store: SessionStore
    limits: EngineLimits
    clock: list[float]               # the embedded store's clock (unused on Redis)
    redis: redis.Redis | None = None
    prefix: str = ""

    def later(self, key: str = "ussd:s1") -> None:
        """Past the session's TTL (ended or idle): the store no longer has it."""
        if self.redis is None:
            self.clock[0] += max(self.limits.ended_ttl_seconds, self.limits.session_ttl_seconds) + 1
        else:
            deadline = time.monotonic() + 5
            while self.redis.exists(f"{self.prefix}s:{key}") and time.monotonic() < deadline:
                time.sleep(0.05)
        assert self.store.load(key) is None

    def past_retries(self, text: str, key: str = "ussd:s1") -> None:
        """Past the window of the gateway's retries (``ended_replay_seconds``): waits until no value kept for the
        key holds ``text`` (on Redis, a few seconds at most; a store keeping it longer fails here)."""
        if self.redis is None:
            self.clock[0] += self.limits.ended_replay_seconds + 1
            return
        deadline = time.monotonic() + self.limits.ended_replay_seconds + 3
        while text in self.kept(key) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kept(self, key: str = "ussd:s1") -> str:
        """Every value the store keeps for the session key, as text: on Redis the raw values of this test's keys;
        on the embedded store the session and the key's marker."""
        if self.redis is None:
            session = self.store.load(key)
            return f"{session.to_json() if session else ''}\n{self.store.marker(key) or ''}"
        values = (self.redis.get(k) for k in self.redis.scan_iter(f"{self.prefix}*") if self.redis.type(k) == b"string")
        return "\n".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                         for v in values if v is not None)


@pytest.fixture(params=["memory", "redis"])
def place(request: pytest.FixtureRequest) -> Iterator[Place]:
    if request.param == "memory":
        clock = [1_000.0]
        yield Place(MemorySessionStore(clock=lambda: clock[0]), EngineLimits(), clock)
        return
    client, key_prefix = request.getfixturevalue("redis_client"), request.getfixturevalue("prefix")
    # Redis keeps time itself: TTLs of a second stand for the two and three minutes, three for the five minutes
    # the END text is kept for the gateway's retries.
    yield Place(RedisSessionStore(client, prefix=key_prefix),
                EngineLimits(session_ttl_seconds=1, ended_ttl_seconds=1, ended_replay_seconds=3),
                [0.0], client, key_prefix)


def _engine(place: Place, steps: CountingSteps | None = None, security: Security | None = None) -> Engine:
    engine = Engine(FlowSet(load_menus(DEMO)), place.store, steps or CountingSteps(), security=security,
                    limits=place.limits, hop_key=b"k")
    engine.declare(USSD, key_ends_with_session=True)
    return engine


def _events(security: Security) -> list[tuple[str, str, str | None, str]]:
    return [(e.kind, e.channel, e.subject, e.detail) for e in security.events]


def test_a_hop_long_after_the_end_is_still_refused_and_nothing_of_the_old_session_runs_again(place: Place):
    security, steps = Security(), CountingSteps()
    engine = _engine(place, steps, security)
    phone = Handset(engine, msisdn=NUMBER)
    assert phone.dial().text == HOME
    phone.answer("1")                                   # the list: its step runs
    phone.answer("0")
    assert phone.answer("4").text == "Au revoir."
    place.later()                                       # the ended session itself is gone
    calls = dict(steps.calls)
    assert (phone.answer("1").text, phone.answer("1").end) == OVER     # one more input on the old id
    assert (phone.hop("1*0*4").text, phone.hop("1*0*4").end) == ("Au revoir.", True)   # the last hop: its END
    assert (phone.hop("2*500").text, phone.hop("2*500").end) == OVER   # a history followed as a dial: no
    assert (phone.hop("").text, phone.hop("").end) == OVER             # an opening hop: no new session
    assert steps.calls == calls
    assert place.store.load("ussd:s1") is None          # refused without keeping or making a session
    assert _events(security) == [("session_reused", "ussd", NUMBER, "hop on an ended session")] * 6
    assert Handset(engine, session="s2", msisdn=NUMBER).dial().text == HOME   # a new dial, a new session


def test_the_refusal_long_after_is_in_the_customers_language(place: Place):
    phone = EnglishHandset(_engine(place), msisdn=NUMBER)
    assert phone.dial("4").text == "Goodbye."
    place.later()
    assert phone.answer("1").text == "Session over."


def test_a_session_dropped_mid_task_and_expired_is_not_followed_again_from_its_history(place: Place):
    security, steps = Security(), CountingSteps()
    phone = Handset(_engine(place, steps, security), msisdn=NUMBER)
    phone.dial()
    phone.answer("2")
    assert phone.answer("500").text.startswith("PIN:")   # ... and the call drops: no END
    place.later()
    assert (phone.answer("1234").text, phone.hop("1234").end) == OVER  # the PIN hop comes back: refused
    assert steps.calls.get("demo.check_pin") is None
    assert _events(security)[-1] == ("session_reused", "ussd", NUMBER, "hop on an ended session")


def test_after_the_gateways_normal_end_a_hop_long_after_is_refused(place: Place):
    engine = _engine(place)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    engine.finish(channel="ussd", session_key="ussd:s1", user_id=NUMBER, status="Success")
    place.later()
    assert (phone.answer("1").text, phone.answer("1").end) == OVER


def test_another_number_on_a_spent_session_id_learns_nothing_and_is_a_caller_mismatch(place: Place, caplog):
    security = Security()
    engine = _engine(place, security=security)
    Handset(engine, msisdn=NUMBER).dial("4")
    place.later()
    intruder = EnglishHandset(engine, msisdn=OTHER)
    assert (intruder.dial("1").text, intruder.hop("1").end) == ("Service unavailable.", True)
    assert _events(security) == [("caller_mismatch", "ussd", OTHER, "hop on another caller's ended session")] * 2
    assert place.store.load("ussd:s1") is None
    assert Handset(engine, msisdn=NUMBER).answer("1").text == "Session terminée."   # the owner: still refused
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []   # refused, not failed


def test_the_refusal_long_after_is_in_the_channels_characters(place: Place, tmp_path: Path):
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace('"Session terminée."', '"Session terminée – recomposez."')
                     .replace('"Service indisponible."', '"Indisponible – rappelez."'), encoding="utf-8")
    engine = Engine(FlowSet(load_menus(menus)), place.store, CountingSteps(), limits=place.limits, hop_key=b"k")
    engine.declare(USSD, key_ends_with_session=True)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial("4")
    place.later()
    assert phone.answer("1").text == "Session terminée - recomposez."   # GSM-7 has no en dash
    assert Handset(engine, msisdn=OTHER).answer("1").text == "Indisponible - rappelez."   # nor for another number


def test_the_marker_is_kept_a_day_and_then_forgotten_on_the_embedded_store():
    clock = [1_000.0]
    place = Place(MemorySessionStore(clock=lambda: clock[0]), EngineLimits(), clock)
    engine = _engine(place)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial("4")
    clock[0] += 86_400 - 1
    assert phone.answer("1").text == "Session terminée."
    clock[0] += 2                                     # a day on: the id is forgotten, as a gateway has
    assert Handset(engine, msisdn=NUMBER).dial().text == HOME


def test_on_redis_the_marker_lives_a_day_and_costs_a_fraction_of_the_session(redis_client, prefix):  # noqa: F811
    engine = _engine(Place(RedisSessionStore(redis_client, prefix=prefix), EngineLimits(), [0.0]))
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    marker, session = f"{prefix}e:ussd:s1", f"{prefix}s:ussd:s1"
    assert 86_390 <= redis_client.ttl(marker) <= 86_400     # written with the session's first save
    phone.answer("1")
    assert phone.answer("0").text == HOME
    assert phone.answer("4").text == "Au revoir."
    assert 115 <= redis_client.ttl(session) <= 120
    assert 86_390 <= redis_client.ttl(marker) <= 86_400     # and again with its last
    assert 295 <= redis_client.ttl(f"{prefix}r:ussd:s1") <= 300   # its END, for the gateway's retries only
    marker_bytes, session_bytes = redis_client.memory_usage(marker), redis_client.memory_usage(session)
    assert marker_bytes is not None and session_bytes is not None
    assert marker_bytes * 5 < session_bytes, (marker_bytes, session_bytes)


def test_on_a_channel_keyed_by_user_no_marker_is_kept_and_a_later_message_starts_anew(redis_client, prefix):  # noqa: F811
    engine = Engine(FlowSet(load_menus(DEMO)), RedisSessionStore(redis_client, prefix=prefix), CountingSteps(),
                    hop_key=b"k")
    engine.declare(ChannelCapabilities("chat", max_chars=4096), idle_seconds=900)
    phone = Handset(engine, channel="chat", msisdn=NUMBER)
    phone.dial()
    assert phone.answer("4").text == "Au revoir."
    assert list(redis_client.scan_iter(f"{prefix}e:*")) == []


# ---------------------------------------------------------------- a dropped session continued on redial
RESUME_FLOW = Path(__file__).parent / "flows" / "resume.yaml"


def _resuming(store: SessionStore, steps: ResumeSteps, security: Security) -> Engine:
    engine = Engine(FlowSet(load_menus(RESUME_FLOW)), store, steps, security=security, hop_key=b"k")
    engine.declare(USSD, key_ends_with_session=True)
    return engine


def test_a_session_continued_on_redial_is_closed_on_its_old_id_so_the_order_is_placed_once(store: SessionStore):
    steps, security = ResumeSteps(), Security()
    engine = _resuming(store, steps, security)
    first = Handset(engine, session="first", msisdn=NUMBER)
    first.dial()
    assert first.answer("3").text.startswith("Commander 1 ?\n1. Confirmer")   # ... and the call drops
    again = Handset(engine, session="again", msisdn=NUMBER)
    assert again.dial().text == "Reprendre ?\n1. Oui\n2. Non"
    assert again.answer("1").text.startswith("Commander 1 ?\n1. Confirmer")
    assert again.answer("1").text == "Commande de 1 passée."
    # The old id's confirmation, sent late or replayed: not a second order from the copy left behind.
    assert (first.answer("1").text, first.hop("3*1").end) == OVER
    assert steps.placed == 1
    assert _events(security) == [("session_reused", "ussd", NUMBER, "hop on an ended session")] * 2


def test_a_session_continued_on_redial_stays_refused_on_its_old_id_once_its_copy_is_gone(place: Place):
    steps, security = ResumeSteps(), Security()
    engine = Engine(FlowSet(load_menus(RESUME_FLOW)), place.store, steps, security=security, hop_key=b"k",
                    limits=place.limits)
    engine.declare(USSD, key_ends_with_session=True)
    first = Handset(engine, session="first", msisdn=NUMBER)
    first.dial()
    first.answer("3")                                   # ... and the call drops
    again = Handset(engine, session="again", msisdn=NUMBER)
    assert again.dial().text == "Reprendre ?\n1. Oui\n2. Non"
    assert again.answer("1").text.startswith("Commander 1 ?")
    place.later("ussd:first")                            # the old session's closed copy is gone too
    assert (first.answer("1").text, first.hop("3*1").end) == OVER
    assert steps.placed == 0


def test_a_dropped_session_the_gateway_closed_meanwhile_is_not_continued(store: SessionStore):
    steps, security = ResumeSteps(), Security()
    engine = _resuming(store, steps, security)
    first = Handset(engine, session="first", msisdn=NUMBER)
    first.dial()
    first.answer("3")
    again = Handset(engine, session="again", msisdn=NUMBER)
    assert again.dial().text == "Reprendre ?\n1. Oui\n2. Non"
    # The gateway's report of a normal end of the first session arrives while the offer is shown.
    engine.finish(channel="ussd", session_key="ussd:first", user_id=NUMBER, status="Success")
    assert again.answer("1").text.startswith("Accueil\n1. Horaires")    # a fresh start, not the closed task
    assert steps.placed == 0
