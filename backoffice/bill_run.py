"""Issuing a bill by hand (``python -m backoffice bill issue ACCOUNT AMOUNT --kwh K --due YYYY-MM-DD``),
the stand-in's billing run: the bill and its notice (``bill_issued``) in one transaction, so the customers
who opted in to bill alerts hear about it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .errors import Conflict, NotFound
from .models import Account, Bill
from .notices import bill_issued
from .wire import utcnow

__all__ = ["issue_bill"]


def issue_bill(sessions: sessionmaker[Session], account_number: str, amount: Decimal, *, kwh: Decimal,
               due: date, period: str | None = None, today: date | None = None) -> dict[str, Any]:
    """Create the bill of ``period`` (default: the month of ``today``), issued ``today`` (default: the
    wall clock's day, in UTC); ``Conflict`` when it exists."""
    today = today or utcnow().date()
    period = period or f"{today.year}-{today.month:02d}"
    with sessions() as session, session.begin():
        if session.get(Account, account_number) is None:
            raise NotFound(f"no account {account_number}", code="account_not_found")
        bill_id = f"B-{account_number}-{period}"
        if session.get(Bill, bill_id) is not None:
            raise Conflict(f"bill {bill_id} already exists", code="bill_exists")
        bill = Bill(bill_id=bill_id, account_number=account_number, period=period, issued_on=today, due_on=due,
                    amount=amount, paid_amount=Decimal(0), kwh=kwh)
        session.add(bill)
        session.flush()
        notice = bill_issued(session, bill)
        return {"bill_id": bill_id, "notice_id": notice.id}
