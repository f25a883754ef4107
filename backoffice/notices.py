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
from typing import Any, Final

from flask import Blueprint, Response, jsonify
from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .context import services
from .models import Base
from .wire import fmt_datetime, query_int, utcnow

__all__ = ["KINDS", "Notice", "blueprint", "notice_json", "publish"]

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
