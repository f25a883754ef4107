"""IncidentClient against the seeded reference back office."""

from __future__ import annotations

import re
from datetime import UTC

import pytest

from backend_clients import IncidentClient
from dialogs.backends import NotFound, Outage, Ticket

REPORT = {"kind": "outage", "category": "outage", "account_number": "2000002", "msisdn": "+221770000002",
              "description": "No power since this morning"}


def test_outages_in_zone(incidents: IncidentClient) -> None:
    outages = incidents.outages_in_zone("THIES-NORD")
    assert len(outages) == 1 and isinstance(outages[0], Outage)
    outage = outages[0]
    assert (outage.zone, outage.status) == ("THIES-NORD", "ongoing") and outage.cause
    assert outage.started_at.tzinfo == UTC
    assert outage.estimated_restoration is None or outage.estimated_restoration > outage.started_at
    assert incidents.outages_in_zone("DKR-MEDINA") == []


def test_ticket_create_get_list_and_idempotent_create(incidents: IncidentClient) -> None:
    ticket = incidents.open_ticket(**REPORT, client_reference="sess-1-outage")
    assert isinstance(ticket, Ticket)
    assert re.fullmatch(r"INC-[2-9A-HJ-NP-Z]{4}", ticket.reference)
    assert (ticket.kind, ticket.category, ticket.status, ticket.account_number) == (
        "outage", "outage", "open", "2000002")
    assert ticket.created_at.tzinfo == UTC and ticket.history and ticket.history[0].status == "open"

    assert incidents.open_ticket(**REPORT, client_reference="sess-1-outage").reference == ticket.reference
    assert incidents.ticket(ticket.reference) == ticket

    complaint = incidents.open_ticket(kind="complaint", category="billing", account_number="2000002",
                                      msisdn="+221770000002", description="Bill too high",
                                      client_reference="sess-2-complaint")
    assert complaint.reference.startswith("REC-")
    listed = incidents.tickets_for_account("2000002")
    assert [t.reference for t in listed] == [complaint.reference, ticket.reference]  # most recent first
    assert incidents.tickets_for_account("1000001") == []


def test_unknown_ticket_is_not_found(incidents: IncidentClient) -> None:
    with pytest.raises(NotFound):
        incidents.ticket("INC-ZZZZ")
