"""A session's life around its hops: what operators read in the hop metrics, the gateway's normal end, the
replay of a retried hop, a page reloaded on the web, and the closing screens of a hop that cannot be served."""

from __future__ import annotations

from pathlib import Path

from app.ops import Metrics
from engine import ChannelCapabilities, Engine, FlowSet, SessionStore, Turn
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps

NUMBER, STRANGER = "+221770000001", "+221770000009"
HOME = "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"


class Timer:
    """The engine's timer: seconds pass only when a dialog step spends them."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """One series of ``/metrics`` as an operator reads it."""
    return metrics.registry.get_sample_value(name, labels)


def metered(store: SessionStore, steps: CountingSteps) -> tuple[Engine, Metrics, Timer]:
    metrics, timer = Metrics(), Timer()
    steps.sleep = timer.spend
    return Engine(FlowSet(load_menus(DEMO)), store, steps, observer=metrics, timer=timer, hop_key=b"k"), metrics, timer


def test_the_hop_metrics_count_each_hop_by_channel_and_end_with_its_time_in_the_engine_and_in_steps(store):
    steps = CountingSteps()
    steps.slow_seconds = 0.25              # the "8" shortcut runs a slow step, then the list's step
    engine, metrics, _ = metered(store, steps)
    phone = Handset(engine)
    assert phone.dial("8").text.startswith("Choisissez:")
    assert sample(metrics, "engine_hops_total", channel="ussd", end="false") == 1
    assert sample(metrics, "engine_hop_seconds_sum", channel="ussd") == 0.25
    assert sample(metrics, "engine_step_seconds_sum", channel="ussd") == 0.25
    assert sample(metrics, "engine_own_seconds_sum", channel="ussd") == 0.0
    assert phone.answer("0").text == HOME
    assert phone.answer("4").end
    assert sample(metrics, "engine_hops_total", channel="ussd", end="false") == 2
    assert sample(metrics, "engine_hops_total", channel="ussd", end="true") == 1
    assert sample(metrics, "engine_hop_seconds_count", channel="ussd") == 3
    assert sample(metrics, "engine_step_seconds_sum", channel="ussd") == 0.25


def test_a_replayed_a_strangers_and_a_failed_hop_spend_no_time_in_steps(store):
    steps = CountingSteps()
    del steps._steps["demo.broken"]        # "3. Panne" names a step this registry does not have
    engine, metrics, _ = metered(store, steps)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    assert phone.hop("").replayed                                     # the gateway's retry
    assert Handset(engine, msisdn=STRANGER).dial().text == "Service indisponible."
    assert phone.answer("3").text == "Service indisponible."        # the hop fails
    assert sample(metrics, "engine_hop_seconds_count", channel="ussd") == 4
    assert sample(metrics, "engine_step_seconds_sum", channel="ussd") == 0.0


def test_after_the_gateways_normal_end_a_hop_under_the_same_session_id_starts_afresh(store):
    steps = CountingSteps()
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, hop_key=b"k")
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    assert phone.answer("1").text.startswith("Choisissez:")
    engine.finish(channel="ussd", session_key="ussd:s1", user_id=NUMBER, status="Success")
    # A gateway that reuses its session ids: the next dial is a new session, not the old list.
    assert phone.dial().text == HOME
    assert steps.calls["demo.greet"] == 2


def test_a_retry_of_the_hop_that_showed_the_last_page_gets_that_last_page_again(engine):
    phone = Handset(engine)
    phone.dial()
    reply = phone.answer("1")
    while reply.page < reply.pages - 1:
        reply = phone.answer("98")
    assert reply.pages > 2 and "Article 30" in reply.text
    again = phone.hop("*".join(phone.inputs))
    assert again.replayed and again.text == reply.text and again.page == reply.page


def test_a_retry_answered_by_a_worker_with_larger_screens_shows_the_page_it_can_lay_out(store):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=b"k")
    phone = Handset(engine)
    phone.dial()
    phone.answer("1")
    third = phone.answer("98")
    third = phone.answer("98")
    assert third.page == 2
    wide = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=b"k")
    wide.declare(ChannelCapabilities("ussd", max_chars=4096))
    phone.engine = wide
    again = phone.hop("*".join(phone.inputs))
    assert again.replayed and again.pages == 1
    assert again.text.startswith("Choisissez:\n1. Article 1") and "30. Article 30" in again.text


def test_a_retry_of_a_hop_answered_with_an_error_line_shows_the_error_line_again(engine):
    phone = Handset(engine)
    phone.dial()
    wrong = phone.answer("9")
    assert wrong.text == "Choix invalide.\n" + HOME
    again = phone.hop("*".join(phone.inputs))
    assert again.replayed and again.text == wrong.text


def test_a_reloaded_page_shows_the_callers_last_answer_and_nothing_to_anyone_else(engine):
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    listed = phone.answer("1")
    reloaded = engine.last_answer("ussd:s1", NUMBER)
    assert reloaded is not None and reloaded.replayed
    assert (reloaded.text, reloaded.screen, reloaded.end) == (listed.text, listed.screen, False)
    assert engine.last_answer("ussd:s1", STRANGER) is None
    assert engine.last_answer("ussd:nobody", NUMBER) is None


def test_a_stranger_on_a_callers_session_is_closed_in_the_language_they_asked_for(engine):
    Handset(engine, msisdn=NUMBER).dial()
    reply = engine.handle(Turn("ussd", STRANGER, "ussd:s1", None, "", language_hint="en"))
    assert reply.end and reply.text == "Service unavailable."
    # The agents' simulator names no node for a closing screen: it is no screen of the menus.
    assert reply.screen is not None and reply.screen.node == ""


def test_a_closing_text_is_laid_out_for_the_callers_channel(store, tmp_path):
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace('"Service indisponible."', '"Indisponible – rappelez."'),
                     encoding="utf-8")
    engine = Engine(FlowSet(load_menus(menus)), store, CountingSteps(), hop_key=b"k")
    Handset(engine, msisdn=NUMBER).dial()
    # GSM-7 has no dash of that kind: the USSD screen shows a hyphen.
    assert Handset(engine, msisdn=STRANGER).dial().text == "Indisponible - rappelez."


def closing_text(tmp_path: Path, text: str) -> Path:
    """The demo menus with another "error" closing text."""
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace('"Service indisponible."', f'"{text}"'),
                     encoding="utf-8")
    return menus


def test_a_closing_text_too_long_for_one_screen_shows_its_first_page_without_a_paging_line(store, tmp_path):
    menus = closing_text(tmp_path, "Service indisponible.\\nMerci de réessayer.\\nNous revenons très vite, promis.")
    engine = Engine(FlowSet(load_menus(menus)), store, CountingSteps(), hop_key=b"k")
    engine.declare(ChannelCapabilities("ussd", max_chars=52))
    Handset(engine, msisdn=NUMBER).dial()
    reply = Handset(engine, msisdn=STRANGER).dial()
    # The session ends here: no "98" line offers a page the customer could not ask for.
    assert reply.end and reply.text == "Service indisponible.\nMerci de réessayer."


def test_a_closing_text_of_several_lines_that_fits_one_screen_shows_every_line(store, tmp_path):
    menus = closing_text(tmp_path, "Service indisponible.\\nMerci de réessayer.")
    engine = Engine(FlowSet(load_menus(menus)), store, CountingSteps(), hop_key=b"k")
    Handset(engine, msisdn=NUMBER).dial()
    assert Handset(engine, msisdn=STRANGER).dial().text == "Service indisponible.\nMerci de réessayer."
