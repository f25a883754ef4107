"""Outage reports, complaints and request tracking (home options 4 and 5).

A report is never lost: every ticket carries a ``client_reference`` derived from the session
and what is reported, so a retried or replayed hop returns the same ticket; when the incident
system is down the report is kept in ``deps.pending_tickets`` under a local reference the
customer can read out (``REC-``/``INC-`` + 4 characters of the hash of the client reference),
and ``resend_pending_tickets`` (run by a job) forwards it later with the same client reference.

A report is never made twice either: the same subject (account, kind, category and, for a billing
dispute, the disputed bill) while an earlier report of it is still open, kept here or open in the
incident system, answers ``duplicate`` with the earlier reference, whichever session filed it. The
incident system applies the same rule, so two sessions racing each other still get one ticket.

The customer's own words (``complaint_text``) are personal data: they go into the ticket and
nowhere else (never a log line), and leave the session once the ticket is filed.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.masking import mask
from engine.steps import StepContext, StepResult

from .backends import BackendError, BackendUnavailable, IncidentBackend, NotFound, Ticket
from .preferences import switch_alert
from .registry import Deps, step
from .stores import PendingTicket, PendingTickets

# Each step is marked by ``step(...)(function)`` after its definition, not by a decorator: mutmut
# (``make mutation``) leaves decorated functions unmutated, and these steps are the money and identity
# paths it guards.
__all__ = ["client_reference", "local_reference", "normalise_reference", "resend_pending_tickets"]

log = logging.getLogger("dialogs.incidents")

# The back office's reference alphabet (no 0/1/I/O): local references use it too.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PREFIXES = {"outage": "INC", "complaint": "REC"}
CATEGORIES = frozenset({"outage", "billing", "meter", "quality", "other"})
HISTORY_SHOWN = 3
OPEN_STATUSES = frozenset({"open", "in_progress"})
# Typed at the description prompt instead of a description: "no description".
SKIP_DESCRIPTION = "1"
# Context keys of the ticket shown in detail; cleared before each detail so nothing stale remains.
_DETAIL_KEYS = ("t_ref", "t_kind", "t_category", "t_status", "t_created_at", "t_event_count",
                *(f"ev{i}_{part}" for i in range(1, HISTORY_SHOWN + 1) for part in ("at", "status")))
_REFERENCE = re.compile(r"(INC|REC)[- ]?([2-9A-Z]{4})")


# ---------------------------------------------------------------- references
def client_reference(session_key: str, kind: str, category: str, bill_id: str | None = None) -> str:
    """Stable per session and per thing reported: a retry or a replayed hop gives the same one."""
    subject = f"{kind}|{category}" + (f"|{bill_id}" if bill_id else "")
    digest = hashlib.sha256(f"{session_key}|incidents.open_ticket|{subject}".encode()).hexdigest()
    return f"cr-{digest[:40]}"


def local_reference(kind: str, client_ref: str) -> str:
    """``REC-`` (complaint) or ``INC-`` (outage) + 4 characters of the hash of the client reference."""
    value = int(hashlib.sha256(client_ref.encode()).hexdigest()[:8], 16)
    chars = []
    for _ in range(4):
        value, index = divmod(value, len(ALPHABET))
        chars.append(ALPHABET[index])
    return f"{PREFIXES.get(kind, 'REC')}-{''.join(chars)}"


def normalise_reference(typed: str) -> str | None:
    """``rec7k3q``, ``REC 7K3Q``, ``rec-7k3q`` -> ``REC-7K3Q``; None when it is not a reference."""
    found = _REFERENCE.fullmatch(typed.strip().upper())
    return f"{found.group(1)}-{found.group(2)}" if found else None


# ---------------------------------------------------------------- sending again
def resend_pending_tickets(incidents: IncidentBackend, pending: PendingTickets) -> int:
    """Send every due kept ticket with its own client reference; returns how many were sent.

    Stops at the first ``BackendUnavailable`` (the rest waits for the next run). A ticket the
    incident system refuses (``Rejected``, ``NotFound`` ...) is marked refused and not sent again.
    """
    sent = 0
    for kept in pending.due():
        try:
            ticket = incidents.open_ticket(kind=kept.kind, category=kept.category,
                                           account_number=kept.account_number, msisdn=kept.msisdn,
                                           description=kept.description, client_reference=kept.client_reference,
                                           bill_id=kept.bill_id)
        except BackendUnavailable:
            log.info("pending tickets: incident system still unavailable, %d sent this run", sent)
            break
        except BackendError as exc:
            # Refused for good (invalid for the incident system): sending it again would never work.
            # It stays on record as "refused" for the agents, and the customer's tracking shows it.
            log.warning("pending ticket %s for user=%s refused: %s", kept.client_reference, mask(kept.msisdn),
                        type(exc).__name__)
            pending.mark_refused(kept.client_reference, f"{type(exc).__name__}: {exc}")
            continue
        # The incident system may answer with a ticket already open for the same subject (reported
        # meanwhile from another session): the kept report is then that ticket.
        pending.mark_sent(kept.client_reference, ticket.reference)
        sent += 1
    return sent


# ---------------------------------------------------------------- helpers
def _incidents(deps: Deps) -> IncidentBackend:
    assert deps.incidents is not None, "Deps.incidents is not wired"
    return deps.incidents


def _pending(deps: Deps) -> PendingTickets:
    assert deps.pending_tickets is not None, "Deps.pending_tickets is not wired"
    return deps.pending_tickets


def _own_accounts(ctx: StepContext) -> set[str]:
    accounts = {str(a.get("account_number")) for a in ctx.data.get("accounts") or [] if isinstance(a, Mapping)}
    if ctx.data.get("account_number"):
        accounts.add(str(ctx.data["account_number"]))
    return accounts


def _detail(ticket: Ticket) -> dict[str, Any]:
    data: dict[str, Any] = dict.fromkeys(_DETAIL_KEYS)
    # Newest first; of two events at the same instant, the one recorded later comes first.
    ordered = sorted(enumerate(ticket.history), key=lambda pair: (pair[1].at, pair[0]), reverse=True)
    events = [event for _, event in ordered[:HISTORY_SHOWN]]
    data.update({"t_ref": ticket.reference, "t_kind": ticket.kind, "t_category": ticket.category,
                 "t_status": ticket.status, "t_created_at": ticket.created_at.isoformat(),
                 "t_event_count": len(events)})
    for i, event in enumerate(events, 1):
        data[f"ev{i}_at"] = event.at.isoformat()
        data[f"ev{i}_status"] = event.status
    return data


def _pending_detail(kept: PendingTicket) -> dict[str, Any]:
    data: dict[str, Any] = dict.fromkeys(_DETAIL_KEYS)
    data.update({"t_ref": local_reference(kept.kind, kept.client_reference), "t_kind": kept.kind,
                 "t_category": kept.category, "t_status": "recorded"})
    return data


# ---------------------------------------------------------------- outage
def check_outage(ctx: StepContext, deps: Deps) -> StepResult:
    """Is an outage already known in the zone of the current account? (Unknown when the system is down:
    the report then goes on to the keep-if-down path.)"""
    zone = str(ctx.data.get("zone") or "")
    if not zone or not ctx.data.get("account_number"):
        return StepResult("not_found")
    try:
        outages = _incidents(deps).outages_in_zone(zone)
    except BackendUnavailable:
        log.info("outage check: incident system unavailable user=%s; reporting instead", mask(ctx.user_id))
        outages = []
    ongoing = [o for o in outages if o.status == "ongoing"]
    if not ongoing:
        return StepResult("none", {"outage_id": None, "outage_eta": None})
    # The one expected back last tells the customer the least optimistic time.
    outage = max(ongoing, key=lambda o: (o.estimated_restoration is not None,
                                         o.estimated_restoration.isoformat() if o.estimated_restoration else ""))
    eta = outage.estimated_restoration.isoformat() if outage.estimated_restoration else None
    return StepResult("known", {"outage_id": outage.outage_id, "outage_eta": eta})


step("incidents.check_outage", outcomes={"known", "none"})(check_outage)


def alert_power_back(ctx: StepContext, deps: Deps) -> StepResult:
    """"Tell me when power is back", kept for the outage (else the zone) on the channel it will come by
    (``alert_channel``, which the screen names)."""
    assert deps.subscriptions is not None, "Deps.subscriptions is not wired"
    scope = str(ctx.data.get("outage_id") or ctx.data.get("zone") or "")
    channel = switch_alert(ctx, deps, "power_back", scope, True, source="menu")
    return StepResult("ok", {"alert_channel": channel})


step("incidents.alert_power_back", outcomes={"ok"})(alert_power_back)


# ---------------------------------------------------------------- tickets
def choose_category(ctx: StepContext, deps: Deps) -> StepResult:
    category = str(ctx.params["category"])
    if category not in CATEGORIES:
        raise ValueError(f"unknown complaint category {category!r}")
    # A new complaint starts clean: no bill or words left from an earlier one in this session.
    return StepResult("ok", {"complaint_category": category,
                             "complaint_description": str(ctx.params.get("description") or category),
                             "disputed_bill": None, "complaint_text": None})


step("incidents.choose_category", outcomes={"ok"})(choose_category)


@dataclass(frozen=True, slots=True)
class _Report:
    """What the customer is reporting, as the incident system gets it."""

    kind: str
    category: str
    account_number: str
    description: str
    bill_id: str | None

    def same_subject(self, kind: str, category: str, account_number: str, bill_id: str | None) -> bool:
        return (kind, category, account_number, bill_id) == (self.kind, self.category, self.account_number,
                                                             self.bill_id)


def _report(ctx: StepContext) -> _Report | None:
    """The report the context describes; None when something it needs is missing."""
    kind = str(ctx.params["kind"])
    account = str(ctx.data.get("account_number") or "")
    bill_id: str | None = None
    if kind == "outage":
        category, description = "outage", str(ctx.params.get("description") or "Power outage")
    else:
        category = str(ctx.data.get("complaint_category") or "")
        description = str(ctx.data.get("complaint_description") or category)
        words = str(ctx.data.get("complaint_text") or "").strip()
        if words and words != SKIP_DESCRIPTION:
            description = words
        bill = ctx.data.get("disputed_bill")
        if category == "billing" and isinstance(bill, Mapping) and bill.get("bill_id"):
            bill_id = str(bill["bill_id"])
    if not account or category not in CATEGORIES:
        return None
    return _Report(kind, category, account, description, bill_id)


def _earlier_report(ctx: StepContext, deps: Deps, report: _Report, reference: str) -> StepResult | None:
    """The answer when this subject was already reported and is still open; None when it was not.

    This session's own report (same client reference) answers as it did the first time
    (``ok``/``kept``); another session's answers ``duplicate`` with its reference.
    """
    for kept in _pending(deps).for_user(ctx.user_id):
        if kept.status != "pending" or not report.same_subject(kept.kind, kept.category, kept.account_number,
                                                               kept.bill_id):
            continue
        outcome = "kept" if kept.client_reference == reference else "duplicate"
        return StepResult(outcome, {"ticket_reference": local_reference(kept.kind, kept.client_reference)})
    for ticket in _incidents(deps).tickets_for_account(report.account_number):
        if ticket.status in OPEN_STATUSES and report.same_subject(ticket.kind, ticket.category,
                                                                  ticket.account_number, ticket.bill_id):
            return _filed(ticket, reference, just_opened=False)
    return None


def _filed(ticket: Ticket, reference: str, *, just_opened: bool) -> StepResult:
    """``ok`` for this session's ticket, ``duplicate`` for one someone else opened. A ticket just
    opened that does not echo a client reference is ours; an earlier one without it is not."""
    ours = ticket.client_reference == reference or (just_opened and ticket.client_reference is None)
    return StepResult("ok" if ours else "duplicate", {"ticket_reference": ticket.reference})


def open_ticket(ctx: StepContext, deps: Deps) -> StepResult:
    """Open the ticket (params ``kind``; a complaint takes its category, disputed bill and the
    customer's words from the context).

    ``kept`` when the incident system is down: the report is stored locally and
    ``ticket_reference`` is then the local reference. ``duplicate`` when the same subject is
    already reported and still open: ``ticket_reference`` is the earlier report's.
    """
    report = _report(ctx)
    if report is None:
        return StepResult("not_found")
    reference = client_reference(ctx.session_key, report.kind, report.category, report.bill_id)
    try:
        result = _earlier_report(ctx, deps, report, reference)
        if result is None:
            ticket = _incidents(deps).open_ticket(
                kind=report.kind, category=report.category, account_number=report.account_number,
                msisdn=ctx.user_id, description=report.description, client_reference=reference,
                bill_id=report.bill_id)
            result = _filed(ticket, reference, just_opened=True)
    except BackendUnavailable:
        _pending(deps).add(PendingTicket(client_reference=reference, msisdn=ctx.user_id,
                                         account_number=report.account_number, kind=report.kind,
                                         category=report.category, description=report.description,
                                         status="pending", bill_id=report.bill_id))
        log.warning("ticket kept locally (incident system unavailable) user=%s", mask(ctx.user_id))
        result = StepResult("kept", {"ticket_reference": local_reference(report.kind, reference)})
    result.data["complaint_text"] = None      # the customer's words live in the ticket only
    return result


step("incidents.open_ticket", outcomes={"ok", "kept", "duplicate"})(open_ticket)


# ---------------------------------------------------------------- tracking
def list_tickets(ctx: StepContext, deps: Deps) -> StepResult:
    """The current account's requests: those kept locally and not yet forwarded first, then the
    incident system's, most recent first."""
    account = str(ctx.data.get("account_number") or "")
    if not account:
        return StepResult("not_found")
    items: list[dict[str, Any]] = [
        {"ref": local_reference(p.kind, p.client_reference), "ticket_kind": p.kind, "ticket_status": "recorded"}
        for p in _pending(deps).for_user(ctx.user_id) if p.status != "sent" and p.account_number == account]
    try:
        tickets = _incidents(deps).tickets_for_account(account)
    except NotFound:
        tickets = []
    items += [{"ref": t.reference, "ticket_kind": t.kind, "ticket_status": t.status} for t in tickets]
    return StepResult("ok" if items else "none", {"tickets": items})


step("incidents.list_tickets", outcomes={"ok", "none"})(list_tickets)


def _find(ctx: StepContext, deps: Deps, reference: str) -> StepResult:
    own = _own_accounts(ctx)
    for kept in _pending(deps).for_user(ctx.user_id):
        if local_reference(kept.kind, kept.client_reference) != reference:
            continue
        if kept.status == "pending" or not kept.ticket_reference:
            return StepResult("pending", _pending_detail(kept))
        reference = kept.ticket_reference          # forwarded since: show the real ticket
        break
    try:
        ticket = _incidents(deps).ticket(reference)
    except NotFound:
        return StepResult("unknown", dict.fromkeys(_DETAIL_KEYS))
    if ticket.account_number not in own:
        # Someone else's ticket: say no more than for a reference that does not exist.
        return StepResult("unknown", dict.fromkeys(_DETAIL_KEYS))
    return StepResult("ok", _detail(ticket))


def ticket_detail(ctx: StepContext, deps: Deps) -> StepResult:
    """The ticket picked from the list (context ``ticket``), read again for its latest status."""
    chosen = ctx.data.get("ticket")
    if not isinstance(chosen, Mapping) or not chosen.get("ref"):
        return StepResult("unknown")
    return _find(ctx, deps, str(chosen["ref"]))


step("incidents.ticket_detail", outcomes={"ok", "pending", "unknown"})(ticket_detail)


def find_ticket(ctx: StepContext, deps: Deps) -> StepResult:
    """The ticket whose reference the customer typed (context ``typed_reference``, any case)."""
    reference = normalise_reference(str(ctx.data.get("typed_reference") or ""))
    if reference is None:
        return StepResult("unknown", dict.fromkeys(_DETAIL_KEYS))
    result = _find(ctx, deps, reference)
    result.data["typed_reference"] = reference
    return result


step("incidents.find_ticket", outcomes={"ok", "pending", "unknown"})(find_ticket)
