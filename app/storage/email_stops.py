"""``SqlEmailStops``: the addresses that unsubscribed from a topic of our e-mails (or from all of them).

Written by the unsubscribe link (``web_fallback/customer/unsubscribe.py``), read by the e-mail sender
when it sends (``app/email_letters.py``): a stopped topic goes by SMS instead. Each new stop lands in the
consent history of the customers whose confirmed address it is; a second click changes nothing.
Confirming the address again (``SqlContacts.confirm_email``) lifts its stops: the customer asked anew.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .models import ConsentChangeRow, EmailStopRow, PreferenceRow

__all__ = ["ALL_EMAIL", "SqlEmailStops"]

ALL_EMAIL = "all"


class SqlEmailStops:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def stopped(self, address: str, topic: str) -> bool:
        """Whether ``address`` stopped ``topic`` or all e-mail."""
        with self._sessions() as db:
            found = db.scalar(select(EmailStopRow.topic).where(EmailStopRow.address == address,
                                                               EmailStopRow.topic.in_((topic, ALL_EMAIL))).limit(1))
            return found is not None

    def stop(self, address: str, topic: str, *, source: str) -> bool:
        """Stop ``topic`` (or ``all``) for ``address``; True when it is new, False when it was already stopped."""
        try:
            with self._sessions.begin() as db:
                if db.get(EmailStopRow, (address, topic)) is not None:
                    return False
                db.add(EmailStopRow(address=address, topic=topic[:40], source=source[:40]))
                owners = db.scalars(select(PreferenceRow.msisdn).where(PreferenceRow.email == address)).all()
                # The consent history says who, when and how; the address itself stays out of it.
                db.add_all([ConsentChangeRow(msisdn=msisdn, action="email_stop", topic=topic[:40], scope="",
                                             channel="email", source=source[:40]) for msisdn in owners])
                return True
        except IntegrityError:   # the same click twice at once: the other one recorded it
            return False
