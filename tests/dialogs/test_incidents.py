"""The duplicate rule of ``incidents.open_ticket`` against an incident system that honours client
references only (no rule of its own about open subjects), as a real one may: the product itself
keeps a second session from opening a second ticket for the same open subject."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from app.storage.throttle import MemoryThrottle
from dialogs.backends import NotFound, Outage, Ticket
from dialogs.registry import Deps, DialogRegistry
from dialogs.stores import PendingTicket
from engine.steps import StepContext, StepResult

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class ClientReferenceOnlyIncidents:
    """An in-memory incident system: idempotent by client reference, nothing more."""

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []

    def outages_in_zone(self, zone: str) -> list[Outage]:
        return []

    def open_ticket(self, *, kind: str, category: str, account_number: str, msisdn: str, description: str,
                    client_reference: str, bill_id: str | None = None) -> Ticket:
        for ticket in self.tickets:
            if ticket.client_reference == client_reference:
                return ticket
        ticket = Ticket(f"REC-{len(self.tickets) + 1:04d}", kind, category, "open",  # type: ignore[arg-type]
                        account_number, NOW, client_reference=client_reference, bill_id=bill_id)
        self.tickets.append(ticket)
        return ticket

    def ticket(self, reference: str) -> Ticket:
        raise NotFound(reference)

    def tickets_for_account(self, account_number: str) -> list[Ticket]:
        return [t for t in reversed(self.tickets) if t.account_number == account_number]


class MemoryPendingTickets:
    def __init__(self) -> None:
        self.kept: list[PendingTicket] = []

    def add(self, ticket: PendingTicket) -> None:
        self.kept.append(ticket)

    def due(self, limit: int = 50) -> list[PendingTicket]:
        return [t for t in self.kept if t.status == "pending"][:limit]

    def mark_sent(self, client_reference: str, ticket_reference: str) -> None:
        raise AssertionError("not used here")

    def mark_refused(self, client_reference: str, reason: str) -> None:
        raise AssertionError("not used here")

    def for_user(self, msisdn: str) -> list[PendingTicket]:
        return [t for t in self.kept if t.msisdn == msisdn]


def _file(registry: DialogRegistry, session_key: str, **data: Any) -> StepResult:
    step = registry.get("incidents.open_ticket")
    assert step is not None
    context = {"account_number": "1000001", "complaint_category": "meter", "complaint_description": "Meter problem",
               **data}
    return step(StepContext(user_id="+221770000001", channel="ussd", language="fr", session_key=session_key,
                            data=MappingProxyType(context), params=MappingProxyType({"kind": "complaint"}),
                            secrets=MappingProxyType({}), now=NOW))


def test_a_second_session_gets_the_open_ticket_of_the_first_not_a_new_one() -> None:
    incidents = ClientReferenceOnlyIncidents()
    registry = DialogRegistry(Deps(billing=None, links=None, preferences=None, throttle=MemoryThrottle(),  # type: ignore[arg-type]
                                   incidents=incidents, pending_tickets=MemoryPendingTickets()))
    first = _file(registry, "ussd:one")
    assert first.outcome == "ok"
    again = _file(registry, "ussd:one")                         # the same session again: its own ticket
    assert (again.outcome, again.data["ticket_reference"]) == ("ok", first.data["ticket_reference"])
    second = _file(registry, "ussd:two")
    assert (second.outcome, second.data["ticket_reference"]) == ("duplicate", first.data["ticket_reference"])
    assert len(incidents.tickets) == 1
    # Another bill disputed, or another subject, is another ticket.
    billing = {"complaint_category": "billing", "disputed_bill": {"bill_id": "B-1"}}
    assert _file(registry, "ussd:two", **billing).outcome == "ok"
    assert _file(registry, "ussd:three", **billing).outcome == "duplicate"
    assert _file(registry, "ussd:three", complaint_category="billing", disputed_bill={"bill_id": "B-2"}
                 ).outcome == "ok"
    assert [t.bill_id for t in incidents.tickets] == [None, "B-1", "B-2"]
