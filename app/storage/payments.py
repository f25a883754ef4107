"""``PaymentLedger`` on SQL: every confirmed payment, before and after the provider answers."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import LocalPayment

from .models import PaymentIntentRow, ProcessedCallbackRow

__all__ = ["SqlPaymentLedger"]

_FINAL = ("succeeded", "failed")


def _payment(row: PaymentIntentRow) -> LocalPayment:
    return LocalPayment(row.idempotency_key, row.msisdn, row.account_number, row.purpose, Decimal(row.amount),
                        row.status, row.provider_payment_id, row.reference, row.token, row.failure_reason,
                        row.created_at, row.language or "fr")


class SqlPaymentLedger:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _by_key(self, db: Session, key: str) -> PaymentIntentRow | None:
        return db.scalars(select(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == key)).first()

    def create(self, *, idempotency_key: str, msisdn: str, account_number: str, purpose: str,
               amount: Decimal, language: str = "fr") -> LocalPayment:
        with self._sessions() as db:
            row = self._by_key(db, idempotency_key)
            if row is None:
                row = PaymentIntentRow(idempotency_key=idempotency_key, msisdn=msisdn, account_number=account_number,
                                       purpose=purpose, amount=str(amount), status="created", language=language)
                db.add(row)
                try:
                    db.commit()
                except IntegrityError:
                    db.rollback()
                    row = self._by_key(db, idempotency_key)
                    assert row is not None
            return _payment(row)

    def mark_pending(self, idempotency_key: str, provider_payment_id: str) -> LocalPayment:
        with self._sessions() as db:
            row = self._by_key(db, idempotency_key)
            if row is None:
                raise KeyError(idempotency_key)
            row.provider_payment_id = provider_payment_id
            if row.status == "created":
                row.status = "pending"
            db.commit()
            return _payment(row)

    def get(self, idempotency_key: str) -> LocalPayment | None:
        with self._sessions() as db:
            row = self._by_key(db, idempotency_key)
            return _payment(row) if row else None

    def by_provider_id(self, provider_payment_id: str) -> LocalPayment | None:
        with self._sessions() as db:
            row = db.scalars(select(PaymentIntentRow)
                             .where(PaymentIntentRow.provider_payment_id == provider_payment_id)).first()
            return _payment(row) if row else None

    def settle(self, *, event_id: str, provider_payment_id: str, status: str, reference: str | None,
               token: str | None, failure_reason: str | None) -> tuple[LocalPayment | None, bool]:
        with self._sessions() as db:
            row = db.scalars(select(PaymentIntentRow)
                             .where(PaymentIntentRow.provider_payment_id == provider_payment_id)
                             .with_for_update()).first()
            if row is None:
                return None, False
            if db.get(ProcessedCallbackRow, event_id) is not None or row.status in _FINAL:
                return _payment(row), False
            db.add(ProcessedCallbackRow(event_id=event_id))
            row.status = status
            row.reference, row.token, row.failure_reason = reference, token, failure_reason
            try:
                db.commit()
            except IntegrityError:  # the same event processed concurrently
                db.rollback()
                return self.by_provider_id(provider_payment_id), False
            return _payment(row), True

    def recent(self, msisdn: str, limit: int = 5) -> list[LocalPayment]:
        with self._sessions() as db:
            rows = db.scalars(select(PaymentIntentRow).where(PaymentIntentRow.msisdn == msisdn)
                              .order_by(PaymentIntentRow.id.desc()).limit(limit)).all()
            return [_payment(r) for r in rows]
