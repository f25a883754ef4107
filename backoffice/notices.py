"""The back office's feed of things customers should hear about: outages declared and power restored
in a zone, bills issued, prepaid credit running low, ticket status changes, deferrals approved.

Producers call ``publish(session, kind, ...)`` inside their own transaction (the event exists exactly
when the fact does). The product's worker reads ``GET /api/v1/notices?after=<id>`` in id order and
keeps its own cursor: it chose to poll rather than be called, so a product that is down or slow
loses nothing (the feed waits), the back office needs no address of the product and no retry
machinery, and the read is an ordinary API-key call like every other.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from flask import Blueprint, Response, jsonify
from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .context import services
from .models import Account, Arrangement, Base, Bill, Meter, Outage, Reading, Ticket
from .wire import fmt_date, fmt_datetime, fmt_decimal, query_int, utcnow

__all__ = ["KINDS", "LOW_CREDIT_KWH", "Notice", "arrangement_approved", "bill_issued", "blueprint", "notice_json",
           "outage_declared", "outage_resolved", "publish", "ticket_status_changed", "watch_prepaid_credit"]

# Below this estimated credit a prepaid customer is told, once per top-up.
LOW_CREDIT_KWH: Final = Decimal(5)

KINDS: Final = ("outage_declared", "power_restored", "bill_issued", "low_credit", "ticket_status",
                "deferral_approved")

blueprint = Blueprint("notices", __name__, url_prefix="/api/v1")


class Notice(Base):
    __tablename__ = "bo_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24))
    zone: Mapped[str | None] = mapped_column(String(40))            # zone events
    msisdn: Mapped[str | None] = mapped_column(String(20))          # customer events
    account_number: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="{}")           # JSON: what the message says
    created_at: Mapped[datetime] = mapped_column(DateTime)


def publish(session: Session, kind: str, *, zone: str | None = None, msisdn: str | None = None,
            account_number: str | None = None, **fields: Any) -> Notice:
    """Add an event to the feed in the caller's transaction. ``fields`` must be JSON-able."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind '{kind}'")
    notice = Notice(kind=kind, zone=zone, msisdn=msisdn, account_number=account_number,
                    body=json.dumps(fields, default=str), created_at=utcnow())
    session.add(notice)
    session.flush()
    return notice


# ------------------------------------------------------------ producers (one call line at each fact)
def _holder(session: Session, account_number: str | None) -> tuple[str | None, str | None]:
    """The account holder's phone and language."""
    account = session.get(Account, account_number) if account_number else None
    if account is None:
        return None, None
    return account.customer.phone, account.customer.language


def ticket_status_changed(session: Session, ticket: Ticket) -> None:
    """An agent moved a ticket: its reporter is told (when we know their number)."""
    holder, language = _holder(session, ticket.account_number)
    msisdn = ticket.msisdn or holder
    if msisdn:
        publish(session, "ticket_status", msisdn=msisdn, account_number=ticket.account_number,
                reference=ticket.reference, status=ticket.status, language=language)


def outage_declared(session: Session, outage: Outage) -> Notice:
    """An outage recorded in a zone: the zone's outage-alert subscribers are told."""
    return publish(session, "outage_declared", zone=outage.zone, outage_id=outage.outage_id,
            eta=fmt_datetime(outage.estimated_restoration), cause=outage.cause)


def outage_resolved(session: Session, outage: Outage) -> None:
    """One outage resolved: "SMS me when power is back" for it (and the zone's alerts) are answered."""
    publish(session, "power_restored", zone=outage.zone, outage_ids=[outage.outage_id])


def arrangement_approved(session: Session, arrangement: Arrangement) -> None:
    """A deferral or an instalment plan was granted: the holder gets the first due date and amount."""
    msisdn, language = _holder(session, arrangement.account_number)
    first = (arrangement.schedule or [{}])[0]
    fields: dict[str, Any] = {"arrangement_id": arrangement.arrangement_id, "amount": first.get("amount"),
                              "due_date": first.get("due_on"), "language": language}
    if arrangement.kind == "instalments":
        fields["instalments"] = len(arrangement.schedule)
    publish(session, "deferral_approved", msisdn=msisdn, account_number=arrangement.account_number, **fields)


def bill_issued(session: Session, bill: Bill) -> Notice:
    """A new bill: the holder is told if they opted in to bill alerts (the product checks)."""
    msisdn, language = _holder(session, bill.account_number)
    return publish(session, "bill_issued", msisdn=msisdn, account_number=bill.account_number, bill_id=bill.bill_id,
            amount=fmt_decimal(bill.amount), due_date=fmt_date(bill.due_on), language=language)


def watch_prepaid_credit(session: Session, meter_id: str) -> None:
    """After a reading from the meter feed: estimate what is left of the last top-up (credit at the
    top-up minus the energy read since) and tell the holder once per top-up when it runs low."""
    meter = session.get(Meter, meter_id)
    if meter is None or not meter.prepaid or meter.credit_kwh is None or not meter.account_number:
        return
    since = meter.credit_updated_at or datetime.min
    readings = select(Reading.index_kwh).where(Reading.meter_id == meter_id, Reading.at >= since)
    first = session.scalar(readings.order_by(Reading.at).limit(1))
    last = session.scalar(readings.order_by(Reading.at.desc()).limit(1))
    if first is None or last is None:
        return
    left = meter.credit_kwh - (last - first)
    if left >= LOW_CREDIT_KWH:
        return
    told = session.scalar(select(Notice.id).where(Notice.kind == "low_credit",
                                                  Notice.account_number == meter.account_number,
                                                  Notice.created_at >= since).limit(1))
    if told is None:
        msisdn, language = _holder(session, meter.account_number)
        publish(session, "low_credit", msisdn=msisdn, account_number=meter.account_number, meter_id=meter_id,
                credit=fmt_decimal(max(left, Decimal(0))), language=language)


def notice_json(notice: Notice) -> dict[str, Any]:
    return {"id": notice.id, "kind": notice.kind, "zone": notice.zone, "msisdn": notice.msisdn,
            "account_number": notice.account_number, "fields": json.loads(notice.body),
            "created_at": fmt_datetime(notice.created_at)}


@blueprint.get("/notices")
def list_notices() -> Response:
    """Events after ``after`` (an id), oldest first, at most ``limit``; ``next`` is the cursor to keep."""
    after = query_int("after", 0, 0, 2**62)
    limit = query_int("limit", 200, 1, 1000)
    with services().sessions() as session:
        notices = session.scalars(select(Notice).where(Notice.id > after).order_by(Notice.id).limit(limit)).all()
        items = [notice_json(n) for n in notices]
    return jsonify({"notices": items, "next": items[-1]["id"] if items else after})
