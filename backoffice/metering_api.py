"""Metering API (HES/MDM stand-in): latest reading, consumption over N days, prepaid credit, batch ingestion."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from .context import services
from .errors import Invalid, NotFound, TooLarge
from .models import Meter, PaymentIntent, Reading, Vend
from .payment_decisions import XOF_PER_KWH
from .readings import MAX_BATCH, ingest
from .wire import fmt_datetime, fmt_decimal, json_body, query_int

__all__ = ["blueprint", "index_at"]

blueprint = Blueprint("metering", __name__, url_prefix="/api/v1")


def reading_json(reading: Reading) -> dict[str, Any]:
    return {"meter_id": reading.meter_id, "at": fmt_datetime(reading.at), "index_kwh": fmt_decimal(reading.index_kwh)}


def _meter(session: Session, meter_id: str) -> Meter:
    meter = session.get(Meter, meter_id)
    if meter is None:
        raise NotFound(f"no meter {meter_id}", code="meter_not_found")
    return meter


def _latest(session: Session, meter_id: str) -> Reading | None:
    return session.scalar(select(Reading).where(Reading.meter_id == meter_id).order_by(Reading.at.desc()).limit(1))


def index_at(session: Session, meter_id: str, moment: datetime) -> Decimal | None:
    """The cumulative index at ``moment``: the last reading at or before it, else the first one after it."""
    found = session.scalar(select(Reading.index_kwh).where(Reading.meter_id == meter_id, Reading.at <= moment)
                           .order_by(Reading.at.desc()).limit(1))
    if found is None:
        found = session.scalar(select(Reading.index_kwh).where(Reading.meter_id == meter_id)
                               .order_by(Reading.at).limit(1))
    return found


def _difference(later: Decimal | None, earlier: Decimal | None) -> Decimal:
    if later is None or earlier is None:
        return Decimal(0)
    return max(later - earlier, Decimal(0))


@blueprint.get("/meters/<meter_id>/readings/latest")
def latest(meter_id: str) -> Response | tuple[str, int]:
    with services().sessions() as session:
        _meter(session, meter_id)
        reading = _latest(session, meter_id)
        if reading is None:
            return "", 204
        return jsonify(reading_json(reading))


@blueprint.get("/meters/<meter_id>/consumption")
def consumption(meter_id: str) -> Response:
    """kWh used over the last ``days`` days (index difference) and over the same length just before.

    The window ends now, or at the latest reading when the meter's clock runs a little ahead.
    """
    days = query_int("days", 7, 1, 366)
    span = timedelta(days=days)
    with services().sessions() as session:
        _meter(session, meter_id)
        last = _latest(session, meter_id)
        now = services().now()
        end = max(now, last.at) if last is not None else now
        at_now, at_start, at_before = (index_at(session, meter_id, t) for t in (end, end - span, end - 2 * span))
        return jsonify({
            "meter_id": meter_id,
            "days": days,
            "kwh": fmt_decimal(_difference(at_now, at_start)),
            "previous_kwh": fmt_decimal(_difference(at_start, at_before)),
            "last_reading": reading_json(last) if last is not None else None,
        })


@blueprint.get("/meters/<meter_id>/credit")
def credit(meter_id: str) -> Response:
    with services().sessions() as session:
        meter = session.get(Meter, meter_id)
        if meter is None or not meter.prepaid:
            raise NotFound(f"no prepaid meter {meter_id}", code="meter_not_found")
        return jsonify({"meter_id": meter_id, "credit_kwh": fmt_decimal(meter.credit_kwh or Decimal(0)),
                        "updated_at": fmt_datetime(meter.credit_updated_at),
                        "last_purchase": _last_purchase(session, meter_id, meter.account_number)})


def _last_purchase(session: Session, meter_id: str, account_number: str | None) -> dict[str, Any] | None:
    """The latest purchase of the meter with its token, or None: a succeeded prepaid payment of the account, or a
    token vended on a payment settled by hand (``POST /meters/{id}/vends``), whichever came last."""
    found: list[tuple[Any, dict[str, Any]]] = []
    if account_number is not None:
        paid = session.scalar(
            select(PaymentIntent).where(PaymentIntent.account_number == account_number,
                                        PaymentIntent.purpose == "prepaid", PaymentIntent.status == "succeeded",
                                        PaymentIntent.token.is_not(None))
            .order_by(PaymentIntent.decided_at.desc(), PaymentIntent.payment_id).limit(1))
        if paid is not None and paid.token is not None:
            at = paid.decided_at or paid.created_at
            found.append((at, {"paid_at": fmt_datetime(at), "amount": fmt_decimal(paid.amount),
                               "kwh": fmt_decimal((paid.amount / XOF_PER_KWH).quantize(Decimal("0.001"))),
                               "token": paid.token}))
    vended = session.scalar(select(Vend).where(Vend.meter_id == meter_id)
                            .order_by(Vend.created_at.desc(), Vend.vend_id).limit(1))
    if vended is not None:
        found.append((vended.created_at, {"paid_at": fmt_datetime(vended.created_at),
                                          "amount": fmt_decimal(vended.amount), "kwh": fmt_decimal(vended.kwh),
                                          "token": vended.token}))
    return max(found, key=lambda item: item[0])[1] if found else None


@blueprint.post("/readings")
def post_readings() -> Response:
    items = json_body().get("readings")
    if not isinstance(items, list):
        raise Invalid("'readings' must be a list of readings")
    if len(items) > MAX_BATCH:
        raise TooLarge(f"at most {MAX_BATCH} readings per batch")
    with services().sessions() as session, session.begin():
        report = ingest(session, items)
    return jsonify(report.as_json())
