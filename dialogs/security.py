"""The PIN gate in front of sensitive steps (payment, deferral, token purchase, PIN change).

A journey sends the customer through the shared ``pin_gate`` nodes with
``security.require_pin`` (param ``next``: the node to reach once the PIN is right). The
protected step then calls ``pin_passed(ctx, "<its node>")`` and clears the mark, so each
sensitive action needs its own PIN entry. PIN values only ever travel in ``ctx.secrets``.
"""

from __future__ import annotations

from engine.steps import StepContext, StepResult

from .registry import Deps, step

__all__ = ["WEAK_PINS", "pin_passed"]

WEAK_PINS = frozenset({"0000", "1111", "2222", "3333", "4444", "5555", "6666", "7777", "8888", "9999",
                       "1234", "4321", "0123", "1212", "2580"})


def pin_passed(ctx: StepContext, gate: str) -> bool:
    """True when the PIN was checked in this session for the protected node ``gate``."""
    return ctx.data.get("pin_verified") == gate


@step("security.require_pin", outcomes={"ok"})
def require_pin(ctx: StepContext, deps: Deps) -> StepResult:
    return StepResult("ok", {"pin_next": str(ctx.params["next"]), "pin_verified": None})


@step("security.pin_status", outcomes={"set", "not_set"})
def pin_status(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    return StepResult("set" if deps.pins.is_set(ctx.user_id) else "not_set")


@step("security.check_pin", outcomes={"ok", "wrong", "locked", "not_set"})
def check_pin(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    verdict = deps.pins.verify(ctx.user_id, ctx.secrets.get("pin", ""), ctx.now)
    if verdict.result == "ok":
        return StepResult("ok", {"pin_verified": ctx.data.get("pin_next"), "pin_attempts_left": None})
    if verdict.result == "wrong":
        return StepResult("wrong", {"pin_attempts_left": verdict.attempts_left})
    if verdict.result == "locked":
        return StepResult("locked", {"pin_locked_until": verdict.locked_until.isoformat()
                                     if verdict.locked_until else None})
    return StepResult("not_set")


@step("security.stage_pin", outcomes={"ok", "weak"})
def stage_pin(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    pin = ctx.secrets.get("new_pin", "")
    if pin in WEAK_PINS:
        return StepResult("weak")
    deps.pins.stage_pin(ctx.user_id, pin)
    return StepResult("ok")


@step("security.confirm_pin", outcomes={"ok", "mismatch"})
def confirm_pin(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    if deps.pins.confirm_pin(ctx.user_id, ctx.secrets.get("pin", "")):
        return StepResult("ok", {"pin_verified": ctx.data.get("pin_next")})
    return StepResult("mismatch")


# ---------------------------------------------------------------- change of PIN
# The change-PIN steps check the gate themselves rather than trust the path that led to them
# (a resumed session, a shortcut, a future menu): no new PIN without the current one checked
# in this session for the change.
PIN_CHANGE_NODE = "pref_pin_new"


@step("security.stage_changed_pin", outcomes={"ok", "weak", "pin_required"})
def stage_changed_pin(ctx: StepContext, deps: Deps) -> StepResult:
    if not pin_passed(ctx, PIN_CHANGE_NODE):
        return StepResult("pin_required", {"pin_verified": None})
    return stage_pin(ctx, deps)


@step("security.confirm_changed_pin", outcomes={"ok", "mismatch", "pin_required"})
def confirm_changed_pin(ctx: StepContext, deps: Deps) -> StepResult:
    if not pin_passed(ctx, PIN_CHANGE_NODE):
        return StepResult("pin_required", {"pin_verified": None})
    result = confirm_pin(ctx, deps)
    if result.outcome == "ok":  # the pass is spent: another change asks the PIN again
        result.data["pin_verified"] = None
    return result
