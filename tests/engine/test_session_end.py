"""The gateway's end-of-session event, and a menu reload under a live session in English: what the audit
trail, the security audit and the customer see."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine import ChannelCapabilities, Engine, FlowSet, RedisSessionStore, Reply, SessionStore, Turn
from engine.security_audit import SecurityEvent
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps, RecordingAudit
from .test_hop_safety import prefix, redis_client  # noqa: F401  (fixtures: a Redis key prefix of this test's own)

NUMBER, OTHER = "+221770000001", "+221770000009"



class Security:
    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def record(self, event: SecurityEvent) -> None:
        self.events.append(event)


class EnglishHandset(Handset):
    def hop(self, text: str) -> Reply:
        segments = tuple(text.split("*")) if text else ()
        return self.engine.handle(Turn(self.channel, self.msisdn, f"{self.channel}:{self.session}",
                                       segments[-1] if segments else None, text, segments, language_hint="en"))


def test_the_gateways_end_of_session_report_reaches_the_audit_trail_masked(store: SessionStore):
    audit = RecordingAudit()
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), audit=audit)
    Handset(engine, msisdn=NUMBER).dial()
    engine.finish(channel="ussd", session_key="ussd:s1", user_id=NUMBER, status="Failed", duration_ms=12_600,
                  error="timeout", hops=3)
    assert audit.completed == [("ussd:s1", {"channel": "ussd", "user_masked": "+2217*****001", "status": "Failed",
                                            "duration_ms": 12_600, "error": "timeout", "hops": 3})]


def test_an_end_of_session_event_for_a_session_long_gone_is_harmless(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    engine.finish(channel="ussd", session_key="ussd:expired", user_id=NUMBER, status="Success")
    assert store.load("ussd:expired") is None


def test_another_numbers_end_of_session_event_is_a_security_event_and_changes_nothing(store: SessionStore):
    security = Security()
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), security=security)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    engine.finish(channel="ussd", session_key="ussd:s1", user_id=OTHER, status="Success")
    assert [(e.kind, e.channel, e.subject, e.detail) for e in security.events] == [
        ("caller_mismatch", "ussd", OTHER, "end-of-session event for another caller's session")]
    session = store.load("ussd:s1")
    assert session is not None and not session.ended
    assert phone.answer("1").text.startswith("Choisissez:")


def _reworded(tmp_path: Path) -> Path:
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8").replace("Choisissez:", "Votre choix:"), encoding="utf-8")
    return path


def test_after_a_reload_the_notice_is_in_the_customers_language_and_back_still_leads_home(store, tmp_path):
    before = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    after = Engine(FlowSet(load_menus(_reworded(tmp_path))), store, CountingSteps())
    phone = EnglishHandset(before, msisdn=NUMBER)
    home = phone.dial().text
    listed = phone.answer("1").text
    phone.engine = after                 # the next hop reaches a worker that loaded the new menus
    moved = phone.answer("0")            # not applied: the customer sees where they are, under a notice
    assert moved.text.startswith("Menu updated.\n" + listed.split("\n")[0] + "\n")
    assert phone.answer("0").text == home


def test_an_ended_session_is_recorded_in_the_audit_trail_with_its_path(store: SessionStore):
    audit = RecordingAudit()
    at = datetime.fromtimestamp(1_000.0, UTC)
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), audit=audit, clock=lambda: at)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    phone.answer("1")
    phone.answer("0")
    assert audit.records == []            # recorded once it ends
    assert phone.answer("4").end
    [record] = audit.records
    assert (record.session_key, record.channel, record.user_masked, record.flow) == (
        "ussd:s1", "ussd", "+2217*****001", "main")
    assert record.version == engine.flows.current("main").version
    assert record.nodes == ("greet", "route", "home", "list_load", "list", "bye")
    assert (record.outcome, record.started_at, record.ended_at, record.hops) == ("bye", 1_000.0, 1_000.0, 4)


def test_inputs_dialled_with_the_code_stop_at_a_mistake_or_an_end(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    ended = Handset(engine, session="a").dial("4", "1")
    assert (ended.text, ended.end) == ("Au revoir.", True)
    wrong = Handset(engine, session="b").dial("9", "1")
    assert wrong.text.startswith("Choix invalide.\nBonjour Awa") and not wrong.end


def test_back_after_a_shortcut_returns_to_the_main_menu(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    phone = Handset(engine)
    assert phone.dial("5").text.startswith("Choisissez:")
    assert phone.answer("0").text == "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"


def test_a_declared_channel_is_paged_to_its_size_kept_as_long_as_its_idle_time_and_speaks_its_words(
        redis_client, prefix):  # noqa: F811
    engine = Engine(FlowSet(load_menus(DEMO)), RedisSessionStore(redis_client, prefix=prefix), CountingSteps(),
                    hop_key=b"k")
    engine.declare(ChannelCapabilities("chat", max_chars=60, navigation_words={"menu": "00"}), idle_seconds=900)
    phone = Handset(engine, channel="chat")
    phone.dial()
    listed = phone.answer("1")
    assert listed.pages > 1 and len(listed.text) <= 60
    assert 890 <= redis_client.ttl(f"{prefix}s:chat:s1") <= 900
    assert phone.answer("Menu").text.startswith("Bonjour Awa")


# ---------------------------------------------------------------- a hop after the end
USSD = ChannelCapabilities("ussd", 182, "gsm7", 80, 4)
def test_a_hop_on_an_ended_session_of_a_gateway_keyed_channel_gets_a_polite_end_and_changes_nothing(
        store: SessionStore):
    security, steps = Security(), CountingSteps()
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, security=security,
                    hop_key=b"k")
    engine.declare(USSD, key_ends_with_session=True)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    phone.answer("1")                                 # the list: its step runs
    phone.answer("0")
    assert phone.answer("4").text == "Au revoir."
    kept = store.load("ussd:s1")
    calls = dict(steps.calls)
    again = phone.answer("1")                         # one more input on the ended session
    assert (again.text, again.end) == ("Session terminée.", True)
    assert steps.calls == calls                       # the greeting and the list are not run again
    assert store.load("ussd:s1") == kept
    assert [(e.kind, e.channel, e.subject, e.detail) for e in security.events] == [
        ("session_reused", "ussd", NUMBER, "hop on an ended session")]
    phone.inputs.pop()
    retried = phone.hop("*".join(phone.inputs))      # the gateway's retry of the last hop: its END again
    assert (retried.text, retried.end, retried.replayed) == ("Au revoir.", True, True)


class StepTimes:
    """The hop observer the app's metrics hear: the time spent in dialog steps per hop."""

    def __init__(self) -> None:
        self.step_seconds: list[float] = []

    def observe(self, *, channel: str, seconds: float, step_seconds: float, wait_seconds: float,
                end: bool, cpu_seconds: float) -> None:
        self.step_seconds.append(step_seconds)


def test_the_polite_end_after_an_end_is_in_the_sessions_language(store: SessionStore):
    times = StepTimes()
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=b"k",
                    observer=times)
    engine.declare(USSD, key_ends_with_session=True)
    phone = EnglishHandset(engine, msisdn=NUMBER)
    assert phone.dial("4").text == "Goodbye."
    assert phone.answer("1").text == "Session over."
    assert times.step_seconds[-1] == 0.0                  # no step ran: the metrics say so


def test_on_a_channel_keyed_by_user_a_message_after_an_end_starts_anew(store: SessionStore):
    security = Security()
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), security=security, hop_key=b"k")
    engine.declare(ChannelCapabilities("chat", max_chars=4096), idle_seconds=900)

    def message(channel: str, text: str, message_id: str) -> str:
        return engine.handle(Turn(channel, NUMBER, f"{channel}:{NUMBER}", text, message_id)).text

    for channel in ("chat", "other"):       # declared keyed by user, or not declared at all
        assert message(channel, "Bonjour", "m1").startswith("Bonjour Awa")
        assert message(channel, "4", "m2") == "Au revoir."
        assert message(channel, "Bonjour", "m3").startswith("Bonjour Awa")
    assert security.events == []
