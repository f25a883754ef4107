"""``Contacts`` on SQL: where each customer's notifications go (``preferences.notify_channel``), their
confirmed e-mail address and the one waiting for its code; every change in the consent history.

The dispatcher reads a whole batch's contacts in one query (``contacts_among``) at send time, so a
channel chosen after a message was queued is the one it goes by."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialogs.codes import code_matches
from dialogs.stores import NOTIFY_CHANNELS, ContactInfo, EmailCheck

from .models import ConsentChangeRow, EmailStopRow, PreferenceRow

__all__ = ["MAX_EMAIL_CODE_TRIES", "SqlContacts"]

MAX_EMAIL_CODE_TRIES = 3


def _info(row: PreferenceRow | None) -> ContactInfo:
    if row is None:
        return ContactInfo("sms")
    expires = _aware(row.email_code_expires_at) if row.email_code_expires_at is not None else None
    left = max(0, MAX_EMAIL_CODE_TRIES - (row.email_code_tries or 0)) if row.email_pending else 0
    return ContactInfo(row.notify_channel or "sms", row.email, row.email_pending, row.notify_channel is not None,
                       expires, left)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)   # SQLite gives naive UTC back


class SqlContacts:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def contact(self, msisdn: str) -> ContactInfo:
        with self._sessions() as db:
            return _info(db.get(PreferenceRow, msisdn))

    def contacts_among(self, msisdns: Collection[str]) -> dict[str, ContactInfo]:
        """The contacts of those numbers that chose a channel (one query for a batch); the others keep
        the channel their message was queued with."""
        if not msisdns:
            return {}
        with self._sessions() as db:
            rows = db.scalars(select(PreferenceRow).where(PreferenceRow.msisdn.in_(list(set(msisdns))),
                                                          PreferenceRow.notify_channel.is_not(None))).all()
            return {row.msisdn: _info(row) for row in rows}

    def set_channel(self, msisdn: str, channel: str, *, via: str, source: str) -> None:
        if channel not in NOTIFY_CHANNELS:
            raise ValueError(f"unknown channel '{channel}'")
        def choose(row: PreferenceRow) -> None:
            row.notify_channel = channel
        self._write(msisdn, choose, {"action": "channel", "topic": channel, "channel": via[:20],
                                     "source": source[:40]})

    def stage_email(self, msisdn: str, address: str, code_hash: str, expires_at: datetime) -> None:
        def stage(row: PreferenceRow) -> None:
            row.email_pending, row.email_code_hash = address, code_hash
            row.email_code_expires_at, row.email_code_tries = expires_at, 0
        self._write(msisdn, stage)

    def confirm_email(self, msisdn: str, code: str, now: datetime, *, via: str, source: str) -> EmailCheck:
        with self._sessions.begin() as db:
            row = db.get(PreferenceRow, msisdn, with_for_update=True)
            if row is None or not row.email_pending or not row.email_code_hash:
                return "none"
            if row.email_code_tries >= MAX_EMAIL_CODE_TRIES:
                return "locked"
            if row.email_code_expires_at is None or _aware(row.email_code_expires_at) <= now:
                return "expired"
            if not code_matches(code, row.email_code_hash):
                # Counted before anything else answers: guesses cannot outrun the limit.
                row.email_code_tries += 1
                return "locked" if row.email_code_tries >= MAX_EMAIL_CODE_TRIES else "wrong"
            row.email, row.email_verified_at = row.email_pending, now
            # Proving the address again is asking for e-mail again: its earlier unsubscribes are lifted.
            db.execute(delete(EmailStopRow).where(EmailStopRow.address == row.email))
            row.email_pending = row.email_code_hash = row.email_code_expires_at = None
            row.email_code_tries = 0
            # The address itself stays out of the history: it says that, when and how, not what.
            db.add(ConsentChangeRow(msisdn=msisdn, action="email", topic="confirmed", scope="",
                                    channel=via[:20], source=source[:40]))
            return "ok"

    def _write(self, msisdn: str, change: Callable[[PreferenceRow], None],
               history: dict[str, str] | None = None) -> None:
        for _ in range(2):   # a concurrent first preference wins the primary key: write over it
            try:
                with self._sessions.begin() as db:
                    row = db.get(PreferenceRow, msisdn, with_for_update=True)
                    if row is None:
                        row = PreferenceRow(msisdn=msisdn, email_code_tries=0)
                        db.add(row)
                    change(row)
                    if history is not None:
                        db.add(ConsentChangeRow(msisdn=msisdn, scope="", **history))
                return
            except IntegrityError:
                continue
        raise RuntimeError("preferences could not be written")
