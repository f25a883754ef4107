"""``IncidentClient``: ongoing outages and customer tickets over HTTP."""

from __future__ import annotations

from typing import Any

from dialogs.backends import Outage, Ticket, TicketEvent

from .http import HttpBackend
from .parsing import as_object, choice, moment, objects, opt_moment, opt_text, text

__all__ = ["IncidentClient"]


class IncidentClient(HttpBackend):
    """Satisfies ``dialogs.backends.IncidentBackend`` against ``/api/v1/outages`` and ``/api/v1/tickets``."""

    name = "incidents"

    def outages_in_zone(self, zone: str) -> list[Outage]:
        return self._call("GET", "/outages", params={"zone": zone},
                          parse=lambda data: [parse_outage(o) for o in objects(as_object(data), "outages")])

    def open_ticket(self, *, kind: str, category: str, account_number: str, msisdn: str,
                    description: str, client_reference: str, bill_id: str | None = None) -> Ticket:
        body: dict[str, Any] = {
            "kind": kind,
            "category": category,
            "account_number": account_number,
            "msisdn": msisdn,
            "description": description,
            "client_reference": client_reference,
        }
        if bill_id is not None:
            body["bill_id"] = bill_id
        # The back end deduplicates on client_reference, so the POST may be retried: passing it
        # as the idempotency key enables retries (and sends it as Idempotency-Key too, harmless).
        return self._call("POST", "/tickets", json=body, idempotency_key=client_reference,
                          parse=lambda data: parse_ticket(as_object(data)))

    def ticket(self, reference: str) -> Ticket:
        return self._call("GET", "/tickets/{}", reference, parse=lambda data: parse_ticket(as_object(data)))

    def tickets_for_account(self, account_number: str) -> list[Ticket]:
        return self._call("GET", "/tickets", params={"account_number": account_number},
                          parse=lambda data: [parse_ticket(t) for t in objects(as_object(data), "tickets")])


# ---------------------------------------------------------------- JSON -> dataclasses
def parse_outage(data: dict[str, Any]) -> Outage:
    return Outage(
        outage_id=text(data, "outage_id"),
        zone=text(data, "zone"),
        started_at=moment(data, "started_at"),
        estimated_restoration=opt_moment(data, "estimated_restoration"),
        cause=text(data, "cause"),
        status=choice(data, "status", ("ongoing", "resolved")),
    )


def parse_ticket(data: dict[str, Any]) -> Ticket:
    history = objects(data, "history") if data.get("history") is not None else []
    return Ticket(
        reference=text(data, "reference"),
        kind=choice(data, "kind", ("outage", "complaint")),
        category=text(data, "category"),
        status=choice(data, "status", ("open", "in_progress", "resolved", "closed")),
        account_number=text(data, "account_number"),
        created_at=moment(data, "created_at"),
        history=tuple(TicketEvent(at=moment(e, "at"), status=text(e, "status"), note=text(e, "note"))
                      for e in history),
        client_reference=opt_text(data, "client_reference"),
        bill_id=opt_text(data, "bill_id"),
    )

