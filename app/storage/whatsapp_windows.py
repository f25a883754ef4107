"""WhatsApp's 24-hour customer-service window, as the product's database keeps it: when each customer last
wrote to each of our WhatsApp business numbers (``whatsapp_windows``, one row per customer, provider and
business number: Twilio's sender in E.164, Meta's phone number id). The window is between the customer and that
number: a customer who wrote to our number A has none with our number B, even at the same provider.

The webhooks (``channels/whatsapp_twilio.py``, ``channels/whatsapp_meta.py``) note each incoming message with
one upsert (``saw``); the worker reads the rows of the numbers it is about to notify in one query per pass
(``last_inbound_among``) and the agents' console one number's (``windows_of``). In the database rather than
Redis: the outbox, the console and the embedded default (no Redis) all read it there, and a Redis restart
(nothing kept on disk) would forget open windows and send templates Meta bills for.

A message's time is the provider's when it gives one (Meta's ``timestamp``; a webhook Meta delivers again hours
later still dates from when the customer wrote), never later than our clock, and a row only moves forward: a
late redelivery of an older message does not shorten the window.

Rows written before the business number was kept (migration ``v1_wa3``) have ``''``: the provider's configured
number, the one notifications go from; a look-up for that number reads them with its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from ..settings import utc_now
from .models import WhatsAppWindowRow

__all__ = ["SqlWhatsAppWindows"]


class SqlWhatsAppWindows:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utc_now) -> None:
        self._sessions, self._clock = sessions, clock

    def saw(self, msisdn: str, provider: str, at: datetime | None = None, number: str = "") -> None:
        """The customer ``msisdn`` (E.164) wrote to our business number ``number`` at ``provider`` at ``at``
        (default: now); ``number`` unknown (``''``): the provider's configured one."""
        now = self._clock()
        moment = min(at, now) if at is not None else now
        # UTC, as SQLite keeps it (naive text compared as text).
        values = {"msisdn": msisdn[:20], "provider": provider[:16], "business_number": number[:64],
                  "last_inbound_at": moment.astimezone(UTC)}
        with self._sessions.begin() as db:
            insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
            statement = insert(WhatsAppWindowRow).values(**values)
            later = case((statement.excluded.last_inbound_at > WhatsAppWindowRow.last_inbound_at,
                          statement.excluded.last_inbound_at), else_=WhatsAppWindowRow.last_inbound_at)
            db.execute(statement.on_conflict_do_update(index_elements=["msisdn", "provider", "business_number"],
                                                       set_={"last_inbound_at": later}))

    def last_inbound_among(self, msisdns: Collection[str], provider: str, number: str = "") -> Mapping[str, datetime]:
        """When each of these customers last wrote to our business number ``number`` at ``provider``, the
        provider's configured number (customers who never did: absent). Rows without a number (written before
        v1_wa3) count as that configured number's."""
        if not msisdns:
            return {}
        numbers = {number, ""}
        with self._sessions() as db:
            rows = db.execute(select(WhatsAppWindowRow.msisdn, WhatsAppWindowRow.last_inbound_at).where(
                WhatsAppWindowRow.provider == provider, WhatsAppWindowRow.business_number.in_(numbers),
                WhatsAppWindowRow.msisdn.in_(list(msisdns)))).all()
        last: dict[str, datetime] = {}
        for msisdn, at in rows:
            moment = _aware(at)
            if msisdn not in last or moment > last[msisdn]:
                last[msisdn] = moment
        return last

    def windows_of(self, msisdn: str) -> Mapping[tuple[str, str], datetime]:
        """When the customer last wrote to each of our business numbers, by (provider, number); ``''`` for the
        provider's configured number (rows written before v1_wa3)."""
        with self._sessions() as db:
            rows = db.execute(select(WhatsAppWindowRow.provider, WhatsAppWindowRow.business_number,
                                     WhatsAppWindowRow.last_inbound_at).where(WhatsAppWindowRow.msisdn == msisdn)
                              .order_by(WhatsAppWindowRow.provider, WhatsAppWindowRow.business_number)).all()
            return {(provider, number): _aware(at) for provider, number, at in rows}


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes: they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
