"""``PinVault`` on SQL: scrypt with a per-user salt, three wrong tries lock for 15 minutes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import PinVerdict

from .models import PinCredentialRow

__all__ = ["SqlPinVault", "check_pin", "hash_pin"]

MAX_TRIES = 3
LOCK = timedelta(minutes=15)
# scrypt cost: n=2**14, r=8, p=1 (~16 MiB, tens of ms): slow for guessing, fine once per hop.
_N, _R, _P = 2**14, 8, 1


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "scrypt$%d$%d$%d$%s$%s" % (_N, _R, _P, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def check_pin(pin: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                  dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite returns naive datetimes
        return value.replace(tzinfo=UTC)
    return value


class SqlPinVault:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def is_set(self, msisdn: str) -> bool:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn)
            return row is not None and row.pin_hash is not None

    def verify(self, msisdn: str, pin: str, now: datetime) -> PinVerdict:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn, with_for_update=True)
            if row is None or row.pin_hash is None:
                return PinVerdict("not_set")
            locked_until = _aware(row.locked_until)
            if locked_until is not None and locked_until > now:
                return PinVerdict("locked", 0, locked_until)
            if locked_until is not None:  # the lock is over: a fresh set of tries
                row.locked_until, row.failed_attempts = None, 0
            if check_pin(pin, row.pin_hash):
                row.failed_attempts = 0
                db.commit()
                return PinVerdict("ok", MAX_TRIES)
            row.failed_attempts += 1
            if row.failed_attempts >= MAX_TRIES:
                row.locked_until = now + LOCK
                db.commit()
                return PinVerdict("locked", 0, row.locked_until)
            db.commit()
            return PinVerdict("wrong", MAX_TRIES - row.failed_attempts)

    def set_pin(self, msisdn: str, pin: str) -> None:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn)
            if row is None:
                db.add(PinCredentialRow(msisdn=msisdn, pin_hash=hash_pin(pin), failed_attempts=0))
            else:
                row.pin_hash, row.failed_attempts, row.locked_until = hash_pin(pin), 0, None
                row.pending_hash = None
            db.commit()

    def stage_pin(self, msisdn: str, pin: str) -> None:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn)
            if row is None:
                db.add(PinCredentialRow(msisdn=msisdn, pin_hash=None, pending_hash=hash_pin(pin), failed_attempts=0))
            else:
                row.pending_hash = hash_pin(pin)
            db.commit()

    def confirm_pin(self, msisdn: str, pin: str) -> bool:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn, with_for_update=True)
            if row is None or row.pending_hash is None:
                return False
            matches = check_pin(pin, row.pending_hash)
            if matches:
                row.pin_hash, row.failed_attempts, row.locked_until = row.pending_hash, 0, None
            row.pending_hash = None
            db.commit()
            return matches
