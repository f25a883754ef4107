"""Meter reading ingestion rules, shared by the HTTP batch endpoint and the MQTT feed.

A reading ``{"meter_id", "at", "index_kwh"}`` is rejected when the meter is unknown, the item
is malformed, a reading already exists at that instant (duplicate), or its cumulative index is
lower than the one before it (or higher than the one after it): the index never goes backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import notices
from .models import Meter, Reading
from .wire import has_places, parse_datetime, parse_decimal, utcnow

__all__ = ["FUTURE_TOLERANCE", "MAX_BATCH", "IngestReport", "Rejection", "ingest"]

MAX_BATCH = 10_000
FUTURE_TOLERANCE = timedelta(minutes=10)
MAX_INDEX = Decimal(99999999999)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reason: str


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": [{"index": r.index, "reason": r.reason} for r in self.rejected]}


def _parse(item: Any) -> tuple[str, datetime, Decimal]:
    """``(meter_id, at, index_kwh)``, or ``TypeError``/``ValueError`` saying what is malformed."""
    if not isinstance(item, dict):
        raise TypeError("the reading must be an object")
    meter_id = item.get("meter_id")
    if not isinstance(meter_id, str) or not meter_id.strip() or len(meter_id) > 20:
        raise TypeError("'meter_id' must be a non-empty string")
    try:
        at = parse_datetime(item.get("at"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"'at' {exc}") from None
    if at > utcnow() + FUTURE_TOLERANCE:
        raise ValueError("'at' is in the future")
    try:
        index = parse_decimal(item.get("index_kwh"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"'index_kwh' {exc}") from None
    if index < 0 or index > MAX_INDEX:
        raise ValueError("'index_kwh' is out of range")
    if not has_places(index, 3):
        index = index.quantize(Decimal("0.001"))
    return meter_id.strip(), at, index


def _check(session: Session, meter_id: str, at: datetime, index: Decimal) -> str | None:
    """Why the reading cannot be stored, or None."""
    if session.get(Meter, meter_id) is None:
        return "unknown_meter"
    same = session.scalar(select(Reading.id).where(Reading.meter_id == meter_id, Reading.at == at))
    if same is not None:
        return "duplicate"
    before = session.scalar(select(Reading.index_kwh).where(Reading.meter_id == meter_id, Reading.at < at)
                            .order_by(Reading.at.desc()).limit(1))
    if before is not None and index < before:
        return "index_backwards"
    after = session.scalar(select(Reading.index_kwh).where(Reading.meter_id == meter_id, Reading.at > at)
                           .order_by(Reading.at).limit(1))
    if after is not None and index > after:
        return "index_backwards"
    return None


def ingest(session: Session, items: list[Any], source: str = "api") -> IngestReport:
    """Store the acceptable readings (each checked against those stored before it, in order); caller commits."""
    report = IngestReport()
    for position, item in enumerate(items):
        try:
            meter_id, at, index = _parse(item)
        except (TypeError, ValueError) as exc:
            report.rejected.append(Rejection(position, f"malformed: {exc}"))
            continue
        reason = _check(session, meter_id, at, index)
        if reason is not None:
            report.rejected.append(Rejection(position, reason))
            continue
        session.add(Reading(meter_id=meter_id, at=at, index_kwh=index, source=source))
        session.flush()
        notices.watch_prepaid_credit(session, meter_id)
        report.accepted += 1
    return report
