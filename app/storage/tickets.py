"""``PendingTickets`` on SQL: reports kept when the incident system is down, sent again later."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import PendingTicket

from .models import PendingTicketRow

__all__ = ["SqlPendingTickets"]


def _ticket(row: PendingTicketRow) -> PendingTicket:
    return PendingTicket(row.client_reference, row.msisdn, row.account_number, row.kind, row.category,
                         row.description, row.status, row.ticket_reference, row.bill_id)


class SqlPendingTickets:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(self, ticket: PendingTicket) -> None:
        with self._sessions() as db:
            if db.scalars(select(PendingTicketRow.id)
                          .where(PendingTicketRow.client_reference == ticket.client_reference)).first():
                return
            db.add(PendingTicketRow(client_reference=ticket.client_reference, msisdn=ticket.msisdn,
                                    account_number=ticket.account_number, kind=ticket.kind,
                                    category=ticket.category, description=ticket.description, status="pending",
                                    attempts=0, bill_id=ticket.bill_id))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()

    def due(self, limit: int = 50) -> list[PendingTicket]:
        with self._sessions() as db:
            rows = db.scalars(select(PendingTicketRow).where(PendingTicketRow.status == "pending")
                              .order_by(PendingTicketRow.id).limit(limit)).all()
            return [_ticket(r) for r in rows]

    def mark_sent(self, client_reference: str, ticket_reference: str) -> None:
        with self._sessions() as db:
            row = db.scalars(select(PendingTicketRow)
                             .where(PendingTicketRow.client_reference == client_reference)).first()
            if row is not None:
                row.status, row.ticket_reference = "sent", ticket_reference
                row.attempts += 1
                db.commit()

    def mark_refused(self, client_reference: str, reason: str) -> None:
        with self._sessions() as db:
            row = db.scalars(select(PendingTicketRow)
                             .where(PendingTicketRow.client_reference == client_reference)).first()
            if row is not None:
                row.status, row.refusal = "refused", reason[:255]
                row.attempts += 1
                db.commit()

    def for_user(self, msisdn: str) -> list[PendingTicket]:
        with self._sessions() as db:
            rows = db.scalars(select(PendingTicketRow).where(PendingTicketRow.msisdn == msisdn)
                              .order_by(PendingTicketRow.id.desc())).all()
            return [_ticket(r) for r in rows]
