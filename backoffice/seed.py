"""Demo data: three customers, their accounts, bills, wallets, 90 days of hourly readings, one outage.

The figures tell one story. A bill of period ``YYYY-MM`` is issued on the 20th of that month
for the meter's consumption over its billing cycle (the 20th of the month before to the 20th,
see ``cycle_bounds``); its kWh priced with ``config/tariffs.yaml`` give its amount (within a
few XOF, checked by the tests). The hourly readings spread each cycle's kWh over its hours
(an evening peak, busier and quieter days), so the consumption screen's estimate agrees with
the bills and its 7 and 30-day comparisons move. Cycles without a bill (the current one, a
prepaid meter) use the account's usual monthly kWh with a seasonal swing.

Seeding is idempotent: every seeded row has a fixed id and is only added when missing;
a meter's readings are only generated when it has none.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from .models import Account, Bill, Customer, Meter, Outage, Payment, PaymentIntent, Reading, Wallet
from .wallets import seed_wallets
from .wire import utcnow

__all__ = ["BILLING_DAY", "DEMO_PERIODS", "SEED_OUTAGE_ID", "cycle_bounds", "seed_demo"]

READING_DAYS = 90
SEED_OUTAGE_ID = "OUT-SEED0001"
DEMO_PERIODS = tuple(f"{y}-{m:02d}" for y, m in [(2025, 12)] + [(2026, m) for m in range(1, 12)])
BILLING_DAY = 20  # bills are issued, and cycles end, on this day of the month
_REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class _DemoAccount:
    number: str
    zone: str
    kind: str
    amounts: tuple[int, ...]   # one per DEMO_PERIODS entry (empty for prepaid)
    unpaid_last: int           # how many of the most recent bills are unpaid
    hourly_kwh: float          # mean consumption of the cycles without a bill
    kwh: tuple[str, ...] = ()  # each bill's cycle consumption: priced with the tariff, gives its amount


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
                     (6200, 6800, 7400, 8100, 7900, 7100, 6600, 6900, 7300, 6400, 7000, 5500), 2, 0.085,
                     ("53.4", "59.9", "66.3", "73.8", "71.6", "63.1", "57.7", "60.9", "65.2", "55.6", "62.0",
                      "46.0")),
    )),
    _DemoCustomer("CUS-000002", "+221770000002", "Sahel Print SARL", "en", "business", 2_000_000, (
        _DemoAccount("2000001", "DKR-PLATEAU", "postpaid",
                     (182000, 176500, 190250, 201000, 214800, 226300, 219900, 208400, 199700, 187600,
                      180900, 185200), 1, 1.6,
                     ("1086.9", "1056.3", "1132.9", "1192.7", "1269.6", "1333.6", "1297.9", "1233.9", "1185.5",
                      "1118.1", "1080.8", "1104.8")),
        _DemoAccount("2000002", "THIES-NORD", "postpaid",
                     (96400, 91800, 99100, 104600, 111200, 118900, 115300, 109800, 102400, 98700,
                      94200, 97500), 1, 0.9,
                     ("610.4", "584.8", "625.4", "656.0", "692.8", "735.6", "715.6", "685.0", "643.8", "623.2",
                      "598.1", "616.5")),
        _DemoAccount("2000003", "DKR-PLATEAU", "postpaid",
                     (45200, 43800, 47100, 49900, 52600, 55800, 54100, 51700, 48900, 46300, 44800,
                      46100), 1, 0.48,
                     ("325.3", "317.5", "335.9", "351.5", "366.5", "384.3", "374.9", "361.5", "345.9", "331.5",
                      "323.1", "330.3")),
    )),
    _DemoCustomer("CUS-000003", "+221770000003", "Moussa Diop", "fr", "residential", 3_000, (
        _DemoAccount("3000001", "DKR-PARCELLES", "prepaid", (), 0, 0.18),
    )),
)
PREPAID_CREDIT_KWH = Decimal("42.5")
PREPAID_PURCHASE_XOF = 5_000
PREPAID_SEED_TOKEN = "48213907561284730195"  # a demo STS token: 20 digits


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _seed_reference(bill_id: str) -> str:
    return "MM" + "".join(_REF_ALPHABET[b % len(_REF_ALPHABET)] for b in _digest(bill_id)[:10])


def _bill_dates(period: str) -> tuple[date, date]:
    year, month = (int(part) for part in period.split("-"))
    issued = date(year, month, BILLING_DAY)
    return issued, issued + timedelta(days=15)


def cycle_bounds(moment: datetime) -> tuple[datetime, datetime, str]:
    """The billing cycle holding ``moment``: its start, its end (both on the billing day at
    midnight) and the period of the bill that will cover it."""
    end_month = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if moment.day >= BILLING_DAY:
        end_month = (end_month + timedelta(days=32)).replace(day=1)
    end = end_month.replace(day=BILLING_DAY)
    start = (end_month - timedelta(days=1)).replace(day=BILLING_DAY)
    return start, end, f"{end.year}-{end.month:02d}"


def _seed_bills(session: Session, account: _DemoAccount) -> None:
    if not account.amounts:
        return
    unpaid_from = len(account.amounts) - account.unpaid_last
    for position, (period, amount, kwh) in enumerate(zip(DEMO_PERIODS, account.amounts, account.kwh, strict=True)):
        bill_id = f"B-{account.number}-{period}"
        if session.get(Bill, bill_id) is not None:
            continue
        issued, due = _bill_dates(period)
        paid = position < unpaid_from
        session.add(Bill(
            bill_id=bill_id, account_number=account.number, period=period, issued_on=issued, due_on=due,
            amount=Decimal(amount), paid_amount=Decimal(amount) if paid else Decimal(0), kwh=Decimal(kwh),
        ))
        if paid:
            session.add(Payment(
                payment_id="PAY-" + _digest("pay:" + bill_id).hex()[:12].upper(),
                account_number=account.number, reference=_seed_reference(bill_id), amount=Decimal(amount),
                currency="XOF", paid_at=datetime.combine(due - timedelta(days=3 + position % 5), datetime.min.time())
                + timedelta(hours=9 + position % 8),
                channel="mobile_money" if position % 3 else "agency",
            ))


def _seed_purchase(session: Session, customer: _DemoCustomer, account: _DemoAccount, now: datetime) -> None:
    """A prepaid meter's last credit purchase, with its token, six days before seeding."""
    payment_id = f"PAY-SEED-{account.number}"
    if account.kind != "prepaid" or session.get(PaymentIntent, payment_id) is not None:
        return
    paid_at, amount = now - timedelta(days=6, hours=3), Decimal(PREPAID_PURCHASE_XOF)
    reference = _seed_reference(payment_id)
    session.add(PaymentIntent(
        payment_id=payment_id, idempotency_key=f"seed-{payment_id}", body_hash="seed", account_number=account.number,
        msisdn=customer.phone, amount=amount, currency="XOF", purpose="prepaid", status="succeeded",
        reference=reference, token=PREPAID_SEED_TOKEN, created_at=paid_at, decided_at=paid_at))
    session.add(Payment(payment_id=payment_id, account_number=account.number, reference=reference, amount=amount,
                        currency="XOF", paid_at=paid_at, channel="mobile_money"))


def _cycle_kwh(account: _DemoAccount, period: str) -> float:
    """kWh of the cycle billed as ``period``: its bill's, else the usual month with a seasonal swing."""
    if period in DEMO_PERIODS and account.kwh:
        return float(account.kwh[DEMO_PERIODS.index(period)])
    month = int(period[5:])
    return account.hourly_kwh * 24 * 30 * (1.0 + 0.12 * math.sin((month - 2) / 12 * 2 * math.pi))


@functools.cache
def _day_factor(meter_id: str, day: date) -> float:
    """Busier and quieter days (weekends a little busier), the same for a given meter and day."""
    rng = random.Random(f"{meter_id}:{day.isoformat()}")
    return rng.uniform(0.75, 1.25) * (1.12 if day.weekday() >= 5 else 1.0)


def _hour_weight(meter_id: str, at: datetime) -> float:
    return (1.0 + 0.6 * math.sin((at.hour - 13) / 24 * 2 * math.pi)) * _day_factor(meter_id, at.date())  # evening peak


def _reading_rows(meter_id: str, account: _DemoAccount, end: datetime) -> list[dict[str, object]]:
    """Hourly cumulative index readings over READING_DAYS days, the last one at ``end``: each hour
    gets its share of its cycle's kWh (the cycle's hours weighed by time of day and day)."""
    rng = random.Random(meter_id)
    hours = READING_DAYS * 24
    index = Decimal(rng.randint(5_000, 40_000))
    rows: list[dict[str, object]] = []
    start = end - timedelta(hours=hours)
    totals: dict[str, float] = {}
    for step in range(hours + 1):
        at = start + timedelta(hours=step)
        if step:
            cycle_start, cycle_end, period = cycle_bounds(at - timedelta(hours=1))  # the hour just ended
            if period not in totals:
                span = int((cycle_end - cycle_start) / timedelta(hours=1))
                totals[period] = sum(_hour_weight(meter_id, cycle_start + timedelta(hours=h + 1))
                                     for h in range(span))
            used = _cycle_kwh(account, period) * _hour_weight(meter_id, at) / totals[period]
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
                _seed_purchase(session, customer, account, now)
                added = added or len(session.new) > before
                if session.scalar(select(Reading.id).where(Reading.meter_id == meter_id).limit(1)) is None:
                    session.flush()
                    session.execute(insert(Reading), _reading_rows(meter_id, account, now))
                    added = True
        if session.get(Outage, SEED_OUTAGE_ID) is None:
            session.add(Outage(outage_id=SEED_OUTAGE_ID, zone="THIES-NORD", started_at=now - timedelta(hours=2),
                               estimated_restoration=now + timedelta(hours=3),
                               cause="Transformer fault on the Thiès-Nord feeder", status="ongoing"))
            added = True
        added = seed_wallets(session) or added
    return added
