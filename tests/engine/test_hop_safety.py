"""A hop that cannot run gets a polite closing screen: the session is busy, a dialog step raises.
And sessions live in Redis exactly as long as configured."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engine import Engine, EngineLimits, FlowSet, RedisSessionStore, SessionStore
from menus import load_menus

from ..support.services import REDIS_TEST_URL, need_service
from .conftest import DEMO, Handset
from .fakes import CountingSteps
from .resume_steps import ResumeSteps

RESUME_FLOW = Path(__file__).parent / "flows" / "resume.yaml"
NUMBER = "+221770000001"


def test_a_hop_on_a_session_whose_lock_is_held_is_told_politely_and_runs_nothing(store: SessionStore):
    steps = CountingSteps()
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, limits=EngineLimits(lock_wait_seconds=0.05),
                    hop_key=b"k")
    with store.lock("ussd:s1"):  # another hop of the same session, still running
        reply = Handset(engine).dial()
    assert reply.end
    assert reply.text == "Occupé."
    assert steps.calls == {}
    assert store.load("ussd:s1") is None
    # Once the lock is free, the same dial is served normally.
    assert Handset(engine).dial().text.startswith("Bonjour Awa")


def test_a_dialog_step_that_raises_ends_politely_and_is_logged_masked(store: SessionStore, caplog):
    engine = Engine(FlowSet(load_menus(RESUME_FLOW)), store, ResumeSteps(), hop_key=b"k")
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    with caplog.at_level(logging.INFO):
        reply = phone.answer("5")
    assert reply.end
    assert reply.text == "Service indisponible."
    assert "demo.raise" in caplog.text and "KeyError" in caplog.text
    assert "+2217*****001" in caplog.text
    assert "770000001" not in caplog.text
    # The session is closed: the same hop again gets the same answer, nothing runs twice.
    assert phone.hop("5").text == "Service indisponible."


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    need_service("Redis", REDIS_TEST_URL, 6379)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own: it removes only its keys, whoever else uses the database."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    yield prefix
    for key in redis_client.scan_iter(f"{prefix}*"):
        redis_client.delete(key)


def test_sessions_live_in_redis_as_long_as_configured(redis_client, prefix):
    store = RedisSessionStore(redis_client, prefix=prefix, resume_seconds=150)
    limits = EngineLimits(session_ttl_seconds=240, ended_ttl_seconds=45, resume_window_seconds=120)
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), limits=limits, hop_key=b"k")
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    phone.answer("2")
    session_key, pointer = f"{prefix}s:ussd:s1", f"{prefix}u:ussd:{NUMBER}"
    assert 235 <= redis_client.ttl(session_key) <= 240
    assert 145 <= redis_client.ttl(pointer) <= 150  # the redial-to-resume pointer
    assert redis_client.pttl(f"{prefix}l:ussd:s1") == -2  # no lock left behind

    phone.answer("500")
    assert phone.answer("1234").end
    assert 40 <= redis_client.ttl(session_key) <= 45
    assert redis_client.exists(pointer) == 0  # an ended session is not offered back


def test_a_channel_may_keep_its_sessions_longer(redis_client, prefix):
    store = RedisSessionStore(redis_client, prefix=prefix)
    limits = EngineLimits(session_ttl_seconds=180, channel_ttl_seconds={"whatsapp": 3600})
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), limits=limits, hop_key=b"k")
    Handset(engine, channel="whatsapp").dial()
    Handset(engine, session="s2").dial()
    assert 3590 <= redis_client.ttl(f"{prefix}s:whatsapp:s1") <= 3600
    assert 175 <= redis_client.ttl(f"{prefix}s:ussd:s2") <= 180
