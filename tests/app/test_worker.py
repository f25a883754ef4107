"""The worker forwards complaints kept while the incident system was down."""

from __future__ import annotations

import requests

from app.storage import SqlPendingTickets, make_sessions
from app.worker import run_once
from dialogs.stores import PendingTicket


def test_worker_pass_forwards_kept_tickets_once(settings, backoffice_url):
    pending = SqlPendingTickets(make_sessions(settings.database_url))
    pending.add(PendingTicket("ussd:s1:complaint", "+221770000001", "1000001", "complaint", "billing",
                              "Billing dispute", "pending"))
    assert run_once(settings)["tickets_sent"] == 1
    assert run_once(settings)["tickets_sent"] == 0
    sent = pending.for_user("+221770000001")[0]
    assert sent.status == "sent" and sent.ticket_reference and sent.ticket_reference.startswith("REC-")
    ticket = requests.get(f"{backoffice_url}/api/v1/tickets/{sent.ticket_reference}", timeout=5).json()
    assert ticket["category"] == "billing" and ticket["account_number"] == "1000001"


def test_a_kept_ticket_the_incident_system_refuses_is_not_sent_again(settings):
    pending = SqlPendingTickets(make_sessions(settings.database_url))
    pending.add(PendingTicket("ussd:s2:bad", "+221770000001", "9999999", "complaint", "billing",
                              "Billing dispute", "pending"))   # an account the incident system rejects
    assert run_once(settings)["tickets_sent"] == 0
    kept = pending.for_user("+221770000001")[0]
    assert kept.status == "refused" and pending.due() == []
    assert run_once(settings)["tickets_sent"] == 0
