"""Preferences: language, alert subscriptions (per topic, with their consent history), where
notifications go (SMS, WhatsApp, or e-mail once the address is confirmed by a code sent to it).
(PIN change goes through ``dialogs.security``.)"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from engine.security_audit import SecurityEvent
from engine.steps import StepContext, StepResult

from .codes import hash_code, issue_code
from .email_address import mask_email, normalise_email
from .registry import Deps, step

# Alert topics and what each is scoped to.
TOPICS = {"outage_zone": "zone", "bill_issued": "account_number", "payment_received": "account_number",
          "low_credit": "account_number"}
# A prepaid meter has no bill; a postpaid account has no credit to run low.
_NOT_FOR_PREPAID, _ONLY_PREPAID = frozenset({"bill_issued"}), frozenset({"low_credit"})

EMAIL_CODE_MINUTES = 30
MAX_EMAIL_CODES_PER_PHONE = 5       # per day: a number cannot flood addresses with codes
MAX_EMAIL_CODES_PER_ADDRESS = 3     # per day, whoever asks: an address cannot be flooded from many numbers
_DAY = 86_400


def topics_for(data: Any) -> list[str]:
    """The alert topics that make sense for the current account (prepaid or not)."""
    prepaid = bool(data.get("prepaid"))
    return [t for t in TOPICS if not (t in _NOT_FOR_PREPAID and prepaid) and not (t in _ONLY_PREPAID and not prepaid)]


def _state(ctx: StepContext, deps: Deps) -> dict[str, Any]:
    assert deps.subscriptions is not None
    active = {(s.topic, s.scope) for s in deps.subscriptions.for_user(ctx.user_id)}
    state: dict[str, Any] = {f"alert_{topic}": (topic, str(ctx.data.get(scope, ""))) in active
                             for topic, scope in TOPICS.items()}
    # The screen says where the alerts switched on here will go.
    return {**state, "alert_channel": alert_channel(ctx, deps)}


def switch_alert(ctx: StepContext, deps: Deps, topic: str, scope: str, on: bool, *, source: str) -> str:
    """Switch one alert on or off for the customer of this conversation; returns where it goes
    (``alert_channel``). With the consent store wired, the history records where the customer said it
    (``ctx.channel``) and, for an opt-in, where its alerts go."""
    assert deps.subscriptions is not None
    delivery = alert_channel(ctx, deps)
    if deps.consent is not None:
        if on:
            deps.consent.opt_in(ctx.user_id, topic, scope, channel=ctx.channel, source=source,
                                language=ctx.language, delivery=delivery)
        else:
            deps.consent.opt_out(ctx.user_id, topic, scope, channel=ctx.channel, source=source)
    elif on:
        deps.subscriptions.subscribe(ctx.user_id, topic, scope, channel=delivery, language=ctx.language)
    else:
        deps.subscriptions.unsubscribe(ctx.user_id, topic, scope)
    return delivery


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
    topic = str(ctx.params["topic"])
    scope = str(ctx.data.get(TOPICS[topic], ""))
    switch_alert(ctx, deps, topic, scope, not _state(ctx, deps)[f"alert_{topic}"], source="menu")
    state = _state(ctx, deps)
    return StepResult("on" if state[f"alert_{topic}"] else "off", dict(state))


# ---------------------------------------------------------------- where messages go
def _minutes_left(expires_at: datetime | None, now: datetime) -> int:
    """Whole minutes (rounded up) before ``expires_at``; 0 when passed or unknown."""
    if expires_at is None or expires_at <= now:
        return 0
    return math.ceil((expires_at - now).total_seconds() / 60)


def _contact_fields(ctx: StepContext, deps: Deps) -> dict[str, Any]:
    assert deps.contacts is not None
    contact = deps.contacts.contact(ctx.user_id)
    # A customer coming back for the code is told the minutes it has left; an expired one is no longer
    # offered to type (a new address request sends a new code).
    left = _minutes_left(contact.email_code_expires_at, ctx.now) if contact.email_pending else 0
    return {"notify_channel": contact.channel, "email_confirmed": bool(contact.email),
            "email_pending": left > 0,
            "email_masked": mask_email(contact.email_pending or contact.email), "email_code_minutes": left}


# Channels a message can reach the customer on later, unasked: a conversation there is where an alert
# asked for in it goes (USSD, the web and chat only answer, so theirs go by SMS).
_REACHABLE = frozenset({"sms", "whatsapp"})


def alert_channel(ctx: StepContext, deps: Deps) -> str:
    """Where an alert asked for in this conversation goes: the channel the customer chose for their
    messages, else the one they are writing from when it can reach them later, else SMS."""
    contact = deps.contacts.contact(ctx.user_id) if deps.contacts is not None else None
    if contact is not None and contact.chosen:
        return contact.channel
    return ctx.channel if ctx.channel in _REACHABLE else "sms"


@step("preferences.load_channel", outcomes={"ok"})
def load_channel(ctx: StepContext, deps: Deps) -> StepResult:
    """The channel chosen and the e-mail address (masked), confirmed or waiting for its code."""
    return StepResult("ok", _contact_fields(ctx, deps))


@step("preferences.set_channel", outcomes={"ok", "no_email"})
def set_channel(ctx: StepContext, deps: Deps) -> StepResult:
    """Choose SMS, WhatsApp or e-mail; e-mail needs a confirmed address first (``no_email``)."""
    assert deps.contacts is not None
    said = str(ctx.params.get("channel") or ctx.data.get("keyword_channel") or "sms").casefold()
    channel = "email" if said in ("e-mail", "mail", "courriel") else said
    if channel == "email" and not deps.contacts.contact(ctx.user_id).email:
        return StepResult("no_email", {"channel_wanted": "email", "keyword_channel": None})
    deps.contacts.set_channel(ctx.user_id, channel, via=ctx.channel, source=str(ctx.params.get("source", "menu")))
    return StepResult("ok", {"notify_channel": channel, "channel_wanted": None, "keyword_channel": None})


@step("preferences.send_email_code", outcomes={"sent", "resent", "invalid", "throttled"})
def send_email_code(ctx: StepContext, deps: Deps) -> StepResult:
    """A code to the address typed: only the one who reads that mailbox can confirm it. ``resent`` when the
    same address was waiting for a code still valid (the customer asked again: that one is void now)."""
    assert deps.contacts is not None and deps.outbox is not None
    typed = ctx.data.get("email_input")
    if not typed and ctx.user_id:
        # Entered with nothing typed: a resumed conversation, whose code (kept with the contact) still
        # works. Asking the address again would send another code and void the one the customer holds.
        pending = _contact_fields(ctx, deps)
        if pending["email_pending"]:
            return StepResult("sent", pending)
    address = normalise_email(str(typed or ""))
    if address is None or not ctx.user_id:
        return StepResult("invalid", {"email_input": None})
    contact = deps.contacts.contact(ctx.user_id)
    again = contact.email_pending == address and _minutes_left(contact.email_code_expires_at, ctx.now) > 0
    sent = _email_code_to(ctx, deps, address, again=again)
    if sent is None:
        return StepResult("throttled", {"email_input": None})
    sends, again = sent
    # The screens say how long the code works from the same number that bounds it.
    return StepResult("resent" if again else "sent", {
        "email_input": None, "email_code_sends": sends, "email_masked": mask_email(address), "email_pending": True,
        "email_code_minutes": EMAIL_CODE_MINUTES, "email_code_tries_left": None})


@step("preferences.resend_email_code", outcomes={"resent", "capped", "expired"})
def resend_email_code(ctx: StepContext, deps: Deps) -> StepResult:
    """"Send the code again" on the e-mail code screen: a new code to the address waiting for one, the one
    before void, within the same limits as the first (per number and per address a day). Past them,
    ``capped``: nothing is sent, and the code already sent still works. ``expired``: no address waits."""
    assert deps.contacts is not None and deps.outbox is not None
    address = deps.contacts.contact(ctx.user_id).email_pending if ctx.user_id else None
    if not address:
        return StepResult("expired")
    sent = _email_code_to(ctx, deps, address, again=True)
    if sent is None:
        return StepResult("capped", {"email_masked": mask_email(address)})
    sends = sent[0]
    return StepResult("resent", {"email_masked": mask_email(address), "email_pending": True, "email_code_sends": sends,
                                 "email_code_minutes": EMAIL_CODE_MINUTES, "email_code_tries_left": None})


def _email_code_to(ctx: StepContext, deps: Deps, address: str, *, again: bool) -> tuple[int, bool] | None:
    """A new code by e-mail to ``address`` (the one before void, its tries anew): what the session counts of
    the codes this conversation sent, and whether this one replaced a code still valid (``again``); None when
    the number or the address had its codes of the day (nothing is sent)."""
    assert deps.contacts is not None and deps.outbox is not None
    # One message per conversation and send, its code made from that key (``issue_code``): the hop run again
    # after its session's save was lost (the session still counts the sends before it) finds its message
    # queued, and the customer keeps the one code sent, which the address still waits for. The key says
    # whether it replaced one, which the run again (that finds its own code pending) cannot tell otherwise.
    sends = int(ctx.data.get("email_code_sends", 0)) + 1
    for was_again in (again, not again):
        queued_key = _email_code_key(ctx, sends, was_again)
        if deps.outbox.queued(queued_key):
            # Staged and audited by the hop that queued it; counted by it too, unless the day's counts were
            # lost with its session (one Redis, back as it was before that hop): then its mark is gone too,
            # and the letter the address received is counted now, or it would escape the day's caps.
            if not deps.throttle.count(_counted_mark(queued_key)):
                _count_email_code(ctx, deps, address, queued_key)
            return sends, was_again
    dedupe_key = _email_code_key(ctx, sends, again)
    if not _count_email_code(ctx, deps, address, dedupe_key):
        return None
    code = issue_code(deps.settings.code_key, dedupe_key)
    deps.contacts.stage_email(ctx.user_id, address, hash_code(code), ctx.now + timedelta(minutes=EMAIL_CODE_MINUTES))
    if deps.outbox.add(kind="email_code", msisdn=ctx.user_id, language=ctx.language,
                       payload={"code": code, "email": address}, channel="email", dedupe_key=dedupe_key):
        # Every code sent is audited, the first as each one sent again (never the address: it names someone).
        deps.security.record(SecurityEvent("code_sent", ctx.channel, ctx.user_id, ctx.data.get("account_number"),
                                           "e-mail code sent again" if again else "e-mail code sent"))
    return sends, again


def _email_code_key(ctx: StepContext, sends: int, again: bool) -> str:
    return f"email_code:{ctx.conversation_id}:{sends}{':again' if again else ''}"


def _count_email_code(ctx: StepContext, deps: Deps, address: str, dedupe_key: str) -> bool:
    """Count an e-mail code (the message under ``dedupe_key``) in the number's and the address's codes of the
    day; whether both are still within their caps. Its mark, kept beside the counts, says it was counted."""
    # Both counters move on every request (no short-circuit).
    limits = [deps.throttle.hit(f"email:phone:{ctx.user_id}", MAX_EMAIL_CODES_PER_PHONE, _DAY),
              deps.throttle.hit(f"email:address:{address.lower()}", MAX_EMAIL_CODES_PER_ADDRESS, _DAY)]
    if all(limits):
        deps.throttle.hit(_counted_mark(dedupe_key), 1, _DAY)
    return all(limits)


def _counted_mark(dedupe_key: str) -> str:
    return f"email:counted:{dedupe_key}"


@step("preferences.confirm_email", outcomes={"ok", "ok_channel", "wrong", "expired"})
def confirm_email(ctx: StepContext, deps: Deps) -> StepResult:
    """The code typed back (a hop secret, never in the session): the address becomes the customer's;
    e-mail becomes their channel when that is what they were choosing."""
    assert deps.contacts is not None
    code = ctx.secrets.get("email_code") or str(ctx.data.get("keyword_code") or "")
    source = str(ctx.params.get("source", "menu"))
    verdict = deps.contacts.confirm_email(ctx.user_id, code, ctx.now, via=ctx.channel, source=source)
    if verdict == "wrong":
        # The tries left, as the linking and first-PIN code screens say them.
        left = deps.contacts.contact(ctx.user_id).email_code_tries_left
        return StepResult("wrong", {"keyword_code": None, "email_code_tries_left": left})
    if verdict != "ok":
        return StepResult("expired", {"keyword_code": None})
    data = {**_contact_fields(ctx, deps), "keyword_code": None}
    if ctx.data.get("channel_wanted") == "email" or ctx.params.get("make_channel"):
        deps.contacts.set_channel(ctx.user_id, "email", via=ctx.channel, source=source)
        data.update(notify_channel="email", channel_wanted=None)
        return StepResult("ok_channel", data)
    return StepResult("ok", data)
