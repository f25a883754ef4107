"""Payment deferral or instalments: eligibility, the proposed schedule, creation behind the PIN.

The rules live in ``config/arrangements.yaml`` (``deps.settings.arrangement_rules_path``),
validated by ``ArrangementRules``. ``check`` returns one outcome per reason a customer is
refused, so each gets its own screen: ``prepaid``, ``already_running``, ``recent``,
``balance_low``; otherwise ``eligible`` with the choices. ``create`` runs only after the PIN
gate and sends an idempotency key derived from the session, so a replayed hop never
creates a second arrangement.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.masking import mask
from engine.steps import StepContext, StepResult

from .backends import Arrangement, Conflict, Rejected
from .billing import next_instalment
from .registry import Deps, step
from .security import pin_passed
from .tariffs import load_config

__all__ = [
    "PROTECTED_NODE",
    "ArrangementRules",
    "add_months",
    "idempotency_key",
    "load_rules",
    "normalise_reference",
    "schedule",
    "split",
]

log = logging.getLogger("dialogs.arrangements")

PROTECTED_NODE = "arrangement_create"


class ArrangementRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    eligible_account_kinds: tuple[Literal["postpaid", "prepaid"], ...] = ("postpaid",)
    min_balance: Decimal = Field(ge=0)
    cooldown_months: int = Field(ge=0, le=36)
    cooldown_kinds: tuple[Literal["deferral", "instalments"], ...] = ("deferral", "instalments")
    deferral_months: int = Field(default=1, ge=1, le=6)
    min_instalments: int = Field(default=2, ge=2, le=6)
    max_months: int = Field(ge=2, le=6)

    @model_validator(mode="after")
    def _check(self) -> ArrangementRules:
        if self.min_instalments > self.max_months:
            raise ValueError("min_instalments must not exceed max_months")
        return self


def load_rules(path: str) -> ArrangementRules:
    """The validated rules of ``path``, read once per path."""
    return load_config(path, ArrangementRules, "arrangement rules")


# ---------------------------------------------------------------- pure helpers
def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clipped to the end of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split(balance: Decimal, parts: int) -> list[Decimal]:
    """``parts`` whole-XOF amounts adding up to ``balance``; the remainder goes on the first."""
    part = (balance / parts).quantize(Decimal(1), rounding=ROUND_DOWN)
    return [balance - part * (parts - 1)] + [part] * (parts - 1)


def schedule(kind: str, months: int, balance: Decimal, today: date) -> list[tuple[date, Decimal]]:
    """Due dates and amounts: a deferral is one payment ``months`` later; instalments are monthly."""
    if kind == "deferral":
        return [(add_months(today, months), balance)]
    return [(add_months(today, i + 1), amount) for i, amount in enumerate(split(balance, months))]


def idempotency_key(conversation: str, node: str = PROTECTED_NODE) -> str:
    """Stable for one conversation (``StepContext.conversation_id``) and node: a replay sends the same key, the
    back end answers the same; a plan asked for in a later conversation (by SMS or WhatsApp: the same
    sender's session key) is a new request."""
    return "ussd-arr-" + hashlib.sha256(f"{conversation}:{node}".encode()).hexdigest()[:40]


def _active(arrangements: list[Arrangement]) -> Arrangement | None:
    return next((a for a in arrangements if a.status == "active"), None)


# ---------------------------------------------------------------- steps
@step("arrangements.check", outcomes={"eligible", "prepaid", "already_running", "recent", "balance_low",
                                      "no_account"})
def check(ctx: StepContext, deps: Deps) -> StepResult:
    """Is the current account eligible? One outcome per reason it is not."""
    number = ctx.data.get("account_number")
    if not number:
        return StepResult("no_account")
    rules = load_rules(deps.settings.arrangement_rules_path)
    if ctx.data.get("account_kind") not in rules.eligible_account_kinds:
        return StepResult("prepaid")
    existing = deps.billing.arrangements(str(number))
    active = _active(existing)
    if active is not None:
        return StepResult("already_running", {"arr_active_id": active.arrangement_id,
                                              "arr_active_kind": active.kind})
    today = ctx.now.date()
    # Counted forward from each arrangement, as the refusal screen names the day: counted back from
    # today instead, a plan of 31 August would still block on 28 February, the day the screen promised.
    recent = [a for a in existing if a.kind in rules.cooldown_kinds and a.status != "cancelled"
              and today < add_months(a.created_on, rules.cooldown_months)]
    if recent:
        last = max(a.created_on for a in recent)
        return StepResult("recent", {"arr_recent_on": last.isoformat(),
                                     "arr_next_on": add_months(last, rules.cooldown_months).isoformat(),
                                     "arr_cooldown_months": rules.cooldown_months})
    balance = deps.billing.balance(str(number)).amount
    data: dict[str, Any] = {"arr_balance": str(balance), "arr_min_balance": str(rules.min_balance)}
    if balance < rules.min_balance or balance <= 0:
        return StepResult("balance_low", data)
    data["arr_deferral_due"] = add_months(today, rules.deferral_months).isoformat()
    data["arr_options"] = [{"months": n, "part": str(split(balance, n)[-1])}
                           for n in range(rules.min_instalments, rules.max_months + 1)]
    return StepResult("eligible", data)


@step("arrangements.plan", outcomes={"ok", "invalid"})
def plan(ctx: StepContext, deps: Deps) -> StepResult:
    """The schedule of the chosen arrangement (param ``kind``), to confirm before the PIN."""
    rules = load_rules(deps.settings.arrangement_rules_path)
    kind = str(ctx.params.get("kind"))
    if kind == "deferral":
        months = rules.deferral_months
    else:
        choice = ctx.data.get("arr_choice")
        months = int(choice.get("months", 0)) if isinstance(choice, dict) else 0
        if not rules.min_instalments <= months <= rules.max_months:
            return StepResult("invalid")
    balance = Decimal(str(ctx.data.get("arr_balance", "0")))
    parts = schedule(kind, months, balance, ctx.now.date())
    # The screen shows the first two and the last (the customer sees when the plan ends), with "..."
    # for those in between.
    data: dict[str, Any] = {"arr_kind": kind, "arr_months": months, "arr_more": len(parts) > 2,
                            "arr_between": len(parts) > 3}
    for label, index in (("first", 0), ("second", 1), ("last", len(parts) - 1)):
        found = parts[index] if index < len(parts) else None
        data[f"arr_{label}_on"] = found[0].isoformat() if found else None
        data[f"arr_{label}_amount"] = str(found[1]) if found else None
    return StepResult("ok", data)


@step("arrangements.create", outcomes={"ok", "already_running", "refused", "pin_required"})
def create(ctx: StepContext, deps: Deps) -> StepResult:
    """Record the arrangement confirmed with the PIN; the same session never records two."""
    if not pin_passed(ctx, PROTECTED_NODE):
        return StepResult("pin_required")
    cleared: dict[str, Any] = {"pin_verified": None}
    number = str(ctx.data.get("account_number", ""))
    kind = str(ctx.data.get("arr_kind", ""))
    months = int(ctx.data.get("arr_months", 0) or 0)
    try:
        made = deps.billing.create_arrangement(number, kind, months, idempotency_key(ctx.conversation_id))
    except Conflict:
        # Another arrangement became active meanwhile, or nothing is due any more.
        active = _active(deps.billing.arrangements(number))
        if active is None:
            return StepResult("refused", cleared)
        return StepResult("already_running", {**cleared, "arr_active_id": active.arrangement_id})
    except Rejected:
        log.info("arrangement refused by the back end account=%s kind=%s months=%d", mask(number), kind, months)
        return StepResult("refused", cleared)
    first = made.schedule[0][0].isoformat() if made.schedule else None
    first_amount = str(made.schedule[0][1]) if made.schedule else None
    log.info("arrangement %s created account=%s kind=%s months=%d", made.arrangement_id, mask(number),
             made.kind, made.months)
    # What the billing system recorded, not our preview: the customer sees the real first payment.
    return StepResult("ok", {**cleared, "arr_id": made.arrangement_id, "arr_due_on": first,
                             "arr_due_amount": first_amount})


# ---------------------------------------------------------------- tracking
_REFERENCE = re.compile(r"ARR[- ]?([0-9A-F]{10})")


def normalise_reference(text: str) -> str | None:
    """``arr 0a1b2c3d4e`` -> ``ARR-0A1B2C3D4E``; None when ``text`` is not an arrangement reference."""
    found = _REFERENCE.fullmatch(text.strip().upper())
    return f"ARR-{found.group(1)}" if found else None


def _show(arrangement: Arrangement | None, today: date) -> StepResult:
    """``ok`` with the next payment of a running plan, ``closed`` for one that is over."""
    if arrangement is None:
        return StepResult("unknown")
    due = next_instalment(arrangement, today) if arrangement.status == "active" else None
    data: dict[str, Any] = {
        "arr_t_id": arrangement.arrangement_id, "arr_t_kind": arrangement.kind, "arr_t_status": arrangement.status,
        "arr_t_created_on": arrangement.created_on.isoformat(), "arr_t_parts": len(arrangement.schedule),
        "arr_t_next_on": due[0].isoformat() if due else None, "arr_t_next_amount": str(due[1]) if due else None}
    return StepResult("ok" if due else "closed", data)


def _own(ctx: StepContext, deps: Deps, reference: str) -> Arrangement | None:
    """The arrangement ``reference`` of the current account: another customer's is never shown."""
    number = ctx.data.get("account_number")
    if not number:
        return None
    return next((a for a in deps.billing.arrangements(str(number)) if a.arrangement_id == reference), None)


@step("arrangements.track_list", outcomes={"ok", "none"})
def track_list(ctx: StepContext, deps: Deps) -> StepResult:
    """The request list of "Track a request" (``tickets``) with the account's arrangements added."""
    listed = ctx.data.get("tickets")
    items = [dict(t) for t in listed if isinstance(t, dict) and not str(t.get("ref", "")).startswith("ARR-")] \
        if isinstance(listed, list) else []
    number = ctx.data.get("account_number")
    if number:
        items += [{"ref": a.arrangement_id, "ticket_kind": a.kind, "ticket_status": a.status}
                  for a in deps.billing.arrangements(str(number))]
    return StepResult("ok" if items else "none", {"tickets": items})


@step("arrangements.track_detail", outcomes={"ok", "closed", "unknown"})
def track_detail(ctx: StepContext, deps: Deps) -> StepResult:
    """The arrangement picked from the request list (context ``ticket``), read again."""
    chosen = ctx.data.get("ticket")
    reference = str(chosen.get("ref", "")) if isinstance(chosen, Mapping) else ""
    return _show(_own(ctx, deps, reference), ctx.now.date())


@step("arrangements.track_reference", outcomes={"ok", "closed", "unknown", "other"})
def track_reference(ctx: StepContext, deps: Deps) -> StepResult:
    """The arrangement whose reference the customer typed; ``other`` for a ticket reference."""
    reference = normalise_reference(str(ctx.data.get("typed_reference") or ""))
    if reference is None:
        return StepResult("other")
    result = _show(_own(ctx, deps, reference), ctx.now.date())
    result.data["typed_reference"] = reference
    return result
