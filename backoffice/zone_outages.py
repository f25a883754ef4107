"""Declaring an outage or a restoration for a whole zone, which the product broadcasts to the zone's
subscribers (``POST /api/v1/zones/<zone>/outage``, ``POST /api/v1/zones/<zone>/restore``, and
``python -m backoffice outage declare ZONE --eta ...`` / ``outage restore ZONE``).

Each declaration records the outage (``bo_outages``, the same table the incident API reads) and
publishes a notice in the same transaction. Restoring a zone with no ongoing outage is refused
(409): a second "power is back" would message every subscriber again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .context import services
from .errors import Conflict, Invalid
from .models import Outage
from .notices import outage_declared, publish
from .wire import datetime_field, fmt_datetime, json_body, text_field, utcnow

__all__ = ["blueprint", "declare_outage", "restore_zone"]

blueprint = Blueprint("zone_outages", __name__, url_prefix="/api/v1")


def _zone(zone: str) -> str:
    zone = zone.strip()
    if not zone or len(zone) > 40:
        raise Invalid("a zone is 1 to 40 characters")
    return zone


def declare_outage(sessions: sessionmaker[Session], zone: str, *, eta: datetime | None = None,
                   cause: str = "") -> dict[str, Any]:
    """Record an ongoing outage in ``zone`` and tell its subscribers."""
    zone = _zone(zone)
    with sessions() as session, session.begin():
        outage = Outage(outage_id="OUT-" + uuid.uuid4().hex[:8].upper(), zone=zone, cause=cause or "unspecified",
                        started_at=utcnow(), estimated_restoration=eta, status="ongoing")
        session.add(outage)
        notice = outage_declared(session, outage)
        return {"notice_id": notice.id, "outage_id": outage.outage_id, "zone": zone, "eta": fmt_datetime(eta)}


def restore_zone(sessions: sessionmaker[Session], zone: str) -> dict[str, Any]:
    """Resolve every ongoing outage of ``zone`` and tell its subscribers; ``Conflict`` when none is ongoing."""
    zone = _zone(zone)
    with sessions() as session, session.begin():
        ongoing = session.scalars(select(Outage).where(Outage.zone == zone, Outage.status == "ongoing")
                                  .with_for_update()).all()
        if not ongoing:
            raise Conflict(f"no ongoing outage in zone {zone}", code="no_ongoing_outage")
        now = utcnow()
        for outage in ongoing:
            outage.status, outage.resolved_at = "resolved", now
        ids = sorted(o.outage_id for o in ongoing)
        notice = publish(session, "power_restored", zone=zone, outage_ids=ids)
        return {"notice_id": notice.id, "zone": zone, "outage_ids": ids}


@blueprint.post("/zones/<zone>/outage")
def declare(zone: str) -> tuple[Response, int]:
    body = json_body() if request.get_data(cache=True).strip() else {}
    eta = datetime_field(body, "eta", required=False)
    cause = text_field(body, "cause", required=False, max_len=200) or ""
    return jsonify(declare_outage(services().sessions, zone, eta=eta, cause=cause)), 201


@blueprint.post("/zones/<zone>/restore")
def restore(zone: str) -> Response:
    return jsonify(restore_zone(services().sessions, zone))
