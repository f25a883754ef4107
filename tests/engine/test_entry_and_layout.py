"""Where a session opens and how its screens are laid out and kept: the service code's flow, a chat command
that waits for the main menu, a start straight into a step, the paging words and coded values in the
customer's language, a retry on a channel without navigation lines, the closing screens when the session is
busy or the store is down, the security report of a stranger's hop, and the resume window's edges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from app.ops import Metrics
from engine import ChannelCapabilities, Engine, EngineLimits, FlowSet, MemorySessionStore, SessionStore, Turn
from engine.security_audit import SecurityEvent
from engine.store import LockedSession, StoreUnavailable
from menus import load_menus

from ..support.clock import SettableClock
from .conftest import DEMO, Handset
from .fakes import CountingSteps
from .resume_steps import PIN, ResumeSteps

LIFECYCLE = Path(__file__).parent / "flows" / "lifecycle.yaml"
NUMBER, STRANGER = "+221770000001", "+221770000009"
OFFER = "Reprendre ?\n1. Oui\n2. Non"


class Security:
    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def record(self, event: SecurityEvent) -> None:
        self.events.append(event)


class DownStore(MemorySessionStore):
    """A session store that cannot be reached."""

    @contextmanager
    def locked(self, key: str, *args: object, **kwargs: object) -> Iterator[LockedSession]:
        raise StoreUnavailable("connection refused")
        yield  # pragma: no cover


def dashed(tmp_path: Path) -> Path:
    """The demo menus with closing texts GSM-7 cannot show as written (an en dash)."""
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8").replace('"Service indisponible."', '"Indisponible – rappelez."')
                    .replace('"Occupé."', '"Occupé – rappelez."'), encoding="utf-8")
    return path


def lifecycle(store: SessionStore, **kwargs: object) -> Engine:
    return Engine(FlowSet(load_menus(LIFECYCLE)), store, ResumeSteps(), hop_key=b"k", **kwargs)  # type: ignore[arg-type]


def test_the_service_code_dialled_chooses_the_flow(store: SessionStore):
    engine = lifecycle(store)
    reply = engine.handle(Turn("ussd", NUMBER, "ussd:s1", None, "", entry="*200#"))
    assert reply.text == "Pannes\n1. Fin"
    assert Handset(engine, session="s2").dial().text.startswith("Accueil\n1. Payer")


def test_a_chat_command_waits_for_the_main_menu_when_the_start_shows_another_screen_first(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(vip=True))

    def send(text: str, message_id: str) -> str:
        return engine.handle(Turn("chat", NUMBER, f"chat:{NUMBER}", text, message_id)).text

    assert send("LISTE", "m1").startswith("Bonjour cher Awa\n1. Continuer")
    assert send("1", "m2").startswith("Choisissez:\n1. Article 1")


def test_a_chatbot_intent_straight_into_a_step_runs_it(store: SessionStore):
    engine = lifecycle(store)
    reply = engine.handle(Turn("bot", "rasa-7", "bot:rasa-7", "paiement sécurisé", "r1", intent="secure"))
    assert reply.text.startswith("PIN:")


def test_paging_words_are_in_the_customers_language(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())

    def hop(text: str) -> str:
        segments = tuple(text.split("*")) if text else ()
        return engine.handle(Turn("ussd", NUMBER, "ussd:s1", segments[-1] if segments else None, text, segments,
                                  language_hint="en")).text

    hop("")
    first = hop("1")
    assert first.startswith("Choose:\n1. Article 1") and first.endswith("98. More")
    assert "99. Prev. 98. More" in hop("1*98")


def test_a_coded_value_is_shown_in_the_customers_words_and_an_empty_message_is_no_answer(store: SessionStore):
    engine = lifecycle(store)
    chat = "bot:rasa-7"
    assert engine.handle(Turn("bot", "rasa-7", chat, "salut", "r1")).text.endswith("3. Message")
    assert engine.handle(Turn("bot", "rasa-7", chat, "3", "r2")).text.startswith("Votre message:")
    assert engine.handle(Turn("bot", "rasa-7", chat, None, "r3")).text.startswith("Saisie invalide.\nVotre message:")
    assert engine.handle(Turn("bot", "rasa-7", chat, "panne", "r4")).text == "Noté: Panne de courant."


def test_a_retry_on_a_channel_without_navigation_lines_shows_none_either(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=b"k")
    engine.declare(ChannelCapabilities("chat", max_chars=4096, show_navigation=False))
    first = engine.handle(Turn("chat", NUMBER, f"chat:{NUMBER}", "LISTE", "m1"))
    again = engine.handle(Turn("chat", NUMBER, f"chat:{NUMBER}", "LISTE", "m1"))
    assert "Retour" not in first.text
    assert again.replayed and again.text == first.text


def test_a_stranger_on_a_callers_session_is_reported_as_such(store: SessionStore):
    security = Security()
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), security=security, hop_key=b"k")
    Handset(engine, msisdn=NUMBER).dial()
    Handset(engine, msisdn=STRANGER).dial()
    assert [(e.kind, e.channel, e.subject, e.detail) for e in security.events] == [
        ("caller_mismatch", "ussd", STRANGER, "hop on another caller's session")]


def test_a_busy_session_is_told_in_the_channels_characters_and_spends_nothing_in_steps(store, tmp_path):
    metrics = Metrics()
    engine = Engine(FlowSet(load_menus(dashed(tmp_path))), store, CountingSteps(), observer=metrics,
                    limits=EngineLimits(lock_wait_seconds=0.05), hop_key=b"k")
    with store.lock("ussd:s1"):           # another hop of the same session, still running
        reply = Handset(engine).dial()
    assert reply.end and reply.text == "Occupé - rappelez."
    assert reply.transient          # an adapter whose provider retries asks it to (SMS, Meta: 503)
    assert metrics.registry.get_sample_value("engine_step_seconds_sum", {"channel": "ussd"}) == 0.0
    assert not Handset(engine).dial().transient   # once free, a normal answer


def test_with_the_store_down_the_customer_is_told_in_their_language_and_channels_characters(tmp_path):
    metrics = Metrics()
    engine = Engine(FlowSet(load_menus(dashed(tmp_path))), DownStore(), CountingSteps(), observer=metrics)
    french = Handset(engine).dial()
    assert (french.text, french.end, french.transient) == ("Indisponible - rappelez.", True, True)
    english = engine.handle(Turn("ussd", NUMBER, "ussd:s2", None, "", language_hint="en"))
    assert (english.text, english.end, english.transient) == ("Service unavailable.", True, True)
    assert metrics.registry.get_sample_value("engine_step_seconds_sum", {"channel": "ussd"}) == 0.0


def test_a_resume_window_of_one_second_still_offers_a_redial_in_the_same_second(store: SessionStore):
    clock = SettableClock(datetime(2027, 3, 1, tzinfo=UTC))
    engine = lifecycle(store, clock=clock, limits=EngineLimits(resume_window_seconds=1))
    Handset(engine, session="first").dial()
    Handset(engine, session="first").answer("1")
    assert Handset(engine, session="again").dial().text == OFFER


def reworded(tmp_path: Path, *pairs: tuple[str, str]) -> Path:
    text = LIFECYCLE.read_text(encoding="utf-8")
    for old, new in pairs:
        text = text.replace(old, new)
    path = tmp_path / "menus.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_declining_an_offer_made_before_a_menu_reload_opens_the_menus_the_offer_was_made_in(store, tmp_path):
    flows = FlowSet(load_menus(LIFECYCLE))
    engine = Engine(flows, store, ResumeSteps(), hop_key=b"k")
    first = Handset(engine, session="first")
    first.dial()
    first.answer("1")
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER
    flows.load(load_menus(reworded(tmp_path, ('"Accueil"', '"Bienvenue"'))))
    assert again.answer("2").text.startswith("Accueil\n1. Payer")


def test_a_resumed_session_dropped_again_is_offered_again_in_the_menus_it_started_with(store, tmp_path):
    flows = FlowSet(load_menus(LIFECYCLE))
    engine = Engine(flows, store, ResumeSteps(), hop_key=b"k")
    first = Handset(engine, session="first")
    first.dial()
    first.answer("1")
    # The new menus ask the amount on a screen of another name.
    flows.load(load_menus(reworded(tmp_path, ("pay_amount", "amount_v2"))))
    second = Handset(engine, session="second")
    assert second.dial().text == OFFER
    assert second.answer("1").text.startswith("Montant:")
    third = Handset(engine, session="third")
    assert third.dial().text == OFFER
    assert third.answer("1").text.startswith("Montant:")
    assert third.answer("500").text.startswith("PIN:")
    assert third.answer(PIN).text.startswith("Payer 500 ?")


def test_a_fixed_option_of_a_list_keeps_the_item_chosen_before(store: SessionStore, tmp_path):
    text = DEMO.read_text(encoding="utf-8").replace(
        '        text: {fr: "Choisissez:", en: "Choose:"}\n',
        '        text: {fr: "Choisissez:", en: "Choose:"}\n'
        '        options: [{label: {fr: "Dernier choix", en: "Last pick"}, target: last_pick}]\n').replace(
        "      picked:\n",
        '      last_pick:\n        kind: message\n        text: {fr: "Dernier: {picked.label}", en: "Last: {picked.label}"}\n'
        "      picked:\n")
    menus = tmp_path / "menus.yaml"
    menus.write_text(text, encoding="utf-8")
    phone = Handset(Engine(FlowSet(load_menus(menus)), store, CountingSteps()))
    phone.dial()
    assert phone.answer("1").text.startswith("Choisissez:\n1. Dernier choix\n2. Article 1")
    assert phone.answer("3").text.startswith("Choisi: Article 2")
    phone.answer("0")
    assert phone.answer("1").text.startswith("Dernier: Article 2")


def test_a_hop_that_fails_is_told_in_the_customers_language_and_channels_characters(store, tmp_path):
    steps = CountingSteps()
    del steps._steps["demo.broken"]        # "3. Panne" names a step this registry does not have
    engine = Engine(FlowSet(load_menus(dashed(tmp_path))), store, steps, hop_key=b"k")
    phone = Handset(engine)
    phone.dial()
    assert phone.answer("3").text == "Indisponible - rappelez."

    def english(text: str) -> str:
        segments = tuple(text.split("*")) if text else ()
        return engine.handle(Turn("ussd", STRANGER, "ussd:en", segments[-1] if segments else None, text, segments,
                                  language_hint="en")).text

    english("")
    assert english("3") == "Service unavailable."


def test_inputs_dialled_with_the_service_code_are_never_read_as_a_command(store: SessionStore, tmp_path):
    menus = tmp_path / "menus.yaml"
    menus.write_text(LIFECYCLE.read_text(encoding="utf-8").replace(
        '  ussd: {"*": main, "*200#": outage}',
        '  ussd: {codes: {"*": main}, unknown: bye, keywords: {pay: {words: {fr: [PAYER], en: [PAY]}, node: pay_amount}}}'),
        encoding="utf-8")
    engine = Engine(FlowSet(load_menus(menus)), store, ResumeSteps(), hop_key=b"k")
    assert Handset(engine).dial("1").text.startswith("Montant:")
