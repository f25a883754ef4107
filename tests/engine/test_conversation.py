"""The engine on the demo flow, hop by hop, on the in-process store and on Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import redis

from engine import Engine, EngineLimits, FlowSet, MemorySessionStore, RedisSessionStore, Turn
from menus import load_menus

from ..support.clock import SettableClock
from ..support.ports import closed_port
from ..support.services import REDIS_TEST_URL, clean_redis, need_service
from .conftest import DEMO, Handset
from .fakes import CountingSteps

HOME = "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"


def test_dial_shows_the_home_menu_transliterated_for_gsm7(handset):
    phone = handset()
    reply = phone.dial()
    assert reply.text == HOME
    assert not reply.end


def test_router_and_conditional_option_follow_the_context(store):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(vip=True))
    phone = Handset(engine)
    assert phone.dial().text.startswith("Bonjour cher Awa\n1. Continuer")
    assert "7. Secret" in phone.answer("1").text


def test_invalid_choice_reasks_then_ends_politely_after_three(handset):
    phone = handset()
    phone.dial()
    first = phone.answer("9")
    assert first.text == "Choix invalide.\n" + HOME
    assert not first.end
    assert phone.answer("x").text.startswith("Choix invalide.")
    last = phone.answer("77")
    assert last.end
    assert last.text == "Trop d'erreurs. Au revoir."


def test_long_list_pages_with_98_and_99_and_keeps_numbering(handset):
    phone = handset()
    phone.dial()
    first = phone.answer("1")
    assert first.pages > 1
    assert first.text.startswith("Choisissez:\n1. Article 1 1 000 FCFA")
    assert first.text.endswith("98. Suite")
    second = phone.answer("98")
    assert second.page == 1 and second.text.startswith("6. Article 6")
    assert second.text.endswith("99. Préc. 98. Suite")
    assert phone.answer("99").text == first.text
    for _ in range(10):
        last = phone.answer("98")
    assert last.page == last.pages - 1
    assert "98. Suite" not in last.text and "30. Article 30" in last.text
    for page in (first, second, last):
        assert len(page.text) + 4 <= 182
    assert phone.answer("12").text.startswith("Choisi: Article 12")


def test_back_and_home_navigation(handset):
    phone = handset()
    phone.dial()
    phone.answer("2")
    assert phone.answer("0").text == HOME
    phone.answer("1")
    phone.answer("3")
    assert phone.answer("00").text == HOME


def test_pin_is_given_to_the_step_but_never_saved(store, engine, steps):
    phone = Handset(engine)
    phone.dial()
    phone.answer("2")
    assert phone.answer("500").text.startswith("PIN:")
    assert phone.answer("1111").text.startswith("PIN:")
    done = phone.answer("1234")
    assert done.end and done.text == "Payé 500 FCFA le 25/11/2026."
    assert steps.seen_pins == ["1111", "1234"]
    saved = store.load("ussd:s1")
    assert saved is not None

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    for text in strings(json.loads(saved.to_json())):
        assert "1234" not in text and "1111" not in text


def test_replayed_hop_gets_the_same_answer_without_running_steps_again(handset, steps):
    phone = handset()
    phone.dial()
    first = phone.answer("1")
    calls = steps.calls["demo.items"]
    again = phone.hop("1")
    assert again.text == first.text
    assert steps.calls["demo.items"] == calls


def test_ended_session_replays_its_last_answer(handset):
    phone = handset()
    phone.dial()
    bye = phone.answer("4")
    assert bye.end and bye.text == "Au revoir."
    assert phone.hop("4*1").text == "Au revoir."


def test_first_hop_with_input_is_a_shortcut(handset):
    assert handset(session="a").dial("5").text.startswith("Choisissez:")
    reply = handset(session="b").dial("2", "500")
    assert reply.text.startswith("PIN:")


def test_unrouted_backend_down_ends_with_the_systems_message(handset):
    phone = handset()
    phone.dial()
    reply = phone.answer("3")
    assert reply.end and reply.text == "Systèmes indisponibles."


def test_ucs2_channel_keeps_accents_and_uses_its_own_limit(handset):
    phone = handset(channel="ussd_ucs2")
    assert phone.dial().text.startswith("Bonjour Awa, être à Thiès")
    page = phone.answer("1")
    assert page.pages > 1 and len(page.text) <= 100 - 4


def test_two_sessions_of_one_number_do_not_share_state(engine):
    one, two = Handset(engine, session="one"), Handset(engine, session="two")
    one.dial()
    two.dial()
    one.answer("2")
    assert two.answer("1").text.startswith("Choisissez:")
    assert one.answer("500").text.startswith("PIN:")


def test_store_unreachable_gives_a_polite_end(steps):
    store = RedisSessionStore.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps)
    reply = engine.handle(Turn("ussd", "+221770000001", "ussd:x", None, ""))
    assert reply.end and reply.text == "Service indisponible."


def test_a_live_session_keeps_its_flow_version_after_a_reload(tmp_path, store, steps):
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    flows = FlowSet(load_menus(path))
    engine = Engine(flows, store, steps)
    old = Handset(engine, session="old")
    old.dial()
    path.write_text(DEMO.read_text(encoding="utf-8").replace("Choisissez:", "Nouveau choix:"), encoding="utf-8")
    flows.load(load_menus(path))
    assert old.answer("1").text.startswith("Choisissez:")
    new = Handset(engine, session="new", msisdn="+221770000002")
    new.dial()
    assert new.answer("1").text.startswith("Nouveau choix:")


def test_session_json_is_compact(store, steps):
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps)
    Handset(engine).dial()
    saved = store.load("ussd:s1")
    assert saved is not None and saved.node == "home"
    assert len(saved.to_json()) < 1024
    json.loads(saved.to_json())


def test_an_idle_session_is_kept_for_its_ttl_then_dropped(steps):
    seconds = [1000.0]
    store = MemorySessionStore(clock=lambda: seconds[0])
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, limits=EngineLimits(session_ttl_seconds=180))
    Handset(engine).dial()
    seconds[0] += 180
    assert store.load("ussd:s1") is not None
    seconds[0] += 1
    assert store.load("ussd:s1") is None


def test_redis_expires_an_idle_session_after_its_ttl(steps):
    need_service("Redis", REDIS_TEST_URL, 6379)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    clean_redis(client)
    try:
        store = RedisSessionStore(client, prefix="ttl:")
        engine = Engine(FlowSet(load_menus(DEMO)), store, steps, limits=EngineLimits(session_ttl_seconds=180))
        Handset(engine).dial()
        # Redis drops the key itself when its TTL runs out; what the engine must do is set it.
        assert 170 < client.ttl("ttl:s:ussd:s1") <= 180          # not the 120 s of an ended one
        assert store.load("ussd:s1") is not None
    finally:
        clean_redis(client)
        client.close()


@pytest.mark.parametrize("text", ["", "1", "1*98*98", "2*abc*0*00", "*", "**", "9*9"])
def test_any_input_sequence_answers_within_the_screen(handset, text):
    reply = handset().hop(text)
    assert len(reply.text) + 4 <= 182


def test_a_dropped_session_can_be_resumed_on_redial(engine):
    first = Handset(engine, session="first")
    first.dial()
    first.answer("2")
    assert first.answer("500").text.startswith("PIN:")
    # the network drops the session; the customer dials again
    second = Handset(engine, session="second")
    offer = second.dial()
    assert offer.text == "Reprendre ?\n1. Oui\n2. Non"
    assert second.answer("7").text.startswith("Choix invalide.\nReprendre ?")
    resumed = second.answer("1")
    assert resumed.text.startswith("PIN:")
    assert second.answer("1234").text == "Payé 500 FCFA le 25/11/2026."


def test_declining_to_resume_starts_afresh_and_finished_sessions_are_not_offered(engine):
    first = Handset(engine, session="first")
    first.dial()
    first.answer("2")  # dropped while the amount is asked
    second = Handset(engine, session="second")
    assert second.dial().text.startswith("Reprendre ?")
    assert second.answer("2").text == HOME
    second.answer("4")  # ends
    third = Handset(engine, session="third")
    assert third.dial().text == HOME


def test_resume_offer_respects_the_window(store, steps):
    clock = SettableClock(datetime(2027, 2, 28, 23, 59, tzinfo=UTC))
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, clock=clock)
    first = Handset(engine, session="first")
    first.dial()
    first.answer("2")
    clock.advance(seconds=120)                   # across midnight into March: still the window
    assert Handset(engine, session="second").dial().text.startswith("Reprendre ?")
    first = Handset(engine, session="third")
    first.dial()
    first.answer("2")
    clock.advance(seconds=121)
    assert Handset(engine, session="fourth").dial().text == HOME


def test_dialog_steps_are_told_the_time_by_the_engines_clock(store, steps):
    clock = SettableClock(datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC))
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, clock=clock)
    Handset(engine, session="before").dial()
    clock.advance(seconds=1)
    Handset(engine, session="after").dial()
    assert steps.seen_now == [datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)]


def test_no_step_starts_once_the_hop_deadline_has_passed(store):
    seconds = [0.0]

    def spend(duration: float) -> None:
        seconds[0] += duration

    steps = CountingSteps()
    steps.slow_seconds, steps.sleep = 0.15, spend    # the slow step takes 0.15 s of the engine's timer
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, limits=EngineLimits(hop_deadline_seconds=0.1),
                    timer=lambda: seconds[0])
    reply = Handset(engine).dial("8")
    assert reply.end and reply.text == "Systèmes indisponibles."
    assert "demo.items" not in steps.calls
    steps.slow_seconds = 0.0
    assert Handset(engine, session="fast").dial("8").text.startswith("Choisissez:")
