"""Demo mobile-money wallets: one per number and operator, each with a balance and a per-payment limit.

The reference back office plays every operator the engine offers (``PAYMENT_WALLETS``). A payment
names its operator in ``wallet``; it is refused at once (422, with the reason as the error code)
when the number has no wallet there (``wallet_not_found``), when the amount is above the
operator's per-payment limit (``wallet_limit_exceeded``) or above the balance
(``insufficient_funds``); the automatic decision checks again, and success debits that wallet.

| number          | Orange Money (limit)       | Wave (limit)          | Free Money (limit)       |
|-----------------|----------------------------|-----------------------|--------------------------|
| +221770000001   | 50 000 (200 000)           | 5 000 (500 000)       | none                     |
| +221770000002   | 2 000 000 (2 000 000)      | 2 000 000 (500 000)   | 100 000 (1 000 000)      |
| +221770000003   | 3 000 (200 000)            | 20 000 (500 000)      | 500 (200 000)            |
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from .models import MobileWallet

__all__ = ["DEMO_WALLETS", "OPERATORS", "debit", "refusal", "seed_wallets", "wallet_for_update"]

OPERATORS: Final = ("orange_money", "wave", "free_money")

# (msisdn, operator, balance, per-payment limit), documented in the module docstring and the README.
DEMO_WALLETS: Final[tuple[tuple[str, str, int, int], ...]] = (
    ("+221770000001", "orange_money", 50_000, 200_000),
    ("+221770000001", "wave", 5_000, 500_000),
    ("+221770000002", "orange_money", 2_000_000, 2_000_000),
    ("+221770000002", "wave", 2_000_000, 500_000),
    ("+221770000002", "free_money", 100_000, 1_000_000),
    ("+221770000003", "orange_money", 3_000, 200_000),
    ("+221770000003", "wave", 20_000, 500_000),
    ("+221770000003", "free_money", 500, 200_000),
)


def seed_wallets(session: Session) -> bool:
    """Add the demo wallets that are missing; True when any was added."""
    added = False
    for msisdn, operator, balance, limit in DEMO_WALLETS:
        if session.get(MobileWallet, (operator, msisdn)) is None:
            session.add(MobileWallet(operator=operator, msisdn=msisdn, balance=Decimal(balance),
                                     per_payment_limit=Decimal(limit)))
            added = True
    return added


def wallet_for_update(session: Session, operator: str, msisdn: str) -> MobileWallet | None:
    """The wallet, locked until the transaction ends (two payments never spend the same money)."""
    return session.scalar(select(MobileWallet).where(MobileWallet.operator == operator,
                                                     MobileWallet.msisdn == msisdn).with_for_update())


def refusal(wallet: MobileWallet | None, amount: Decimal) -> str | None:
    """Why the operator refuses ``amount`` from ``wallet``, or None when it can pay."""
    if wallet is None:
        return "wallet_not_found"
    if amount > wallet.per_payment_limit:
        return "wallet_limit_exceeded"
    if amount > wallet.balance:
        return "insufficient_funds"
    return None


def debit(session: Session, operator: str, msisdn: str, amount: Decimal, *, require_funds: bool) -> bool:
    """Take ``amount`` from the wallet in one conditional UPDATE, so two payments decided at once never
    both spend the same money (a read-then-write would, on SQLite's unlocked reads). With
    ``require_funds`` it fails (False) when the balance is short; without (an agent's manual
    approval), the balance stops at zero."""
    where = [MobileWallet.operator == operator, MobileWallet.msisdn == msisdn]
    if require_funds:
        where.append(MobileWallet.balance >= amount)
        new_balance = MobileWallet.balance - amount
    else:
        new_balance = case((MobileWallet.balance >= amount, MobileWallet.balance - amount), else_=0)
    done = session.execute(update(MobileWallet).where(*where).values(balance=new_balance)
                           .execution_options(synchronize_session=False))
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]
