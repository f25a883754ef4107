"""The dialog registry is an instance built from what it is given, not filled by imports."""

from __future__ import annotations

import pytest

from dialogs import keywords, preferences
from dialogs.registry import DIALOG_MODULES, DialogRegistry, known_steps, step
from engine.steps import StepContext, StepResult


class _NoDeps:
    """No back end: the steps under test here never call one."""


def test_a_registry_holds_only_the_steps_it_was_built_from():
    registry = DialogRegistry(_NoDeps(), [keywords.take_amount])  # type: ignore[arg-type]
    assert registry.names() == {"keywords.take_amount"}
    assert registry.get("account.identify") is None
    assert registry.outcomes("keywords.take_amount") == {"ok", "backend_down", "not_found"}


def test_a_module_gives_exactly_its_own_steps():
    names = set(known_steps([preferences]))
    assert names == {"preferences.set_language", "preferences.load_alerts", "preferences.toggle_alert",
                     "preferences.load_channel", "preferences.set_channel", "preferences.send_email_code",
                     "preferences.resend_email_code", "preferences.confirm_email"}


def test_the_product_registry_has_every_module_and_a_step_given_twice_or_unmarked_fails_loudly():
    assert {"account.identify", "keywords.stop_all", "payments.initiate"} <= set(known_steps(DIALOG_MODULES))

    @step("keywords.take_amount", outcomes={"ok"})
    def impostor(ctx: StepContext, deps: object) -> StepResult:
        return StepResult()

    with pytest.raises(ValueError, match="'keywords.take_amount' is given twice"):
        known_steps([keywords, impostor])
    with pytest.raises(ValueError, match="is not marked with @step"):
        known_steps([len])  # type: ignore[list-item]
