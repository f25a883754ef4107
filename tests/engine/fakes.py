"""Real implementations of the engine's ports for its tests: a step registry of plain functions, an audit
that keeps what it is told."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from engine.audit import SessionRecord
from engine.steps import StepContext, StepResult


class CountingSteps:
    def __init__(self, vip: bool = False, items: int = 30) -> None:
        self.calls: dict[str, int] = {}
        self.seen_pins: list[str] = []
        self.seen_now: list[datetime] = []               # what each greeting step was told "now" is
        self.seen_conversations: list[str] = []          # and which conversation it was in
        self.seen_customers: list[str] = []              # and for whom ("" for nobody: a guest)
        self.vip = vip
        self.items = items
        self.slow_seconds = 0.0
        self.sleep: Callable[[float], None] = time.sleep   # how the slow step spends its time
        self._steps: dict[str, Callable[[StepContext], StepResult]] = {
            "demo.greet": self._greet,
            "demo.items": self._items,
            "demo.check_pin": self._check_pin,
            "demo.broken": lambda ctx: StepResult("backend_down"),
            "demo.slow": self._slow,
        }

    def _greet(self, ctx: StepContext) -> StepResult:
        self.seen_now.append(ctx.now)
        self.seen_conversations.append(ctx.conversation_id)
        self.seen_customers.append(ctx.user_id)
        return StepResult("ok", {"name": "Awa", "vip": self.vip, "when": "2026-11-25"})

    def _items(self, ctx: StepContext) -> StepResult:
        self.seen_customers.append(ctx.user_id)
        return StepResult("ok", {"items": [{"label": f"Article {i}", "amount": str(i * 1000)}
                                           for i in range(1, self.items + 1)]})

    def _slow(self, ctx: StepContext) -> StepResult:
        self.sleep(self.slow_seconds)
        return StepResult("ok")

    def _check_pin(self, ctx: StepContext) -> StepResult:
        self.seen_pins.append(ctx.secrets.get("pin", ""))
        return StepResult("ok", {"receipt": "R-0001"}) if ctx.secrets.get("pin") == "1234" else StepResult("wrong")

    def get(self, name: str) -> Callable[[StepContext], StepResult] | None:
        step = self._steps.get(name)
        if step is None:
            return None

        def counted(ctx: StepContext) -> StepResult:
            self.calls[name] = self.calls.get(name, 0) + 1
            return step(ctx)
        return counted

    def names(self) -> set[str]:
        return set(self._steps)

    def outcomes(self, name: str) -> frozenset[str]:
        return frozenset({"ok", "wrong", "backend_down"})


class RecordingAudit:
    """The audit port, keeping what it is told: sessions recorded and the gateway's reports."""

    def __init__(self) -> None:
        self.records: list[SessionRecord] = []
        self.completed: list[tuple[str, dict[str, object]]] = []

    def record(self, record: SessionRecord) -> None:
        self.records.append(record)

    def complete(self, session_key: str, **report: object) -> None:
        self.completed.append((session_key, report))
