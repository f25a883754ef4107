"""Incident API: outages per zone, and customer tickets with short references and a status history."""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Final

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import notices
from .context import services
from .errors import Conflict, Invalid, NotFound
from .models import Account, Bill, Outage, Ticket, TicketEvent
from .wire import datetime_field, fmt_datetime, json_body, normalise_msisdn, text_field, utcnow

__all__ = ["REFERENCE_ALPHABET", "blueprint", "new_reference"]

blueprint = Blueprint("incidents", __name__, url_prefix="/api/v1")

REFERENCE_ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PREFIXES: Final = {"outage": "INC-", "complaint": "REC-"}
CATEGORIES: Final = ("outage", "billing", "meter", "quality", "other")
STATUSES: Final = ("open", "in_progress", "resolved", "closed")
# A ticket in one of these is still being handled: the same report again is a duplicate of it.
OPEN_STATUSES: Final = ("open", "in_progress")


def new_reference(kind: str) -> str:
    return PREFIXES[kind] + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(4))


def outage_json(outage: Outage) -> dict[str, Any]:
    return {
        "outage_id": outage.outage_id,
        "zone": outage.zone,
        "started_at": fmt_datetime(outage.started_at),
        "estimated_restoration": fmt_datetime(outage.estimated_restoration),
        "cause": outage.cause,
        "status": outage.status,
        "resolved_at": fmt_datetime(outage.resolved_at),
    }


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    return {
        "reference": ticket.reference,
        "kind": ticket.kind,
        "category": ticket.category,
        "status": ticket.status,
        "account_number": ticket.account_number,
        "msisdn": ticket.msisdn,
        "description": ticket.description,
        "client_reference": ticket.client_reference,
        "bill_id": ticket.bill_id,
        "created_at": fmt_datetime(ticket.created_at),
        "history": [{"at": fmt_datetime(e.at), "status": e.status, "note": e.note} for e in ticket.history],
    }


# ------------------------------------------------------------------ outages
@blueprint.get("/outages")
def list_outages() -> Response:
    zone = (request.args.get("zone") or "").strip()
    everything = request.args.get("all", "") in ("1", "true", "yes")
    query = select(Outage).order_by(Outage.started_at.desc())
    if zone:
        query = query.where(Outage.zone == zone)
    if not everything:
        query = query.where(Outage.status == "ongoing")
    with services().sessions() as session:
        return jsonify({"outages": [outage_json(o) for o in session.scalars(query)]})


@blueprint.post("/outages")
def create_outage() -> tuple[Response, int]:
    body = json_body()
    zone = text_field(body, "zone", max_len=40)
    cause = text_field(body, "cause", max_len=200)
    restoration = datetime_field(body, "estimated_restoration", required=False)
    outage = Outage(outage_id="OUT-" + uuid.uuid4().hex[:8].upper(), zone=zone, cause=cause,
                    started_at=utcnow(), estimated_restoration=restoration, status="ongoing")
    with services().sessions() as session, session.begin():
        session.add(outage)
        notices.outage_declared(session, outage)
    return jsonify(outage_json(outage)), 201


@blueprint.post("/outages/<outage_id>/resolve")
def resolve_outage(outage_id: str) -> Response:
    """Idempotent: resolving a resolved outage answers it unchanged."""
    with services().sessions() as session, session.begin():
        outage = session.get(Outage, outage_id)
        if outage is None:
            raise NotFound(f"no outage {outage_id}", code="outage_not_found")
        if outage.status != "resolved":
            outage.status, outage.resolved_at = "resolved", utcnow()
            notices.outage_resolved(session, outage)
        return jsonify(outage_json(outage))


# ------------------------------------------------------------------ tickets
def _ticket(session: Session, reference: str) -> Ticket:
    ticket = session.get(Ticket, reference.upper())
    if ticket is None:
        raise NotFound(f"no ticket {reference}", code="ticket_not_found")
    return ticket


def _by_client_reference(session: Session, client_reference: str) -> Ticket | None:
    return session.scalar(select(Ticket).where(Ticket.client_reference == client_reference))


def _open_duplicate(session: Session, account_number: str | None, kind: str, category: str,
                    bill_id: str | None) -> Ticket | None:
    """The account's ticket still open for the same subject (kind, category, disputed bill), if any."""
    if account_number is None:
        return None
    return session.scalar(select(Ticket).where(
        Ticket.account_number == account_number, Ticket.kind == kind, Ticket.category == category,
        Ticket.bill_id.is_(None) if bill_id is None else Ticket.bill_id == bill_id,
        Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.created_at).limit(1))


@blueprint.post("/tickets")
def create_ticket() -> tuple[Response, int]:
    """Same ``client_reference`` -> the ticket already created (200), whatever the rest of the body.

    The same subject (account, kind, category, disputed bill) while a ticket for it is still open
    -> that open ticket (200, its own ``client_reference``): two sessions reporting the same thing
    never open two tickets.
    """
    body = json_body()
    client_reference = text_field(body, "client_reference", required=False, max_len=100) or None
    with services().sessions() as session:
        if client_reference and (existing := _by_client_reference(session, client_reference)) is not None:
            return jsonify(ticket_json(existing)), 200
        kind = text_field(body, "kind", max_len=10, choices=tuple(PREFIXES)) or ""
        category = text_field(body, "category", max_len=10, choices=CATEGORIES) or ""
        account_number = text_field(body, "account_number", required=False, max_len=20) or None
        raw_msisdn = text_field(body, "msisdn", required=False, max_len=20)
        msisdn = normalise_msisdn(raw_msisdn) if raw_msisdn else None
        if raw_msisdn and msisdn is None:
            raise Invalid("'msisdn' must be an E.164 phone number such as +221770000001")
        if account_number is None and msisdn is None:
            raise Invalid("give 'account_number' or 'msisdn' (or both)")
        description = text_field(body, "description", required=False, max_len=1000) or ""
        bill_id = text_field(body, "bill_id", required=False, max_len=40) or None
        if account_number is not None and session.get(Account, account_number) is None:
            raise NotFound(f"no account {account_number}", code="account_not_found")
        if bill_id is not None:
            bill = session.get(Bill, bill_id)
            if bill is None or account_number is None or bill.account_number != account_number:
                raise NotFound(f"no bill {bill_id} on this account", code="bill_not_found")
        if (open_one := _open_duplicate(session, account_number, kind, category, bill_id)) is not None:
            return jsonify(ticket_json(open_one)), 200
        now = utcnow()
        for _ in range(20):
            reference = new_reference(kind)
            if session.get(Ticket, reference) is None:
                break
        else:
            raise Conflict("could not allocate a free ticket reference", code="references_exhausted")
        ticket = Ticket(reference=reference, client_reference=client_reference, kind=kind, category=category,
                        status="open", account_number=account_number, msisdn=msisdn, description=description,
                        created_at=now, bill_id=bill_id)
        ticket.history.append(TicketEvent(at=now, status="open", note="created"))
        session.add(ticket)
        try:
            session.commit()
        except IntegrityError:  # same client_reference raced in (or, rarely, the same reference)
            session.rollback()
            raced = _by_client_reference(session, client_reference) if client_reference else None
            if raced is None:
                raise
            return jsonify(ticket_json(raced)), 200
        return jsonify(ticket_json(ticket)), 201


@blueprint.get("/tickets/<reference>")
def get_ticket(reference: str) -> Response:
    with services().sessions() as session:
        return jsonify(ticket_json(_ticket(session, reference)))


@blueprint.get("/tickets")
def list_tickets() -> Response:
    account_number = (request.args.get("account_number") or "").strip()
    raw_msisdn = (request.args.get("msisdn") or "").strip()
    if not account_number and not raw_msisdn:
        raise Invalid("query parameter 'account_number' (or 'msisdn') is required")
    query = select(Ticket).order_by(Ticket.created_at.desc(), Ticket.reference)
    with services().sessions() as session:
        if account_number:
            if session.get(Account, account_number) is None:
                raise NotFound(f"no account {account_number}", code="account_not_found")
            query = query.where(Ticket.account_number == account_number)
        if raw_msisdn:
            query = query.where(Ticket.msisdn == normalise_msisdn(raw_msisdn))
        return jsonify({"tickets": [ticket_json(t) for t in session.scalars(query)]})


@blueprint.post("/tickets/<reference>/status")
def change_status(reference: str) -> Response:
    """Agents move a ticket between statuses; ``closed`` is final, and the status must change."""
    body = json_body()
    status = text_field(body, "status", max_len=12, choices=STATUSES) or ""
    note = text_field(body, "note", required=False, max_len=1000) or ""
    with services().sessions() as session, session.begin():
        ticket = _ticket(session, reference)
        if ticket.status == "closed":
            raise Conflict(f"ticket {ticket.reference} is closed", code="ticket_closed")
        if ticket.status == status:
            raise Conflict(f"ticket {ticket.reference} is already {status}", code="status_unchanged")
        ticket.status = status
        ticket.history.append(TicketEvent(at=utcnow(), status=status, note=note))
        session.flush()
        notices.ticket_status_changed(session, ticket)
        return jsonify(ticket_json(ticket))
