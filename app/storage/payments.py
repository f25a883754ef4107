"""``PaymentLedger`` on SQL: every confirmed payment, before and after the provider answers.

A payment moves ``created -> pending`` when the provider accepts it (or, when writing the provider's id
failed just then, once its callback or the worker finds it by our idempotency key), then once to a final
status (``succeeded``/``failed``) by the provider's word: a callback or, when none came, the
answer to a status question the worker asks. After five unanswered questions it becomes
``unconfirmed`` (still open to the provider's late word, never to anything else).

Without the provider's id, ``created`` becomes ``not_started`` when the provider never got the request (the
dialog saw it unreachable) or answers it has no payment under our key, and ``unresolved`` when the worker has
asked for ``PAYMENT_UNRECORDED_GIVE_UP_SECONDS`` without an answer it could apply (an agent decides). The
provider's word by our key still records any of the three (``pending``): nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, or_, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.settings import utc_now
from dialogs.backends import FINAL_PAYMENT_STATUSES
from dialogs.stores import AWAITED_STATUSES, UNRECORDED_STATUSES, LocalPayment, ProviderResult

from .models import MismatchedCallbackRow, PaymentIntentRow, ProcessedCallbackRow

__all__ = ["SqlPaymentLedger"]

_OPEN = ("pending", "unconfirmed")   # states the provider's word may still settle


# The account's payments still being confirmed, read as plain rows (no ORM objects) on a Core connection:
# the balance and the Pay menu ask it on every view, and the statement is built once (measured: 0.46 ms of
# CPU, against 0.74 ms for the same query through the ORM, on PostgreSQL, before the ORM session was left out).
_AWAITING = (select(PaymentIntentRow.__table__)
             .where(PaymentIntentRow.account_number == bindparam("account"),
                    PaymentIntentRow.purpose == bindparam("purpose"),
                    PaymentIntentRow.status.in_(AWAITED_STATUSES))
             .order_by(PaymentIntentRow.id))


def _asked_long_enough_ago(now: datetime, after_seconds: int, max_interval_seconds: int) -> ColumnElement[bool]:
    """A payment without the provider's id is due for a question by our key: ``after_seconds`` after it was
    created, then after twice the last wait each time (``after * 2**(n-1)`` after the n-th question), at most
    ``max_interval_seconds``. One condition per count of questions until the wait reaches its maximum, so the
    backoff is decided in the query (no due payment is left behind a page of ones not due yet)."""
    table = PaymentIntentRow
    cap = max(max_interval_seconds, after_seconds)
    due: list[ColumnElement[bool]] = [(table.status_checks == 0) & (table.created_at <= now - timedelta(seconds=after_seconds))]
    asked = 1
    while after_seconds * 2 ** (asked - 1) < cap:
        wait = timedelta(seconds=after_seconds * 2 ** (asked - 1))
        due.append((table.status_checks == asked) & (table.checked_at <= now - wait))
        asked += 1
    due.append((table.status_checks >= asked) & (table.checked_at <= now - timedelta(seconds=cap)))
    return or_(*due)


def _payment(row: PaymentIntentRow | Row[Any]) -> LocalPayment:
    # language, currency and status_checks are NOT NULL with defaults (migrations 0002, 0003, 0005).
    return LocalPayment(row.idempotency_key, row.msisdn, row.account_number, row.purpose, Decimal(row.amount),
                        row.status, row.provider_payment_id, row.reference, row.token, row.failure_reason,
                        row.created_at, row.language, row.currency, row.wallet, row.status_checks, row.vend,
                        row.vend_tries or 0)


class SqlPaymentLedger:
    """The ledger; ``clock`` (aware UTC) stamps when a payment went pending, so the worker's
    "pending past N minutes" (``due_for_status(now, ...)``) is measured on the same clock as its ``now``."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utc_now) -> None:
        self._sessions, self._clock = sessions, clock
        self._engine: Engine = sessions.kw["bind"]

    def _by_key(self, db: Session, key: str) -> PaymentIntentRow | None:
        return db.scalars(select(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == key)).first()

    def create(self, *, idempotency_key: str, msisdn: str, account_number: str, purpose: str,
               amount: Decimal, language: str = "fr", wallet: str | None = None) -> LocalPayment:
        with self._sessions() as db:
            row = self._by_key(db, idempotency_key)
            if row is None:
                row = PaymentIntentRow(idempotency_key=idempotency_key, msisdn=msisdn, account_number=account_number,
                                       purpose=purpose, amount=str(amount), status="created", language=language,
                                       wallet=wallet, status_checks=0)
                db.add(row)
                try:
                    db.commit()
                except IntegrityError:   # the same key raced in from a concurrent hop
                    db.rollback()
                    row = self._by_key(db, idempotency_key)
                    assert row is not None
            elif row.status == "not_started":
                # Sent again under the same key: the provider may get it this time, so it counts again.
                row.status = "created"
                db.commit()
            return _payment(row)

    def mark_pending(self, idempotency_key: str, provider_payment_id: str) -> LocalPayment:
        with self._sessions() as db:
            row = self._by_key(db, idempotency_key)
            if row is None:
                raise KeyError(idempotency_key)
            row.provider_payment_id = provider_payment_id
            if row.status in UNRECORDED_STATUSES:
                row.status = "pending"
                row.pending_since = self._clock()
            db.commit()
            return _payment(row)

    def record_provider_id(self, idempotency_key: str, provider_payment_id: str) -> LocalPayment | None:
        with self._sessions() as db:
            won = db.execute(update(PaymentIntentRow)
                             .where(PaymentIntentRow.idempotency_key == idempotency_key,
                                    PaymentIntentRow.status.in_(UNRECORDED_STATUSES),
                                    PaymentIntentRow.provider_payment_id.is_(None))
                             .values(provider_payment_id=provider_payment_id, status="pending",
                                     pending_since=self._clock(), status_checks=0, checked_at=None)
                             .execution_options(synchronize_session=False))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                db.rollback()
                return None
            db.commit()
            row = self._by_key(db, idempotency_key)
            return _payment(row) if row else None

    def unrecorded(self, now: datetime, after_seconds: int, max_interval_seconds: int, give_up_seconds: int,
                   limit: int = 50) -> list[LocalPayment]:
        # created_at is the database's clock (the row's server default); checked_at the worker's.
        table = PaymentIntentRow
        with self._sessions() as db:
            rows = db.scalars(select(table)
                              .where(table.provider_payment_id.is_(None),
                                     (table.status == "created")
                                     | ((table.status == "not_started")
                                        & (table.created_at > now - timedelta(seconds=give_up_seconds))),
                                     _asked_long_enough_ago(now, after_seconds, max_interval_seconds))
                              .order_by(table.id).limit(limit)).all()
            return [_payment(r) for r in rows]

    def _move(self, idempotency_key: str, before: str, after: str) -> LocalPayment | None:
        """One conditional UPDATE of a payment without the provider's id: ``before -> after``, or None."""
        with self._sessions() as db:
            won = db.execute(update(PaymentIntentRow)
                             .where(PaymentIntentRow.idempotency_key == idempotency_key,
                                    PaymentIntentRow.status == before,
                                    PaymentIntentRow.provider_payment_id.is_(None))
                             .values(status=after).execution_options(synchronize_session=False))
            db.commit()
            if won.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = self._by_key(db, idempotency_key)
            return _payment(row) if row else None

    def mark_not_started(self, idempotency_key: str) -> LocalPayment | None:
        return (self._move(idempotency_key, "created", "not_started")
                or self._move(idempotency_key, "unanswered", "not_started"))

    def give_up_unrecorded(self, idempotency_key: str) -> LocalPayment | None:
        return self._move(idempotency_key, "created", "unresolved")

    def note_answered(self, idempotency_key: str, now: datetime) -> None:
        with self._sessions() as db:
            db.execute(update(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == idempotency_key)
                       .values(provider_answered_at=now).execution_options(synchronize_session=False))
            db.commit()

    def flag_unanswered(self, now: datetime, give_up_seconds: int, limit: int = 50) -> list[LocalPayment]:
        table = PaymentIntentRow
        with self._sessions() as db:
            keys = db.scalars(select(table.idempotency_key)
                              .where(table.status == "not_started", table.provider_payment_id.is_(None),
                                     table.provider_answered_at.is_(None),
                                     table.created_at <= now - timedelta(seconds=give_up_seconds))
                              .order_by(table.id).limit(limit)).all()
        # Each by one conditional UPDATE: two workers flag (and audit) a payment once.
        return [flagged for key in keys if (flagged := self._move(key, "not_started", "unanswered")) is not None]

    def mark_refused(self, idempotency_key: str, reason: str) -> LocalPayment | None:
        with self._sessions() as db:
            db.execute(update(PaymentIntentRow)
                       .where(PaymentIntentRow.idempotency_key == idempotency_key,
                              PaymentIntentRow.status == "created")
                       .values(status="failed", failure_reason=reason[:120])
                       .execution_options(synchronize_session=False))
            db.commit()
            row = self._by_key(db, idempotency_key)
            return _payment(row) if row else None

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
               token: str | None, failure_reason: str | None,
               post_to_billing: bool = False, owes_token: bool = False) -> tuple[LocalPayment | None, bool]:
        with self._sessions() as db:
            row = db.scalars(select(PaymentIntentRow)
                             .where(PaymentIntentRow.provider_payment_id == provider_payment_id)).first()
            if row is None:
                return None, False
            if status not in FINAL_PAYMENT_STATUSES or db.get(ProcessedCallbackRow, event_id) is not None:
                return _payment(row), False
            # One conditional UPDATE decides: two settlers (a callback and the worker's status answer,
            # or two deliveries of the callback) cannot both win, on SQLite as on PostgreSQL.
            won = db.execute(
                update(PaymentIntentRow)
                .where(PaymentIntentRow.id == row.id, PaymentIntentRow.status.in_(_OPEN))
                .values(status=status, reference=reference, token=token, failure_reason=failure_reason,
                        **({"billing_post": "due"} if post_to_billing else {}),
                        # Owed in the same write as the settlement: a crash before the vend never loses it.
                        **({"vend": "due", "vend_next_at": None} if owes_token else {}))
                .execution_options(synchronize_session=False))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                db.rollback()
                return self.by_provider_id(provider_payment_id), False
            db.add(ProcessedCallbackRow(event_id=event_id))
            try:
                db.commit()
            except IntegrityError:  # the same event processed concurrently
                db.rollback()
                return self.by_provider_id(provider_payment_id), False
            return self.by_provider_id(provider_payment_id), True

    def to_vend(self, now: datetime, limit: int = 50) -> list[LocalPayment]:
        table = PaymentIntentRow
        with self._sessions() as db:
            rows = db.scalars(select(table).where(table.vend == "due",
                                                  or_(table.vend_next_at.is_(None), table.vend_next_at <= now))
                              .order_by(table.id).limit(limit)).all()
            return [_payment(r) for r in rows]

    def record_token(self, idempotency_key: str, token: str) -> LocalPayment | None:
        table = PaymentIntentRow
        with self._sessions() as db:
            # One conditional UPDATE: of two vends of one payment (two supervisors, the worker), the first keeps it.
            won = db.execute(update(table).where(table.idempotency_key == idempotency_key,
                                                 table.vend.in_(("due", "refused")), table.token.is_(None))
                             .values(token=token, vend="vended", vend_said=None, vend_next_at=None)
                             .execution_options(synchronize_session=False))
            db.commit()
            if won.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = self._by_key(db, idempotency_key)
            return _payment(row) if row else None

    def note_vend(self, idempotency_key: str, state: str, said: str | None, next_at: datetime | None) -> bool:
        table = PaymentIntentRow
        with self._sessions() as db:
            moved = db.execute(update(table).where(table.idempotency_key == idempotency_key, table.vend == "due")
                               .values(vend=state, vend_tries=table.vend_tries + 1, vend_next_at=next_at,
                                       **({"vend_said": said[:200]} if said else {}))
                               .execution_options(synchronize_session=False))
            db.commit()
            return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    def move_vend(self, idempotency_key: str, was: str, state: str) -> bool:
        table = PaymentIntentRow
        with self._sessions() as db:
            moved = db.execute(update(table).where(table.idempotency_key == idempotency_key, table.vend == was)
                               .values(vend=state, vend_next_at=None).execution_options(synchronize_session=False))
            db.commit()
            return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    def recent(self, msisdn: str, limit: int = 5, account_number: str | None = None) -> list[LocalPayment]:
        query = select(PaymentIntentRow).where(PaymentIntentRow.msisdn == msisdn)
        if account_number is not None:
            query = query.where(PaymentIntentRow.account_number == account_number)
        with self._sessions() as db:
            rows = db.scalars(query.order_by(PaymentIntentRow.id.desc()).limit(limit)).all()
            return [_payment(r) for r in rows]

    def awaiting(self, account_number: str, purpose: str) -> list[LocalPayment]:
        # A plain Core connection from the sessions' engine: a read of rows needs no ORM session, whose
        # set-up and execution path cost more than the query itself on every balance view.
        with self._engine.connect() as db:
            rows = db.execute(_AWAITING, {"account": account_number, "purpose": purpose}).all()
        return [_payment(r) for r in rows]

    def to_post_to_billing(self, limit: int = 50) -> list[LocalPayment]:
        with self._sessions() as db:
            rows = db.scalars(select(PaymentIntentRow).where(PaymentIntentRow.billing_post == "due")
                              .order_by(PaymentIntentRow.id).limit(limit)).all()
            return [_payment(r) for r in rows]

    def mark_billing(self, idempotency_key: str, state: str, said: str | None = None) -> None:
        self.move_billing(idempotency_key, "due", state, said)

    def move_billing(self, idempotency_key: str, was: str, state: str, said: str | None = None) -> bool:
        # One conditional UPDATE: two supervisors (or a double click) cannot both move it.
        with self._sessions() as db:
            moved = db.execute(update(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == idempotency_key,
                                                              PaymentIntentRow.billing_post == was)
                               .values(billing_post=state, **({"billing_said": said[:200]} if said else {}))
                               .execution_options(synchronize_session=False))
            db.commit()
            return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    def keep_mismatch(self, result: ProviderResult, reasons: list[str], under: str | None = None) -> None:
        received = {"status": result.status, "amount": None if result.amount is None else format(result.amount, "f"),
                    "currency": result.currency, "account_number": result.account_number, "msisdn": result.msisdn,
                    "reference": result.reference, "failure_reason": result.failure_reason,
                    **({"payment_id": result.payment_id} if under else {})}
        with self._sessions() as db:
            if under and db.scalar(select(MismatchedCallbackRow.id).where(
                    MismatchedCallbackRow.event_id == result.event_id[:80],
                    MismatchedCallbackRow.provider_payment_id == under[:64])) is not None:
                return   # the provider's retry of a result already kept
            db.add(MismatchedCallbackRow(event_id=result.event_id[:80], provider_payment_id=(under or result.payment_id)[:64],
                                         source=result.source, reasons=",".join(reasons)[:200],
                                         received=json.dumps(received), status="open"))
            db.commit()

    def mismatches(self, provider_payment_id: str) -> list[dict[str, str]]:
        """The kept mismatched results of a payment, oldest first (for agents and tests)."""
        with self._sessions() as db:
            rows = db.scalars(select(MismatchedCallbackRow)
                              .where(MismatchedCallbackRow.provider_payment_id == provider_payment_id)
                              .order_by(MismatchedCallbackRow.id)).all()
            return [{"event_id": r.event_id, "source": r.source, "reasons": r.reasons, "received": r.received,
                     "status": r.status} for r in rows]

    def due_for_status(self, now: datetime, after_seconds: int, limit: int = 50) -> list[LocalPayment]:
        cutoff = now - timedelta(seconds=after_seconds)
        last_heard = func.coalesce(PaymentIntentRow.checked_at, PaymentIntentRow.pending_since)
        with self._sessions() as db:
            rows = db.scalars(select(PaymentIntentRow)
                              .where(PaymentIntentRow.status == "pending",
                                     PaymentIntentRow.provider_payment_id.is_not(None),
                                     last_heard.is_not(None), last_heard <= cutoff)
                              .order_by(PaymentIntentRow.id).limit(limit)).all()
            return [_payment(r) for r in rows]

    def note_status_check(self, idempotency_key: str, now: datetime) -> int:
        with self._sessions() as db:
            db.execute(update(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == idempotency_key)
                       .values(status_checks=PaymentIntentRow.status_checks + 1, checked_at=now)
                       .execution_options(synchronize_session=False))
            db.commit()
            count = db.scalar(select(PaymentIntentRow.status_checks)
                              .where(PaymentIntentRow.idempotency_key == idempotency_key))
            return int(count or 0)

    def give_up(self, idempotency_key: str) -> LocalPayment | None:
        with self._sessions() as db:
            won = db.execute(update(PaymentIntentRow)
                             .where(PaymentIntentRow.idempotency_key == idempotency_key,
                                    PaymentIntentRow.status == "pending")
                             .values(status="unconfirmed").execution_options(synchronize_session=False))
            db.commit()
            if won.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = self._by_key(db, idempotency_key)
            return _payment(row) if row else None
