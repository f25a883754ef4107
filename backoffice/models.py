"""SQLAlchemy 2 declarative models of the back office (portable between SQLite and PostgreSQL).

Datetimes are stored naive in UTC; money is ``Numeric`` and ``Decimal`` in Python.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Account",
    "Arrangement",
    "Base",
    "Bill",
    "Customer",
    "Meter",
    "MobileWallet",
    "Outage",
    "Payment",
    "PaymentIntent",
    "Reading",
    "Ticket",
    "TicketEvent",
    "Vend",
    "Wallet",
]

Money = Numeric(14, 2)
Kwh = Numeric(14, 3)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "bo_customers"

    customer_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(5))
    accounts: Mapped[list[Account]] = relationship(back_populates="customer", order_by="Account.account_number")


class Wallet(Base):
    """Demo mobile-money wallet of an msisdn; auto approval fails when the amount exceeds it."""

    __tablename__ = "bo_wallets"

    msisdn: Mapped[str] = mapped_column(String(20), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Money)


class MobileWallet(Base):
    """Demo wallet of an msisdn at one mobile-money operator (``backoffice/wallets.py`` seeds them):
    a payment above ``per_payment_limit`` or above ``balance`` is refused."""

    __tablename__ = "bo_mobile_wallets"

    operator: Mapped[str] = mapped_column(String(40), primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(20), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Money)
    per_payment_limit: Mapped[Decimal] = mapped_column(Money)


class Account(Base):
    __tablename__ = "bo_accounts"

    account_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("bo_customers.customer_id"))
    category: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    zone: Mapped[str] = mapped_column(String(40))
    meter_id: Mapped[str] = mapped_column(String(20), unique=True)
    customer: Mapped[Customer] = relationship(back_populates="accounts")


class Meter(Base):
    __tablename__ = "bo_meters"

    meter_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_number: Mapped[str | None] = mapped_column(ForeignKey("bo_accounts.account_number"))
    prepaid: Mapped[bool] = mapped_column(default=False)
    credit_kwh: Mapped[Decimal | None] = mapped_column(Kwh)
    credit_updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class Bill(Base):
    __tablename__ = "bo_bills"
    __table_args__ = (Index("ix_bo_bills_account_period", "account_number", "period"),)

    bill_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_number: Mapped[str] = mapped_column(ForeignKey("bo_accounts.account_number"))
    period: Mapped[str] = mapped_column(String(7))
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_amount: Mapped[Decimal] = mapped_column(Money)
    kwh: Mapped[Decimal] = mapped_column(Kwh)

    @property
    def outstanding(self) -> Decimal:
        return max(self.amount - self.paid_amount, Decimal(0))

    @property
    def status(self) -> str:
        if self.paid_amount >= self.amount:
            return "paid"
        return "partial" if self.paid_amount > 0 else "unpaid"


class Payment(Base):
    """Money received on an account (what ``/accounts/{n}/payments`` lists)."""

    __tablename__ = "bo_payments"
    __table_args__ = (Index("ix_bo_payments_account_paid", "account_number", "paid_at"),)

    payment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_number: Mapped[str] = mapped_column(ForeignKey("bo_accounts.account_number"))
    reference: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="XOF")
    paid_at: Mapped[datetime] = mapped_column(DateTime)
    channel: Mapped[str] = mapped_column(String(20))


class PaymentPost(Base):
    """One ``Idempotency-Key`` of ``POST /accounts/{n}/payments``: the body it came with (as a hash) and the first
    answer, given again to the same key and body; the same key with another body is refused (created by
    ``create_all`` on an existing database, like every table of the back office)."""

    __tablename__ = "bo_payment_posts"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[int] = mapped_column(Integer)


class Vend(Base):
    """A token vended for a prepaid meter on a payment received outside the mobile-money flow (an agent's "paid"):
    one per ``payment_id`` ever (the money's identity), found again by its ``Idempotency-Key`` (with the body's
    hash: the same key with another body is refused)."""

    __tablename__ = "bo_vends"

    vend_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str] = mapped_column(String(40), unique=True)
    meter_id: Mapped[str] = mapped_column(ForeignKey("bo_meters.meter_id"), index=True)
    account_number: Mapped[str | None] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="XOF")
    kwh: Mapped[Decimal] = mapped_column(Kwh)
    token: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Arrangement(Base):
    __tablename__ = "bo_arrangements"

    arrangement_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_number: Mapped[str] = mapped_column(ForeignKey("bo_accounts.account_number"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    created_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20))
    months: Mapped[int] = mapped_column(Integer)
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class Reading(Base):
    __tablename__ = "bo_readings"
    __table_args__ = (UniqueConstraint("meter_id", "at", name="uq_bo_readings_meter_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(ForeignKey("bo_meters.meter_id"))
    at: Mapped[datetime] = mapped_column(DateTime)
    index_kwh: Mapped[Decimal] = mapped_column(Kwh)
    source: Mapped[str] = mapped_column(String(10), default="api")


class PaymentIntent(Base):
    """A mobile-money payment request, decided once (pending -> succeeded | failed)."""

    __tablename__ = "bo_payment_intents"

    payment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    account_number: Mapped[str] = mapped_column(ForeignKey("bo_accounts.account_number"))
    msisdn: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="XOF")
    purpose: Mapped[str] = mapped_column(String(10))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    reference: Mapped[str | None] = mapped_column(String(20))
    token: Mapped[str | None] = mapped_column(String(20))
    failure_reason: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    event_body: Mapped[str | None] = mapped_column(Text)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    wallet: Mapped[str | None] = mapped_column(String(40))   # operator code; None: the legacy per-number wallet


class Outage(Base):
    __tablename__ = "bo_outages"

    outage_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    zone: Mapped[str] = mapped_column(String(40), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    estimated_restoration: Mapped[datetime | None] = mapped_column(DateTime)
    cause: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="ongoing")
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)


class Ticket(Base):
    __tablename__ = "bo_tickets"

    reference: Mapped[str] = mapped_column(String(10), primary_key=True)
    client_reference: Mapped[str | None] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12))
    account_number: Mapped[str | None] = mapped_column(ForeignKey("bo_accounts.account_number"), index=True)
    msisdn: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    bill_id: Mapped[str | None] = mapped_column(String(40), nullable=True)   # the disputed bill, if any
    history: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan"
    )


class TicketEvent(Base):
    __tablename__ = "bo_ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(ForeignKey("bo_tickets.reference"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text, default="")
    ticket: Mapped[Ticket] = relationship(back_populates="history")
