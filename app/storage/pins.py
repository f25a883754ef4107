"""``PinVault`` on SQL: scrypt with a per-user salt; wrong tries counted atomically, growing lockouts.

Every try first runs ``UPDATE ... SET failed_attempts = failed_attempts + 1 ... RETURNING`` (SQLite
3.35+ and PostgreSQL alike), and only then checks the hash: eight guesses sent at once each get
their own count, so the third one locks whatever the interleaving. Lockouts in a row grow:
15 minutes, 1 hour, 24 hours, then until an agent unlocks (``python -m app pin-unlock``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import PinVerdict

from .models import PinCredentialRow

__all__ = ["AGENT_ONLY", "LOCK_LADDER", "MAX_TRIES", "SqlPinVault", "check_pin", "hash_pin"]

MAX_TRIES = 3
# Length of the 1st, 2nd and 3rd lockout in a row; after that only an agent unlocks.
LOCK_LADDER = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=24))
AGENT_ONLY = datetime(9999, 12, 31, tzinfo=UTC)   # "until an agent unlocks": a date no clock reaches
# scrypt cost: n=2**14, r=8, p=1 (~16 MiB, tens of ms): slow for guessing, fine once per hop.
_N, _R, _P = 2**14, 8, 1


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "scrypt$%d$%d$%d$%s$%s" % (_N, _R, _P, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())  # noqa: UP031 - the stored format


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


_T = PinCredentialRow


class SqlPinVault:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def is_set(self, msisdn: str) -> bool:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn)
            return row is not None and row.pin_hash is not None

    def lock_state(self, msisdn: str, now: datetime) -> PinVerdict | None:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn)
            locked_until = _aware(row.locked_until) if row is not None else None
            if row is None or locked_until is None or locked_until <= now:
                return None
            return PinVerdict("locked", 0, locked_until, row.lockouts)

    def verify(self, msisdn: str, pin: str, now: datetime) -> PinVerdict:
        now = now.astimezone(UTC)
        with self._sessions() as db:
            # A lock that is over gives a fresh set of tries (only rows whose lock ended match).
            db.execute(update(_T).where(_T.msisdn == msisdn, _T.locked_until.is_not(None), _T.locked_until <= now)
                       .values(failed_attempts=0, locked_until=None))
            counted = db.execute(
                update(_T).where(_T.msisdn == msisdn, _T.pin_hash.is_not(None), _T.locked_until.is_(None))
                .values(failed_attempts=_T.failed_attempts + 1)
                .returning(_T.failed_attempts, _T.pin_hash)).first()
            db.commit()   # the try is counted before the (slow) hash check
            if counted is None:
                return self._not_counted(db, msisdn)
            tries, pin_hash = counted
            # Beyond the limit, concurrent tries are not even checked: they only lock.
            if tries > MAX_TRIES or not check_pin(pin, pin_hash or ""):
                if tries >= MAX_TRIES:
                    return self._lock(db, msisdn, now)
                return PinVerdict("wrong", MAX_TRIES - tries)
            db.execute(update(_T).where(_T.msisdn == msisdn).values(failed_attempts=0, lockouts=0))
            db.commit()
            return PinVerdict("ok", MAX_TRIES)

    @staticmethod
    def _not_counted(db: Session, msisdn: str) -> PinVerdict:
        row = db.get(PinCredentialRow, msisdn)
        if row is None or row.pin_hash is None:
            return PinVerdict("not_set")
        return PinVerdict("locked", 0, _aware(row.locked_until), row.lockouts)

    @staticmethod
    def _lock(db: Session, msisdn: str, now: datetime) -> PinVerdict:
        until = case(*((_T.lockouts == n, now + length) for n, length in enumerate(LOCK_LADDER)), else_=AGENT_ONLY)
        # Only the first of concurrent lockers locks (the others find it locked): one lockout, one SMS.
        locked = db.execute(
            update(_T).where(_T.msisdn == msisdn, _T.locked_until.is_(None))
            .values(locked_until=until, lockouts=_T.lockouts + 1, failed_attempts=0)
            .returning(_T.locked_until, _T.lockouts)).first()
        db.commit()
        if locked is None:
            db.expire_all()
            row = db.get(PinCredentialRow, msisdn)
            return PinVerdict("locked", 0, _aware(row.locked_until) if row else None, row.lockouts if row else 0)
        return PinVerdict("locked", 0, _aware(locked[0]), locked[1], newly_locked=True)

    def unlock(self, msisdn: str) -> bool:
        with self._sessions() as db:
            result = db.execute(update(_T).where(_T.msisdn == msisdn, _T.locked_until.is_not(None))
                                .values(locked_until=None, failed_attempts=0, lockouts=0))
            db.commit()
            return bool(result.rowcount)   # type: ignore[attr-defined]

    def set_pin(self, msisdn: str, pin: str) -> None:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn)
            if row is None:
                # A new row has no wrong tries and no lockouts: the columns' defaults (0).
                db.add(PinCredentialRow(msisdn=msisdn, pin_hash=hash_pin(pin)))
            else:
                row.pin_hash, row.failed_attempts, row.locked_until = hash_pin(pin), 0, None
                row.pending_hash, row.lockouts = None, 0
            db.commit()

    def stage_pin(self, msisdn: str, pin: str) -> None:
        with self._sessions() as db:
            row = db.get(PinCredentialRow, msisdn)
            if row is None:
                db.add(PinCredentialRow(msisdn=msisdn, pending_hash=hash_pin(pin)))   # no PIN yet: pin_hash NULL
            else:
                row.pending_hash = hash_pin(pin)
            db.commit()

    def confirm_pin(self, msisdn: str, pin: str) -> bool:
        with self._sessions() as db:
            staged = db.scalar(select(_T.pending_hash).where(_T.msisdn == msisdn))
            if staged is None:
                return False
            matches = check_pin(pin, staged)
            # The staged PIN is spent by the first of concurrent confirmations only (the others find it
            # gone, on SQLite as on PostgreSQL): one PIN change, one SMS. A wrong one drops it too.
            new_pin = {"pin_hash": staged, "failed_attempts": 0, "locked_until": None, "lockouts": 0}
            spent = db.execute(update(_T).where(_T.msisdn == msisdn, _T.pending_hash == staged)
                               .values(pending_hash=None, **(new_pin if matches else {})))
            db.commit()
            return matches and bool(spent.rowcount)   # type: ignore[attr-defined]

    def is_current(self, msisdn: str, pin: str) -> bool:
        with self._sessions() as db:
            pin_hash = db.scalar(select(_T.pin_hash).where(_T.msisdn == msisdn))
            return pin_hash is not None and check_pin(pin, pin_hash)
