"""Outage reports, complaints and request tracking (home options 4 and 5).

A report is never lost: every ticket carries a ``client_reference`` derived from the session
and what is reported, so a retried or replayed hop returns the same ticket; when the incident
system is down the report is kept in ``deps.pending_tickets`` under a local reference the
customer can read out (``REC-``/``INC-`` + 4 characters of the hash of the client reference),
and ``resend_pending_tickets`` (run by a job) forwards it later with the same client reference.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

from engine.masking import mask
from engine.steps import StepContext, StepResult

from .backends import BackendError, BackendUnavailable, IncidentBackend, NotFound, Ticket
from .registry import Deps, step
from .stores import PendingTicket, PendingTickets

__all__ = ["client_reference", "local_reference", "normalise_reference", "resend_pending_tickets"]

log = logging.getLogger("dialogs.incidents")

# The back office's reference alphabet (no 0/1/I/O): local references use it too.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PREFIXES = {"outage": "INC", "complaint": "REC"}
CATEGORIES = frozenset({"outage", "billing", "meter", "quality", "other"})
HISTORY_SHOWN = 3
# Context keys of the ticket shown in detail; cleared before each detail so nothing stale remains.
_DETAIL_KEYS = ("t_ref", "t_kind", "t_category", "t_status", "t_created_at", "t_event_count",
                *(f"ev{i}_{part}" for i in range(1, HISTORY_SHOWN + 1) for part in ("at", "status")))
_REFERENCE = re.compile(r"(INC|REC)[- ]?([2-9A-Z]{4})")


# ---------------------------------------------------------------- references
def client_reference(session_key: str, kind: str, category: str) -> str:
    """Stable per session and per thing reported: a retry or a replayed hop gives the same one."""
    digest = hashlib.sha256(f"{session_key}|incidents.open_ticket|{kind}|{category}".encode()).hexdigest()
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
                                           description=kept.description, client_reference=kept.client_reference)
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
@step("incidents.check_outage", outcomes={"known", "none"})
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


@step("incidents.alert_power_back", outcomes={"ok"})
def alert_power_back(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.subscriptions is not None, "Deps.subscriptions is not wired"
    scope = str(ctx.data.get("outage_id") or ctx.data.get("zone") or "")
    deps.subscriptions.subscribe(ctx.user_id, "power_back", scope=scope, channel="sms", language=ctx.language)
    return StepResult("ok")


# ---------------------------------------------------------------- tickets
@step("incidents.choose_category", outcomes={"ok"})
def choose_category(ctx: StepContext, deps: Deps) -> StepResult:
    category = str(ctx.params["category"])
    if category not in CATEGORIES:
        raise ValueError(f"unknown complaint category {category!r}")
    return StepResult("ok", {"complaint_category": category,
                             "complaint_description": str(ctx.params.get("description") or category)})


@step("incidents.open_ticket", outcomes={"ok", "kept"})
def open_ticket(ctx: StepContext, deps: Deps) -> StepResult:
    """Open the ticket (params ``kind``; a complaint takes its category from the context).

    ``kept`` when the incident system is down: the report is stored locally and
    ``ticket_reference`` is then the local reference.
    """
    kind = str(ctx.params["kind"])
    if kind == "outage":
        category, description = "outage", str(ctx.params.get("description") or "Power outage")
    else:
        category = str(ctx.data.get("complaint_category") or "")
        description = str(ctx.data.get("complaint_description") or category)
        if category not in CATEGORIES:
            return StepResult("not_found")
    account = str(ctx.data.get("account_number") or "")
    if not account:
        return StepResult("not_found")
    reference = client_reference(ctx.session_key, kind, category)
    try:
        ticket = _incidents(deps).open_ticket(kind=kind, category=category, account_number=account,
                                              msisdn=ctx.user_id, description=description,
                                              client_reference=reference)
    except BackendUnavailable:
        _pending(deps).add(PendingTicket(client_reference=reference, msisdn=ctx.user_id, account_number=account,
                                         kind=kind, category=category, description=description,
                                         status="pending"))
        log.warning("ticket kept locally (incident system unavailable) user=%s", mask(ctx.user_id))
        return StepResult("kept", {"ticket_reference": local_reference(kind, reference)})
    return StepResult("ok", {"ticket_reference": ticket.reference})


# ---------------------------------------------------------------- tracking
@step("incidents.list_tickets", outcomes={"ok", "none"})
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


@step("incidents.ticket_detail", outcomes={"ok", "pending", "unknown"})
def ticket_detail(ctx: StepContext, deps: Deps) -> StepResult:
    """The ticket picked from the list (context ``ticket``), read again for its latest status."""
    chosen = ctx.data.get("ticket")
    if not isinstance(chosen, Mapping) or not chosen.get("ref"):
        return StepResult("unknown")
    return _find(ctx, deps, str(chosen["ref"]))


@step("incidents.find_ticket", outcomes={"ok", "pending", "unknown"})
def find_ticket(ctx: StepContext, deps: Deps) -> StepResult:
    """The ticket whose reference the customer typed (context ``typed_reference``, any case)."""
    reference = normalise_reference(str(ctx.data.get("typed_reference") or ""))
    if reference is None:
        return StepResult("unknown", dict.fromkeys(_DETAIL_KEYS))
    result = _find(ctx, deps, reference)
    result.data["typed_reference"] = reference
    return result
