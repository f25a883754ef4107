"""What the engine tells a dialog step and what it does with the step's answer: the hop's channel, language,
session and instant; values a step clears; a step that raises or starts past the hop's deadline, as the
customer and the audit trail see them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine import Engine, EngineLimits, FlowSet, SessionStore, Turn
from engine.steps import StepContext, StepResult
from menus import load_menus

from ..support.clock import SettableClock
from .conftest import DEMO, Handset
from .fakes import CountingSteps, RecordingAudit
from .resume_steps import ResumeSteps

RESUME_FLOW = Path(__file__).parent / "flows" / "resume.yaml"



class Timer:
    """The engine's timer: seconds pass only when the slow dialog step spends them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


def test_a_step_is_told_the_hops_channel_language_and_session(store: SessionStore):
    told: list[tuple[str, str, str]] = []
    steps = CountingSteps()
    greet = steps._steps["demo.greet"]

    def telling(ctx: StepContext) -> StepResult:
        told.append((ctx.channel, ctx.language, ctx.session_key))
        return greet(ctx)

    steps._steps["demo.greet"] = telling
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps)
    engine.handle(Turn("whatsapp", "+221770000001", "whatsapp:+221770000001", None, "m1", language_hint="en"))
    assert told == [("whatsapp", "en", "whatsapp:+221770000001")]


def test_every_step_of_one_hop_is_told_the_hops_instant_however_long_the_hop(store: SessionStore):
    clock = SettableClock(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    seen: list[datetime] = []
    steps = CountingSteps()
    steps.sleep = lambda seconds: clock.advance(seconds=seconds)     # the slow step takes 2 s of the clock
    steps.slow_seconds = 2.0
    items = steps._steps["demo.items"]

    def listing(ctx: StepContext) -> StepResult:
        seen.append(ctx.now)
        return items(ctx)

    steps._steps["demo.items"] = listing
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, clock=clock)
    assert Handset(engine).dial("8").text.startswith("Choisissez:")
    assert steps.seen_now == seen == [datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)]


def test_without_a_clock_steps_are_told_an_aware_utc_instant(store: SessionStore):
    steps = CountingSteps()
    Handset(Engine(FlowSet(load_menus(DEMO)), store, steps)).dial()
    [now] = steps.seen_now
    assert now.tzinfo is UTC


def test_a_value_a_step_clears_is_no_longer_shown(store: SessionStore):
    steps = CountingSteps()
    items = steps._steps["demo.items"]
    steps._steps["demo.items"] = lambda ctx: StepResult("ok", {**items(ctx).data, "name": None})
    phone = Handset(Engine(FlowSet(load_menus(DEMO)), store, steps))
    assert phone.dial().text.startswith("Bonjour Awa,")
    phone.answer("1")
    assert phone.answer("0").text.startswith("Bonjour -,")      # a missing value shows as "-"


def test_a_step_starting_exactly_at_the_hops_deadline_still_runs(store: SessionStore):
    timer, steps = Timer(), CountingSteps()
    steps.sleep, steps.slow_seconds = timer.spend, 0.125
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, limits=EngineLimits(hop_deadline_seconds=0.125),
                    timer=timer)
    assert Handset(engine).dial("8").text.startswith("Choisissez:")
    assert steps.calls["demo.items"] == 1


def test_a_hop_past_its_deadline_ends_the_session_recorded_as_deadline(store: SessionStore):
    timer, steps, audit = Timer(), CountingSteps(), RecordingAudit()
    steps.sleep, steps.slow_seconds = timer.spend, 0.25
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, audit=audit,
                    limits=EngineLimits(hop_deadline_seconds=0.125), timer=timer)
    reply = Handset(engine).dial("8")
    assert reply.end and reply.text == "Systèmes indisponibles."
    [record] = audit.records
    assert record.outcome == "deadline"


def test_a_step_that_raises_ends_the_session_recorded_as_an_error(store: SessionStore):
    audit = RecordingAudit()
    engine = Engine(FlowSet(load_menus(RESUME_FLOW)), store, ResumeSteps(), audit=audit, hop_key=b"k")
    phone = Handset(engine)
    phone.dial()
    reply = phone.answer("5")
    assert reply.end and reply.text == "Service indisponible."
    [record] = audit.records
    assert (record.outcome, record.nodes) == ("error", ("home", "broken"))
