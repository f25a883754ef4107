"""Steps behind the keyword commands of chat-style channels (SMS, WhatsApp): what a USSD
menu does with a screen, a command does with its argument.

``SOLDE 1000001`` picks one of the customer's accounts, ``PAYER 5000`` hands its amount to the
Pay journey, ``ALERTES ON|OFF`` switches every alert of the current account, ``EMAIL a@b.c`` then
``EMAIL 123456`` registers and confirms an e-mail address, ``CANAL SMS|WHATSAPP|EMAIL`` chooses where
messages go, ``STOP`` ends every
subscription of the number at once, and the help answers in the customer's own language.
"""

from __future__ import annotations

from typing import Any

from engine.steps import StepContext, StepResult

from .account import account_fields
from .preferences import TOPICS, alert_channel, switch_alert, topics_for
from .registry import Deps, step

_ON = frozenset({"on", "oui", "yes"})


def _customer_language(ctx: StepContext, deps: Deps) -> str | None:
    if not ctx.user_id:
        return None
    chosen = deps.preferences.language(ctx.user_id)
    if chosen:
        return chosen
    accounts = deps.billing.accounts_for_phone(ctx.user_id)
    return accounts[0].language if accounts else None


@step("keywords.customer_language", outcomes={"ok"})
def customer_language(ctx: StepContext, deps: Deps) -> StepResult:
    """Answer in the language the customer chose (or their account's), else the keyword's."""
    return StepResult("ok", language=_customer_language(ctx, deps))


@step("keywords.pick_account", outcomes={"ok", "not_linked"})
def pick_account(ctx: StepContext, deps: Deps) -> StepResult:
    """The account named after the keyword becomes the current one, if it is one of the caller's."""
    wanted = ctx.data.get("keyword_account")
    if not wanted:
        return StepResult("ok")
    for item in ctx.data.get("accounts") or []:
        if isinstance(item, dict) and item.get("account_number") == wanted:
            return StepResult("ok", account_fields(item))
    if ctx.data.get("account_number") == wanted:
        return StepResult("ok")
    return StepResult("not_linked")


@step("keywords.take_amount", outcomes={"ok"})
def take_amount(ctx: StepContext, deps: Deps) -> StepResult:
    """The amount typed after ``PAYER``, as if typed on the Pay journey's amount screen."""
    return StepResult("ok", {"pay_amount_input": ctx.data.get("keyword_amount"), "keyword_amount": None})


@step("keywords.switch_alerts", outcomes={"on", "off"})
def switch_alerts(ctx: StepContext, deps: Deps) -> StepResult:
    """``ALERTES ON`` subscribes the current account (and zone) to every alert, on the channel the answer
    names (``alert_channel``); ``OFF`` unsubscribes."""
    on = str(ctx.data.get("keyword_switch", "")).casefold() in _ON
    # The topics of this account's kind (low credit for a prepaid meter, bills otherwise); OFF ends them all.
    for topic in topics_for(ctx.data) if on else list(TOPICS):
        switch_alert(ctx, deps, topic, str(ctx.data.get(TOPICS[topic], "")), on, source="keyword ALERTES")
    return StepResult("on" if on else "off", {"keyword_switch": None, "alert_channel": alert_channel(ctx, deps)})


@step("keywords.email", outcomes={"address", "code", "show"})
def email(ctx: StepContext, deps: Deps) -> StepResult:
    """``EMAIL a@b.c`` asks for a code to that address, ``EMAIL 123456`` confirms it, ``EMAIL`` alone
    says what is registered."""
    argument = str(ctx.data.get("keyword_email") or "").strip()
    if argument.isdigit():
        return StepResult("code", {"keyword_code": argument, "keyword_email": None})
    if argument:
        return StepResult("address", {"email_input": argument, "keyword_email": None})
    return StepResult("show", {"keyword_email": None})


@step("keywords.stop_all", outcomes={"ok"})
def stop_all(ctx: StepContext, deps: Deps) -> StepResult:
    """``STOP``: every active subscription of the number ends at once, whatever its account."""
    assert deps.subscriptions is not None
    stopped = 0
    if ctx.user_id and deps.consent is not None:
        # Recorded (time, channel, source) and honoured at once: queued alerts are not sent either.
        stopped = deps.consent.stop_all(ctx.user_id, channel=ctx.channel, source="keyword STOP")
    elif ctx.user_id:
        for subscription in deps.subscriptions.for_user(ctx.user_id):
            deps.subscriptions.unsubscribe(ctx.user_id, subscription.topic, subscription.scope)
            stopped += 1
    data: dict[str, Any] = {"stopped_count": stopped}
    return StepResult("ok", data, language=_customer_language(ctx, deps))
