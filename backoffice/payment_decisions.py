"""Deciding a mobile-money payment once, and what success does to the account.

A payment leaves ``pending`` through one conditional UPDATE (``... WHERE status = 'pending'``),
so two deciders (the auto-approval timer, an agent's approve/decline) cannot both win.
On success the amount pays the account's unpaid bills oldest first (``purpose=bill``) or buys
prepaid credit with a 20-digit token (``purpose=prepaid``), and a receipt is recorded.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from .callbacks import CallbackSender
from .errors import Conflict, NotFound
from .models import Account, Bill, Meter, Payment, PaymentIntent, Vend, Wallet
from .wallets import debit, refusal, wallet_for_update
from .wire import fmt_datetime, fmt_decimal, utcnow

__all__ = ["XOF_PER_KWH", "PaymentDecider", "pay_bills", "payment_json", "started_payment", "sts_token"]

log = logging.getLogger(__name__)

XOF_PER_KWH = Decimal(100)
_REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def payment_json(intent: PaymentIntent) -> dict[str, Any]:
    return {
        "payment_id": intent.payment_id,
        # The payer's own key for the payment, echoed back (as providers echo a merchant reference): a payer
        # that never recorded our payment id (its database failed just then) still finds its payment by it.
        "idempotency_key": intent.idempotency_key,
        "status": intent.status,
        "amount": fmt_decimal(intent.amount),
        "currency": intent.currency,
        "purpose": intent.purpose,
        "account_number": intent.account_number,
        "msisdn": intent.msisdn,
        "reference": intent.reference,
        "token": intent.token,
        "failure_reason": intent.failure_reason,
        "wallet": intent.wallet,
        "created_at": fmt_datetime(intent.created_at),
        "decided_at": fmt_datetime(intent.decided_at),
    }


def pay_bills(session: Session, account_number: str, amount: Decimal) -> None:
    """Pay the account's unpaid bills with ``amount``, oldest first (what any payment received does)."""
    remaining = amount
    bills = session.scalars(
        select(Bill).where(Bill.account_number == account_number, Bill.paid_amount < Bill.amount)
        .order_by(Bill.due_on, Bill.issued_on, Bill.bill_id).with_for_update()
    )
    for bill in bills:
        if remaining <= 0:
            break
        share = min(bill.outstanding, remaining)
        bill.paid_amount += share
        remaining -= share


def started_payment(session: Session, payment_id: str, payment_key: str | None, account_number: str | None,
                    amount: Decimal, purpose: str) -> PaymentIntent | None:
    """The mobile-money payment money received by hand stands for (an agent's "paid" posted or vended): by its
    id, or by the key the payer started it with when the agent typed the receipt's reference; only one for this
    account, amount and purpose. Recorded under its id, the provider's approval (before or after) and the hand
    settlement are one payment: the bills paid once, one token.

    An id that is the provider's id of another payment (another account, amount or purpose) is refused (409
    ``payment_of_another_account``): recorded under it, the money would be that payment's, whose approval would then
    pay no bills (the id already received) or fail (a vend holds it)."""
    named = session.get(PaymentIntent, payment_id)
    if named is not None:
        if not _same_money(named, account_number, amount, purpose):
            raise Conflict(f"payment {payment_id} is another payment with the provider (another account, amount or "
                           "purpose)", code="payment_of_another_account")
        return named
    paid = session.scalar(select(PaymentIntent).where(PaymentIntent.idempotency_key == payment_key)) \
        if payment_key else None
    return paid if paid is not None and _same_money(paid, account_number, amount, purpose) else None


def _same_money(paid: PaymentIntent, account_number: str | None, amount: Decimal, purpose: str) -> bool:
    return paid.purpose == purpose and paid.account_number == account_number and paid.amount == amount


def _receipt_reference() -> str:
    return "MM" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(10))


def sts_token() -> str:
    """A fresh 20-digit STS-style token (what the customer keys into the meter)."""
    return f"{secrets.randbelow(10**20):020d}"


class PaymentDecider:
    """Approves or declines pending payments; in auto mode, on a timer after initiation."""

    def __init__(self, sessions: sessionmaker[Session], callbacks: CallbackSender, delay: float) -> None:
        self._sessions = sessions
        self._callbacks = callbacks
        self._delay = delay
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False

    # -------------------------------------------------------------- scheduling
    def schedule(self, payment_id: str) -> None:
        """Decide ``payment_id`` automatically after the configured delay (wallet check applies)."""
        with self._lock:
            if self._closed:
                return
            timer = threading.Timer(self._delay, self._auto_decide, args=(payment_id,))
            timer.daemon = True
            self._timers.add(timer)
        timer.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()

    def _auto_decide(self, payment_id: str) -> None:
        try:
            self.decide(payment_id, approve=True, check_wallet=True)
        except Conflict:
            pass  # decided by hand in the meantime
        except Exception:
            log.exception("automatic decision of %s failed", payment_id)
        finally:
            with self._lock:
                self._timers = {t for t in self._timers if t.is_alive() and t is not threading.current_thread()}

    # -------------------------------------------------------------- deciding
    def decide(self, payment_id: str, *, approve: bool, check_wallet: bool = False,
               reason: str = "declined_by_customer") -> PaymentIntent:
        """Decide a pending payment; ``NotFound`` if unknown, ``Conflict`` if already decided."""
        with self._sessions() as session, session.begin():
            intent = session.get(PaymentIntent, payment_id)
            if intent is None:
                raise NotFound(f"no payment {payment_id}", code="payment_not_found")
            if intent.status != "pending":
                raise Conflict(f"payment {payment_id} is already {intent.status}", code="already_decided")
            wallet: Wallet | None = None
            if intent.wallet:
                why = refusal(wallet_for_update(session, intent.wallet, intent.msisdn), intent.amount)
                if approve and check_wallet and why is not None:
                    approve, reason = False, why
                elif approve and not debit(session, intent.wallet, intent.msisdn, intent.amount,
                                           require_funds=check_wallet):
                    # Spent by a payment decided at the same moment: the conditional debit lost.
                    approve, reason = False, "insufficient_funds"
            else:   # a payment that named no operator: the number's legacy demo wallet
                wallet = session.scalar(select(Wallet).where(Wallet.msisdn == intent.msisdn).with_for_update())
                if approve and check_wallet and (wallet is None or intent.amount > wallet.balance):
                    approve, reason = False, "insufficient_funds"
            now = utcnow()
            won = session.execute(
                update(PaymentIntent)
                .where(PaymentIntent.payment_id == payment_id, PaymentIntent.status == "pending")
                .values(status="succeeded" if approve else "failed", decided_at=now)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"payment {payment_id} is already decided", code="already_decided")
            session.refresh(intent)
            if approve:
                self._apply(session, intent, wallet)
            else:
                intent.failure_reason = reason
            intent.event_body = self._event(intent)
            session.flush()
        if intent.callback_url:
            self._callbacks.send(intent.payment_id, intent.callback_url, intent.event_body)
        return intent

    def resend(self, payment_id: str) -> str:
        """Send the decided payment's event again (same ``event_id``); returns the event id."""
        with self._sessions() as session:
            intent = session.get(PaymentIntent, payment_id)
            if intent is None:
                raise NotFound(f"no payment {payment_id}", code="payment_not_found")
            if intent.event_body is None:
                raise Conflict(f"payment {payment_id} is still pending: there is no event yet", code="pending")
            if not intent.callback_url:
                raise Conflict(f"payment {payment_id} has no callback_url", code="no_callback_url")
            url, body = intent.callback_url, intent.event_body
        self._callbacks.send(payment_id, url, body)
        event_id: str = json.loads(body)["event_id"]
        return event_id

    def _apply(self, session: Session, intent: PaymentIntent, wallet: Wallet | None) -> None:
        now = intent.decided_at or utcnow()
        intent.reference = _receipt_reference()
        if wallet is not None:
            wallet.balance = max(wallet.balance - intent.amount, Decimal(0))
        account = session.get(Account, intent.account_number)
        vended = session.scalar(select(Vend).where(Vend.payment_id == intent.payment_id)) \
            if intent.purpose == "prepaid" else None
        if vended is not None:
            # Its token was vended already (an agent settled it by hand before the customer's late approval): the
            # same token, the meter credited once.
            intent.token = vended.token
            return
        if intent.purpose == "prepaid" and account is not None:
            meter = session.scalar(select(Meter).where(Meter.meter_id == account.meter_id).with_for_update())
            if meter is not None:
                bought = (intent.amount / XOF_PER_KWH).quantize(Decimal("0.001"))
                meter.credit_kwh = (meter.credit_kwh or Decimal(0)) + bought
                meter.credit_updated_at = now
            intent.token = sts_token()
        elif session.get(Payment, intent.payment_id) is not None:
            # Already posted to billing under this id (an agent settled it by hand before the customer's
            # late approval): the bills were paid then, never twice.
            return
        else:
            pay_bills(session, intent.account_number, intent.amount)
        session.add(Payment(payment_id=intent.payment_id, account_number=intent.account_number,
                            reference=intent.reference, amount=intent.amount, currency=intent.currency,
                            paid_at=now, channel="mobile_money"))

    @staticmethod
    def _event(intent: PaymentIntent) -> str:
        event = {"event_id": "EVT-" + uuid.uuid4().hex, **payment_json(intent),
                 "occurred_at": fmt_datetime(intent.decided_at)}
        del event["created_at"], event["decided_at"]
        return json.dumps(event, separators=(",", ":"))
