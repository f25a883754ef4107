"""The durable ``SecurityAudit``: security events in the ``security_events`` table, under a pseudonym.

The subject (an E.164 number, a source address) is never stored: only ``pseudonym(key, subject)``,
an HMAC-SHA256 with the server's ``SECRET_KEY``. An agent asked "who accessed account X" lists the
account's events and sees pseudonyms; asked "what happened to +221…", computes the pseudonym of that
number (``python -m app audit --number +221…``). Without the key, the table names no one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.security_audit import LoggingSecurityAudit, SecurityEvent, current_kind

from .models import SecurityEventRow

__all__ = ["AuditedEvent", "SqlSecurityAudit", "pseudonym"]

log = logging.getLogger("security")

_DETAIL_MAX = 200


def pseudonym(key: str, subject: str) -> str:
    """The subject's pseudonymous id: hex HMAC-SHA256 of the subject (spaces removed) under ``key``."""
    normalised = "".join(subject.split())
    return hmac.new(key.encode(), normalised.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditedEvent:
    """A stored security event as an agent reads it back."""

    occurred_at: datetime
    kind: str
    channel: str
    subject_id: str | None
    account_number: str | None
    detail: str
    extra: dict[str, str]


def _event(row: SecurityEventRow) -> AuditedEvent:
    occurred = row.occurred_at if row.occurred_at.tzinfo else row.occurred_at.replace(tzinfo=UTC)
    return AuditedEvent(occurred, current_kind(row.kind), row.channel, row.subject_id, row.account_number, row.detail,
                        json.loads(row.extra or "{}"))


class SqlSecurityAudit:
    """``engine.SecurityAudit`` on SQL; also writes the masked log line of ``LoggingSecurityAudit``."""

    def __init__(self, sessions: sessionmaker[Session], key: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._sessions = sessions
        self._key = key
        self._clock = clock
        self._log = LoggingSecurityAudit()

    def pseudonym(self, subject: str) -> str:
        return pseudonym(self._key, subject)

    def record(self, event: SecurityEvent) -> None:
        self._log.record(event)
        try:
            with self._sessions() as db:
                db.add(SecurityEventRow(
                    occurred_at=self._clock(), kind=event.kind[:40], channel=event.channel[:20],
                    subject_id=self.pseudonym(event.subject) if event.subject else None,
                    account_number=(event.account or None) and event.account[:32],
                    detail=event.detail[:_DETAIL_MAX],
                    extra=json.dumps({str(k): str(v)[:_DETAIL_MAX] for k, v in event.extra.items()})))
                db.commit()
        except Exception:  # the port's promise: a failing audit never breaks the customer's hop
            log.exception("could not store security event %s", event.kind)

    def for_account(self, account_number: str, limit: int = 200) -> list[AuditedEvent]:
        """Who did what on ``account_number``, newest first (subjects as pseudonyms)."""
        return self._query(SecurityEventRow.account_number == account_number, limit)

    def for_subject(self, subject: str, limit: int = 200) -> list[AuditedEvent]:
        """Every event of one number (or source address), newest first."""
        return self._query(SecurityEventRow.subject_id == self.pseudonym(subject), limit)

    def _query(self, where: object, limit: int) -> list[AuditedEvent]:
        with self._sessions() as db:
            rows = db.scalars(select(SecurityEventRow).where(where)  # type: ignore[arg-type]
                              .order_by(SecurityEventRow.occurred_at.desc(), SecurityEventRow.id.desc())
                              .limit(limit)).all()
            return [_event(r) for r in rows]
