"""The change-PIN steps check the PIN gate themselves, whatever led to them.

The engine never resumes a session past its gate; these steps do not rely on it: without
the mark that the current PIN was checked in this session for the change, a new PIN is
neither staged nor confirmed, and the customer is sent back through the gate.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from app.factory import build_deps
from app.settings import Settings
from app.storage import make_sessions, migrate
from dialogs.registry import Deps, DialogRegistry
from engine.steps import StepContext, StepResult

NUMBER = "+221770000001"
PASSED = {"pin_next": "pref_pin_new", "pin_verified": "pref_pin_new"}


@pytest.fixture
def deps(tmp_path: Path) -> Deps:
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    migrate(url)
    deps = build_deps(Settings(database_url=url), make_sessions(url))
    assert deps.pins is not None
    deps.pins.set_pin(NUMBER, "4821")
    return deps


def run(deps: Deps, name: str, data: dict[str, Any], secrets: dict[str, str]) -> StepResult:
    step = DialogRegistry(deps).get(name)
    assert step is not None, name
    return step(StepContext(user_id=NUMBER, channel="ussd", language="fr", session_key="ussd:t",
                            data=MappingProxyType(data), params=MappingProxyType({}),
                            secrets=MappingProxyType(secrets), now=datetime.now(UTC)))


def pin_is(deps: Deps, pin: str) -> bool:
    assert deps.pins is not None
    return deps.pins.verify(NUMBER, pin, datetime.now(UTC)).result == "ok"


@pytest.mark.parametrize("data", [{}, {"pin_next": "pref_pin_new"}, {"pin_verified": "pay_initiate"}])
def test_a_new_pin_is_not_staged_without_the_gate_passed_for_the_change(deps, data):
    assert run(deps, "security.stage_pin", data, {"new_pin": "7395"}).outcome == "denied"
    assert run(deps, "security.confirm_pin", data, {"pin": "7395"}).outcome == "denied"
    assert pin_is(deps, "4821")


def test_a_pin_staged_behind_the_gate_is_not_confirmed_without_it(deps):
    assert run(deps, "security.stage_pin", PASSED, {"new_pin": "7395"}).outcome == "ok"
    assert run(deps, "security.confirm_pin", {}, {"pin": "7395"}).outcome == "denied"
    assert pin_is(deps, "4821")


def test_behind_the_gate_the_pin_changes_once_and_the_pass_is_spent(deps):
    assert run(deps, "security.stage_pin", PASSED, {"new_pin": "7395"}).outcome == "ok"
    done = run(deps, "security.confirm_pin", PASSED, {"pin": "7395"})
    assert done.outcome == "ok"
    assert "pin_verified" in done.data and done.data["pin_verified"] is None
    assert pin_is(deps, "7395")


def in_conversation(deps: Deps, name: str, data: dict[str, Any], secrets: dict[str, str],
                    session_key: str) -> StepResult:
    step = DialogRegistry(deps).get(name)
    assert step is not None, name
    return step(StepContext(user_id=NUMBER, channel="ussd", language="fr", session_key=session_key,
                            data=MappingProxyType(data), params=MappingProxyType({}),
                            secrets=MappingProxyType(secrets), now=datetime.now(UTC)))


def test_without_an_outbox_a_confirmation_run_again_answers_changed_and_no_one_else_learns_the_pin(deps):
    # The embedded default's stores (SQLite, a throttle in this process) wired without an outbox.
    bare = replace(deps, outbox=None)
    assert in_conversation(bare, "security.stage_pin", PASSED, {"new_pin": "7395"}, "ussd:mine").outcome == "ok"
    assert in_conversation(bare, "security.confirm_pin", PASSED, {"pin": "7395"}, "ussd:mine").outcome == "ok"
    # The gateway's retry of that hop, its session's save lost: the same session, the same PIN.
    again = in_conversation(bare, "security.confirm_pin", PASSED, {"pin": "7395"}, "ussd:mine")
    assert again.outcome == "ok" and again.data["pin_verified"] is None
    # Another PIN in that retry, or the same PIN from another conversation: told nothing of the PIN set.
    assert in_conversation(bare, "security.confirm_pin", PASSED, {"pin": "1593"}, "ussd:mine").outcome == "mismatch"
    assert in_conversation(bare, "security.confirm_pin", PASSED, {"pin": "7395"}, "ussd:other").outcome == "mismatch"
    assert pin_is(deps, "7395")
