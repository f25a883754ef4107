"""Incidents over HTTP: outages per zone, tickets with short references, idempotency and history."""

from __future__ import annotations

import re

import requests

REFERENCE = re.compile(r"^(INC|REC)-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{4}$")


def test_seeded_outage_in_thies_nord(api: str, http: requests.Session) -> None:
    outages = http.get(f"{api}/outages?zone=THIES-NORD").json()["outages"]
    assert len(outages) == 1
    outage = outages[0]
    assert outage["status"] == "ongoing" and outage["estimated_restoration"] > outage["started_at"]
    assert http.get(f"{api}/outages?zone=DKR-MEDINA").json() == {"outages": []}


def test_outage_lifecycle(api: str, http: requests.Session) -> None:
    created = http.post(f"{api}/outages", json={"zone": "DKR-MEDINA", "cause": "Cable cut",
                                                "estimated_restoration": "2026-12-01T18:00:00Z"})
    assert created.status_code == 201
    outage = created.json()
    assert outage["estimated_restoration"] == "2026-12-01T18:00:00Z"
    assert [o["outage_id"] for o in http.get(f"{api}/outages?zone=DKR-MEDINA").json()["outages"]] == [
        outage["outage_id"]]
    resolved = http.post(f"{api}/outages/{outage['outage_id']}/resolve")
    assert resolved.json()["status"] == "resolved"
    assert http.get(f"{api}/outages?zone=DKR-MEDINA").json() == {"outages": []}
    assert len(http.get(f"{api}/outages?zone=DKR-MEDINA&all=1").json()["outages"]) == 1
    assert http.post(f"{api}/outages/OUT-NOPE/resolve").status_code == 404
    assert http.post(f"{api}/outages", json={"zone": "X", "cause": "c", "estimated_restoration": "soon"}
                     ).status_code == 422


def test_ticket_is_idempotent_by_client_reference(api: str, http: requests.Session) -> None:
    body = {"kind": "outage", "category": "outage", "account_number": "2000002", "msisdn": "+221770000002",
            "description": "No power since 8am", "client_reference": "ussd-abc-1"}
    first = http.post(f"{api}/tickets", json=body)
    assert first.status_code == 201
    ticket = first.json()
    assert REFERENCE.match(ticket["reference"]) and ticket["reference"].startswith("INC-")
    assert ticket["status"] == "open"
    assert [h["status"] for h in ticket["history"]] == ["open"]
    again = http.post(f"{api}/tickets", json=body)
    assert again.status_code == 200
    assert again.json() == ticket
    complaint = http.post(f"{api}/tickets", json={**body, "kind": "complaint", "category": "billing",
                                                   "client_reference": "ussd-abc-2"}).json()
    assert complaint["reference"].startswith("REC-") and REFERENCE.match(complaint["reference"])
    listed = http.get(f"{api}/tickets?account_number=2000002").json()["tickets"]
    assert [t["reference"] for t in listed] == [complaint["reference"], ticket["reference"]]


def test_ticket_references_are_unique(api: str, http: requests.Session) -> None:
    references = {
        http.post(f"{api}/tickets", json={"kind": "complaint", "category": "quality", "msisdn": "+221770000001",
                                          "description": f"n{i}"}).json()["reference"]
        for i in range(40)
    }
    assert len(references) == 40
    assert all(REFERENCE.match(r) for r in references)


def test_ticket_status_history(api: str, http: requests.Session) -> None:
    reference = http.post(f"{api}/tickets", json={"kind": "complaint", "category": "meter",
                                                  "account_number": "1000001", "msisdn": "+221770000001",
                                                  "description": "Meter display blank"}).json()["reference"]
    url = f"{api}/tickets/{reference}/status"
    assert http.post(url, json={"status": "in_progress", "note": "Technician assigned"}).status_code == 200
    assert http.post(url, json={"status": "in_progress", "note": "again"}).status_code == 409
    assert http.post(url, json={"status": "done"}).status_code == 422
    resolved = http.post(url, json={"status": "resolved", "note": "Meter replaced"}).json()
    assert [(h["status"], h["note"]) for h in resolved["history"]] == [
        ("open", "created"), ("in_progress", "Technician assigned"), ("resolved", "Meter replaced")]
    http.post(url, json={"status": "closed"})
    assert http.post(url, json={"status": "open"}).json()["error"] == "ticket_closed"
    fetched = http.get(f"{api}/tickets/{reference}").json()
    assert fetched["status"] == "closed" and len(fetched["history"]) == 4


def test_ticket_validation(api: str, http: requests.Session) -> None:
    base = {"kind": "outage", "category": "outage", "msisdn": "+221770000001"}
    assert http.post(f"{api}/tickets", json={**base, "kind": "fire"}).status_code == 422
    assert http.post(f"{api}/tickets", json={**base, "category": 3}).status_code == 422
    assert http.post(f"{api}/tickets", json={**base, "account_number": "9999999"}).status_code == 404
    assert http.post(f"{api}/tickets", json={"kind": "outage", "category": "outage"}).status_code == 422
    assert http.get(f"{api}/tickets").status_code == 422


def test_the_same_subject_while_a_ticket_is_open_is_that_ticket(api: str, http: requests.Session) -> None:
    body = {"kind": "complaint", "category": "meter", "account_number": "1000001", "msisdn": "+221770000001",
            "description": "Meter display blank", "client_reference": "session-one"}
    first = http.post(f"{api}/tickets", json=body)
    assert first.status_code == 201
    # Another session, another client reference, the same subject: the open ticket, not a new one.
    second = http.post(f"{api}/tickets", json={**body, "client_reference": "session-two", "description": "x"})
    assert second.status_code == 200
    assert second.json() == first.json()                      # its own client_reference tells it apart
    reference = first.json()["reference"]
    assert http.post(f"{api}/tickets/{reference}/status", json={"status": "in_progress"}).status_code == 200
    assert http.post(f"{api}/tickets", json={**body, "client_reference": "session-three"}).json()[
        "reference"] == reference                             # in progress is still open
    # Another subject on the same account is another ticket.
    quality = http.post(f"{api}/tickets", json={**body, "category": "quality", "client_reference": "q"})
    assert quality.status_code == 201 and quality.json()["reference"] != reference
    # Once resolved, the same problem again is a new ticket.
    http.post(f"{api}/tickets/{reference}/status", json={"status": "resolved"}).raise_for_status()
    again = http.post(f"{api}/tickets", json={**body, "client_reference": "session-four"})
    assert again.status_code == 201 and again.json()["reference"] != reference


def test_a_billing_dispute_is_about_one_of_the_accounts_bills(api: str, http: requests.Session) -> None:
    bills = http.get(f"{api}/accounts/1000001/bills?limit=2").json()["bills"]
    body = {"kind": "complaint", "category": "billing", "account_number": "1000001", "msisdn": "+221770000001"}
    first = http.post(f"{api}/tickets", json={**body, "bill_id": bills[0]["bill_id"], "client_reference": "b1"})
    assert first.status_code == 201 and first.json()["bill_id"] == bills[0]["bill_id"]
    other = http.post(f"{api}/tickets", json={**body, "bill_id": bills[1]["bill_id"], "client_reference": "b2"})
    assert other.status_code == 201 and other.json()["reference"] != first.json()["reference"]
    same = http.post(f"{api}/tickets", json={**body, "bill_id": bills[0]["bill_id"], "client_reference": "b3"})
    assert (same.status_code, same.json()["reference"]) == (200, first.json()["reference"])
    # A dispute without a bill is its own subject.
    assert http.post(f"{api}/tickets", json={**body, "client_reference": "b4"}).status_code == 201
    someone_elses = http.get(f"{api}/accounts/2000002/bills?limit=1").json()["bills"][0]["bill_id"]
    refused = http.post(f"{api}/tickets", json={**body, "bill_id": someone_elses, "client_reference": "b5"})
    assert (refused.status_code, refused.json()["error"]) == (404, "bill_not_found")
    assert http.post(f"{api}/tickets", json={**body, "bill_id": "NOPE", "client_reference": "b6"}).status_code == 404
