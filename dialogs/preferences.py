"""Preferences: language, alert subscriptions. (PIN change goes through ``dialogs.security``.)"""

from __future__ import annotations

from engine.steps import StepContext, StepResult

from .registry import Deps, step

# Alert topics and what each is scoped to.
TOPICS = {"outage_zone": "zone", "bill_issued": "account_number", "payment_received": "account_number"}


def _state(ctx: StepContext, deps: Deps) -> dict[str, bool]:
    assert deps.subscriptions is not None
    active = {(s.topic, s.scope) for s in deps.subscriptions.for_user(ctx.user_id)}
    return {f"alert_{topic}": (topic, str(ctx.data.get(scope, ""))) in active for topic, scope in TOPICS.items()}


@step("preferences.set_language", outcomes={"ok"})
def set_language(ctx: StepContext, deps: Deps) -> StepResult:
    language = str(ctx.params["language"])
    deps.preferences.set_language(ctx.user_id, language)
    return StepResult("ok", language=language)


@step("preferences.load_alerts", outcomes={"ok"})
def load_alerts(ctx: StepContext, deps: Deps) -> StepResult:
    return StepResult("ok", dict(_state(ctx, deps)))


@step("preferences.toggle_alert", outcomes={"on", "off"})
def toggle_alert(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.subscriptions is not None
    topic = str(ctx.params["topic"])
    scope = str(ctx.data.get(TOPICS[topic], ""))
    if _state(ctx, deps)[f"alert_{topic}"]:
        deps.subscriptions.unsubscribe(ctx.user_id, topic, scope)
    else:
        deps.subscriptions.subscribe(ctx.user_id, topic, scope, channel="sms", language=ctx.language)
    state = _state(ctx, deps)
    return StepResult("on" if state[f"alert_{topic}"] else "off", dict(state))
