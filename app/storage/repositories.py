"""SQL implementations of the ports dialogs and the engine use: links, preferences, audit."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialogs.codes import code_matches
from dialogs.stores import AccountLink
from engine.audit import SessionRecord

from .models import AccountLinkRow, PreferenceRow, SessionAuditRow

__all__ = ["SqlAccountLinks", "SqlAuditSink", "SqlPreferences"]


class SqlAccountLinks:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def accounts_for(self, msisdn: str) -> list[AccountLink]:
        with self._sessions() as db:
            rows = db.scalars(select(AccountLinkRow).where(AccountLinkRow.msisdn == msisdn)
                              .order_by(AccountLinkRow.id)).all()
            return [AccountLink(r.msisdn, r.account_number, r.source) for r in rows]

    def link(self, msisdn: str, account_number: str, source: str, undo_hash: str | None = None) -> AccountLink:
        with self._sessions() as db:
            existing = db.scalars(select(AccountLinkRow).where(
                AccountLinkRow.msisdn == msisdn, AccountLinkRow.account_number == account_number)).first()
            if existing is not None:
                return AccountLink(existing.msisdn, existing.account_number, existing.source)
            db.add(AccountLinkRow(msisdn=msisdn, account_number=account_number, source=source, undo_hash=undo_hash))
            try:
                db.commit()
            except IntegrityError:  # a concurrent hop linked it first
                db.rollback()
            return AccountLink(msisdn, account_number, source)

    def linked_to(self, account_number: str) -> list[AccountLink]:
        with self._sessions() as db:
            rows = db.scalars(select(AccountLinkRow).where(AccountLinkRow.account_number == account_number,
                                                           AccountLinkRow.source == "self-service")
                              .order_by(AccountLinkRow.id)).all()
            return [AccountLink(r.msisdn, r.account_number, r.source) for r in rows]

    def unlink(self, msisdn: str, account_number: str) -> bool:
        with self._sessions() as db:
            row = db.scalars(select(AccountLinkRow).where(AccountLinkRow.msisdn == msisdn,
                                                          AccountLinkRow.account_number == account_number,
                                                          AccountLinkRow.source == "self-service")).first()
            if row is None:
                return False
            db.delete(row)
            db.commit()
            return True

    def undo(self, account_number: str, code: str) -> str | None:
        with self._sessions() as db:
            rows = db.scalars(select(AccountLinkRow).where(AccountLinkRow.account_number == account_number,
                                                           AccountLinkRow.source == "self-service",
                                                           AccountLinkRow.undo_hash.is_not(None))).all()
            for row in rows:
                if code_matches(code, row.undo_hash or ""):
                    msisdn = row.msisdn
                    db.delete(row)
                    db.commit()
                    return msisdn
            return None


class SqlPreferences:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def language(self, msisdn: str) -> str | None:
        with self._sessions() as db:
            row = db.get(PreferenceRow, msisdn)
            return row.language if row else None

    def set_language(self, msisdn: str, language: str) -> None:
        with self._sessions() as db:
            row = db.get(PreferenceRow, msisdn)
            if row is not None and row.language == language:
                return   # written only when it changes
            if row is None:
                db.add(PreferenceRow(msisdn=msisdn, language=language))
            else:
                row.language = language
            db.commit()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class SqlAuditSink:
    """``engine.audit.AuditSink`` on the ``session_audit`` table; both calls upsert by session key."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, record: SessionRecord) -> None:
        with self._sessions() as db:
            row = db.get(SessionAuditRow, record.session_key) or SessionAuditRow(session_key=record.session_key)
            row.channel, row.user_masked = record.channel, record.user_masked
            row.flow, row.version = record.flow, record.version
            row.nodes = " ".join(record.nodes)
            row.outcome = record.outcome
            row.started_at, row.ended_at = _at(record.started_at), _at(record.ended_at)
            row.duration_ms = int((record.ended_at - record.started_at) * 1000)
            row.hops = record.hops
            db.merge(row)
            self._commit(db)

    def complete(self, session_key: str, *, channel: str, user_masked: str, status: str,
                 duration_ms: int | None, error: str | None, hops: int | None) -> None:
        with self._sessions() as db:
            row = db.get(SessionAuditRow, session_key)
            if row is None:
                # ended_at: the gateway's report is the end, and the retention purge ages rows by it.
                row = SessionAuditRow(session_key=session_key, channel=channel, user_masked=user_masked,
                                      outcome="dropped" if status != "Success" else None, hops=hops, nodes="",
                                      ended_at=datetime.now(UTC))
                db.add(row)
            row.gateway_status = status[:20]
            row.gateway_duration_ms = duration_ms
            row.gateway_error = (error or None) and error[:255]
            self._commit(db)

    @staticmethod
    def _commit(db: Session) -> None:
        try:
            db.commit()
        except IntegrityError:  # the other call of the pair inserted the row at the same moment
            db.rollback()
