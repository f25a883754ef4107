"""Demo data: three customers, their accounts, bills, wallets, 90 days of hourly readings, one outage.

Seeding is idempotent: every seeded row has a fixed id and is only added when missing;
a meter's readings are only generated when it has none.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from .models import Account, Bill, Customer, Meter, Outage, Payment, Reading, Wallet
from .wallets import seed_wallets
from .wire import utcnow

__all__ = ["DEMO_PERIODS", "SEED_OUTAGE_ID", "seed_demo"]

READING_DAYS = 90
SEED_OUTAGE_ID = "OUT-SEED0001"
DEMO_PERIODS = tuple(f"{y}-{m:02d}" for y, m in [(2025, 12)] + [(2026, m) for m in range(1, 12)])
TARIFF = Decimal(115)  # XOF per kWh, to derive a bill's kWh from its amount
_REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class _DemoAccount:
    number: str
    zone: str
    kind: str
    amounts: tuple[int, ...]   # one per DEMO_PERIODS entry (empty for prepaid)
    unpaid_last: int           # how many of the most recent bills are unpaid
    hourly_kwh: float          # mean consumption for the generated readings


@dataclass(frozen=True)
class _DemoCustomer:
    customer_id: str
    phone: str
    name: str
    language: str
    category: str
    wallet: int
    accounts: tuple[_DemoAccount, ...]


DEMO_CUSTOMERS: tuple[_DemoCustomer, ...] = (
    _DemoCustomer("CUS-000001", "+221770000001", "Awa Ndiaye", "fr", "residential", 50_000, (
        _DemoAccount("1000001", "DKR-MEDINA", "postpaid",
                     (6200, 6800, 7400, 8100, 7900, 7100, 6600, 6900, 7300, 6400, 7000, 5500), 2, 0.28),
    )),
    _DemoCustomer("CUS-000002", "+221770000002", "Sahel Print SARL", "en", "business", 2_000_000, (
        _DemoAccount("2000001", "DKR-PLATEAU", "postpaid",
                     (182000, 176500, 190250, 201000, 214800, 226300, 219900, 208400, 199700, 187600,
                      180900, 185200), 1, 2.1),
        _DemoAccount("2000002", "THIES-NORD", "postpaid",
                     (96400, 91800, 99100, 104600, 111200, 118900, 115300, 109800, 102400, 98700,
                      94200, 97500), 1, 1.2),
        _DemoAccount("2000003", "DKR-PLATEAU", "postpaid",
                     (45200, 43800, 47100, 49900, 52600, 55800, 54100, 51700, 48900, 46300, 44800,
                      46100), 1, 0.6),
    )),
    _DemoCustomer("CUS-000003", "+221770000003", "Moussa Diop", "fr", "residential", 3_000, (
        _DemoAccount("3000001", "DKR-PARCELLES", "prepaid", (), 0, 0.18),
    )),
)
PREPAID_CREDIT_KWH = Decimal("42.5")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _seed_reference(bill_id: str) -> str:
    return "MM" + "".join(_REF_ALPHABET[b % len(_REF_ALPHABET)] for b in _digest(bill_id)[:10])


def _bill_dates(period: str) -> tuple[date, date]:
    year, month = (int(part) for part in period.split("-"))
    issued = date(year, month, 20)
    return issued, issued + timedelta(days=15)


def _seed_bills(session: Session, account: _DemoAccount) -> None:
    if not account.amounts:
        return
    unpaid_from = len(account.amounts) - account.unpaid_last
    for position, (period, amount) in enumerate(zip(DEMO_PERIODS, account.amounts, strict=True)):
        bill_id = f"B-{account.number}-{period}"
        if session.get(Bill, bill_id) is not None:
            continue
        issued, due = _bill_dates(period)
        paid = position < unpaid_from
        session.add(Bill(
            bill_id=bill_id, account_number=account.number, period=period, issued_on=issued, due_on=due,
            amount=Decimal(amount), paid_amount=Decimal(amount) if paid else Decimal(0),
            kwh=(Decimal(amount) / TARIFF).quantize(Decimal("0.001")),
        ))
        if paid:
            session.add(Payment(
                payment_id="PAY-" + _digest("pay:" + bill_id).hex()[:12].upper(),
                account_number=account.number, reference=_seed_reference(bill_id), amount=Decimal(amount),
                currency="XOF", paid_at=datetime.combine(due - timedelta(days=3 + position % 5), datetime.min.time())
                + timedelta(hours=9 + position % 8),
                channel="mobile_money" if position % 3 else "agency",
            ))


def _reading_rows(meter_id: str, hourly_kwh: float, end: datetime) -> list[dict[str, object]]:
    """Hourly cumulative index readings over READING_DAYS days, the last one at ``end``."""
    rng = random.Random(meter_id)
    hours = READING_DAYS * 24
    index = Decimal(rng.randint(5_000, 40_000))
    rows: list[dict[str, object]] = []
    start = end - timedelta(hours=hours)
    for step in range(hours + 1):
        at = start + timedelta(hours=step)
        if step:
            daily_shape = 1.0 + 0.6 * math.sin((at.hour - 13) / 24 * 2 * math.pi)  # evening peak
            used = max(hourly_kwh * daily_shape * rng.uniform(0.7, 1.3), 0.0)
            index += Decimal(str(round(used, 3)))
        rows.append({"meter_id": meter_id, "at": at, "index_kwh": index, "source": "seed"})
    return rows


def seed_demo(session_factory: sessionmaker[Session], now: datetime | None = None) -> bool:
    """Add whatever demo data is missing; returns True when anything was added."""
    now = (now or utcnow()).replace(microsecond=0)
    added = False
    with session_factory() as session, session.begin():
        for customer in DEMO_CUSTOMERS:
            if session.get(Customer, customer.customer_id) is None:
                session.add(Customer(customer_id=customer.customer_id, phone=customer.phone,
                                     name=customer.name, language=customer.language))
                added = True
            if session.get(Wallet, customer.phone) is None:
                session.add(Wallet(msisdn=customer.phone, balance=Decimal(customer.wallet)))
                added = True
            session.flush()
            for account in customer.accounts:
                meter_id = f"MTR-{account.number}"
                if session.get(Account, account.number) is None:
                    session.add(Account(account_number=account.number, customer_id=customer.customer_id,
                                        category=customer.category, kind=account.kind, zone=account.zone,
                                        meter_id=meter_id))
                    session.flush()
                    added = True
                if session.get(Meter, meter_id) is None:
                    prepaid = account.kind == "prepaid"
                    session.add(Meter(meter_id=meter_id, account_number=account.number, prepaid=prepaid,
                                      credit_kwh=PREPAID_CREDIT_KWH if prepaid else None,
                                      credit_updated_at=now if prepaid else None))
                    session.flush()
                    added = True
                before = len(session.new)
                _seed_bills(session, account)
                added = added or len(session.new) > before
                if session.scalar(select(Reading.id).where(Reading.meter_id == meter_id).limit(1)) is None:
                    session.flush()
                    session.execute(insert(Reading), _reading_rows(meter_id, account.hourly_kwh, now))
                    added = True
        if session.get(Outage, SEED_OUTAGE_ID) is None:
            session.add(Outage(outage_id=SEED_OUTAGE_ID, zone="THIES-NORD", started_at=now - timedelta(hours=2),
                               estimated_restoration=now + timedelta(hours=3),
                               cause="Transformer fault on the Thiès-Nord feeder", status="ongoing"))
            added = True
        added = seed_wallets(session) or added
    return added
