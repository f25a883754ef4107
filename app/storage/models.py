"""Tables of the product's own database (migrated by Alembic, see ``migrations/``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "AccountLinkRow", "PreferenceRow", "SessionAuditRow"]


class Base(DeclarativeBase):
    pass


class AccountLinkRow(Base):
    __tablename__ = "account_links"
    __table_args__ = (UniqueConstraint("msisdn", "account_number", name="uq_account_links_msisdn_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    account_number: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PreferenceRow(Base):
    __tablename__ = "preferences"

    msisdn: Mapped[str] = mapped_column(String(20), primary_key=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())


class SessionAuditRow(Base):
    """One finished conversation: what the engine saw, completed by the gateway's report."""

    __tablename__ = "session_audit"

    session_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    user_masked: Mapped[str] = mapped_column(String(32))
    flow: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    nodes: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hops: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gateway_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    gateway_duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gateway_error: Mapped[str | None] = mapped_column(String(255), nullable=True)
