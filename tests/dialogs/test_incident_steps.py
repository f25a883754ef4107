"""Outage reports, complaints and tracking, one step at a time, against an in-memory incident system that
can be switched off and the real store of kept reports (SQLite): the reference the customer reads out, one
ticket per subject, a kept report forwarded once under its own client reference.

Quick enough for ``make mutation``; ``tests/channels/test_ussd_incidents.py`` and ``test_ussd_tracking.py``
walk the same paths over USSD.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from app.storage import SqlConsent, SqlPendingTickets, SqlSubscriptions, make_sessions
from app.storage.throttle import MemoryThrottle
from dialogs.backends import BackendUnavailable, NotFound, Outage, Rejected, Ticket, TicketEvent
from dialogs.incidents import client_reference, local_reference, normalise_reference, resend_pending_tickets
from dialogs.registry import Deps, DialogRegistry
from engine.steps import StepContext, StepResult

NUMBER = "+221770000001"
ACCOUNT = "1000001"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


class Incidents:
    """An incident system idempotent by client reference; ``down`` makes it unreachable."""

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []
        self.outages: list[Outage] = []
        self.down = False
        self.refuse: set[str] = set()     # client references it refuses as invalid
        self.unknown_accounts: set[str] = set()   # accounts it has never heard of (404)

    def _up(self) -> None:
        if self.down:
            raise BackendUnavailable("incident system down")

    def outages_in_zone(self, zone: str) -> list[Outage]:
        self._up()
        return [o for o in self.outages if o.zone == zone]

    def open_ticket(self, *, kind: str, category: str, account_number: str, msisdn: str, description: str,
                    client_reference: str, bill_id: str | None = None) -> Ticket:
        self._up()
        if client_reference in self.refuse:
            raise Rejected("invalid ticket")
        for ticket in self.tickets:
            if ticket.client_reference == client_reference:
                return ticket
        self.opened_with = {"kind": kind, "category": category, "account_number": account_number, "msisdn": msisdn,
                            "description": description, "client_reference": client_reference, "bill_id": bill_id}
        ticket = Ticket(f"REC-{len(self.tickets) + 2:04d}".replace("0", "Z"), kind, category,  # type: ignore[arg-type]
                        "open", account_number, NOW, client_reference=client_reference, bill_id=bill_id)
        self.tickets.append(ticket)
        self.described = description
        return ticket

    def ticket(self, reference: str) -> Ticket:
        self._up()
        for ticket in self.tickets:
            if ticket.reference == reference:
                return ticket
        raise NotFound(reference)

    def tickets_for_account(self, account_number: str) -> list[Ticket]:
        self._up()
        if account_number in self.unknown_accounts:
            raise NotFound(account_number)
        return [t for t in reversed(self.tickets) if t.account_number == account_number]


@pytest.fixture
def incidents() -> Incidents:
    return Incidents()


@pytest.fixture
def deps(engine_db: str, incidents: Incidents) -> Deps:
    sessions = make_sessions(engine_db)
    return Deps(billing=None, links=None, preferences=None, throttle=MemoryThrottle(), incidents=incidents,  # type: ignore[arg-type]
                pending_tickets=SqlPendingTickets(sessions), subscriptions=SqlSubscriptions(sessions))


def run(deps: Deps, name: str, data: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
        session_key: str = "ussd:s1", language: str = "fr") -> StepResult:
    step = DialogRegistry(deps).get(name)
    assert step is not None, name
    return step(StepContext(user_id=NUMBER, channel="ussd", language=language, session_key=session_key,
                            data=MappingProxyType(data or {}), params=MappingProxyType(params or {}),
                            secrets=MappingProxyType({}), now=NOW))


def complain(deps: Deps, session_key: str = "ussd:s1", **data: Any) -> StepResult:
    context = {"account_number": ACCOUNT, "complaint_category": "meter", "complaint_description": "Meter problem",
               **data}
    return run(deps, "incidents.open_ticket", context, {"kind": "complaint"}, session_key)


# ---------------------------------------------------------------- references
def test_a_client_reference_is_stable_per_session_and_subject():
    ref = client_reference("ussd:s1", "complaint", "billing", "B-1")
    expected = hashlib.sha256(b"ussd:s1|incidents.open_ticket|complaint|billing|B-1").hexdigest()[:40]
    assert ref == f"cr-{expected}"
    assert client_reference("ussd:s1", "complaint", "meter") == "cr-" + hashlib.sha256(
        b"ussd:s1|incidents.open_ticket|complaint|meter").hexdigest()[:40]
    assert len({ref, client_reference("ussd:s2", "complaint", "billing", "B-1"),
                client_reference("ussd:s1", "outage", "billing", "B-1"),
                client_reference("ussd:s1", "complaint", "meter", "B-1"),
                client_reference("ussd:s1", "complaint", "billing", "B-2"),
                client_reference("ussd:s1", "complaint", "billing")}) == 6


@pytest.mark.parametrize(("kind", "prefix"), [("complaint", "REC"), ("outage", "INC"), ("other", "REC")])
def test_a_local_reference_is_four_characters_of_the_hash_in_the_back_offices_alphabet(kind, prefix):
    value = int(hashlib.sha256(b"cr-abc").hexdigest()[:8], 16)
    chars = ""
    for _ in range(4):
        value, index = divmod(value, 32)
        chars += ALPHABET[index]
    assert local_reference(kind, "cr-abc") == f"{prefix}-{chars}"


@pytest.mark.parametrize(("typed", "reference"), [
    ("rec7k3q", "REC-7K3Q"), ("REC 7K3Q", "REC-7K3Q"), (" rec-7k3q ", "REC-7K3Q"), ("inc-2zzz", "INC-2ZZZ"),
    ("REC-7K3", None), ("REC-7K3QQ", None), ("ABC-7K3Q", None), ("REC-01AB", None), ("REC--7K3Q", None),
    ("xREC-7K3Q", None), ("", None)])
def test_a_reference_is_read_however_the_customer_types_it(typed, reference):
    assert normalise_reference(typed) == reference


# ---------------------------------------------------------------- outages
def outage(outage_id: str, eta_hours: int | None, status: str = "ongoing", zone: str = "DKR-1") -> Outage:
    eta = NOW + timedelta(hours=eta_hours) if eta_hours is not None else None
    return Outage(outage_id, zone, NOW, eta, "cable", status)   # type: ignore[arg-type]


def test_a_known_outage_gives_the_least_optimistic_restoration_time(deps, incidents):
    incidents.outages = [outage("O-1", 2), outage("O-2", 5), outage("O-3", None), outage("O-4", 9, "resolved"),
                         outage("O-5", 12, zone="DKR-2")]
    known = run(deps, "incidents.check_outage", {"zone": "DKR-1", "account_number": ACCOUNT})
    assert (known.outcome, known.data) == ("known", {"outage_id": "O-2",
                                                     "outage_eta": (NOW + timedelta(hours=5)).isoformat()})
    incidents.outages = [outage("O-3", None)]
    known = run(deps, "incidents.check_outage", {"zone": "DKR-1", "account_number": ACCOUNT})
    assert known.data == {"outage_id": "O-3", "outage_eta": None}


def test_no_ongoing_outage_or_the_system_down_goes_on_to_a_report(deps, incidents):
    incidents.outages = [outage("O-4", 9, "resolved")]
    none = run(deps, "incidents.check_outage", {"zone": "DKR-1", "account_number": ACCOUNT, "outage_id": "O-9"})
    assert (none.outcome, none.data) == ("none", {"outage_id": None, "outage_eta": None})
    incidents.down = True
    assert run(deps, "incidents.check_outage", {"zone": "DKR-1", "account_number": ACCOUNT}).outcome == "none"
    assert run(deps, "incidents.check_outage", {"zone": "", "account_number": ACCOUNT}).outcome == "not_found"
    assert run(deps, "incidents.check_outage", {"zone": "DKR-1"}).outcome == "not_found"


def test_an_alert_when_power_is_back_follows_the_outage_or_else_the_zone(deps, engine_db):
    from sqlalchemy import text

    assert run(deps, "incidents.alert_power_back", {"outage_id": "O-2", "zone": "DKR-1"}).outcome == "ok"
    run(deps, "incidents.alert_power_back", {"zone": "DKR-3"}, language="en")
    run(deps, "incidents.alert_power_back", {})
    with make_sessions(engine_db)() as db:      # the alert will speak the language of the conversation
        assert sorted(db.execute(text("select scope, language from subscriptions")).all()) == [
            ("", "fr"), ("DKR-3", "en"), ("O-2", "fr")]
    deps.subscriptions.unsubscribe(NUMBER, "power_back", "")
    assert deps.subscriptions is not None
    assert sorted((s.topic, s.scope, s.channel, s.active) for s in deps.subscriptions.for_user(NUMBER)) == [
        ("power_back", "DKR-3", "sms", True), ("power_back", "O-2", "sms", True)]


def test_an_alert_when_power_is_back_is_an_opt_in_said_on_ussd_sent_by_sms_in_the_consent_history(deps, engine_db):
    """As the app wires it (``app.factory``): the subscriptions are the consent store, whose history agents read."""
    consent = SqlConsent(make_sessions(engine_db))
    wired = replace(deps, subscriptions=consent, consent=consent)
    assert run(wired, "incidents.alert_power_back", {"outage_id": "O-2"}).outcome == "ok"
    [change] = consent.history(NUMBER)
    assert (change.action, change.topic, change.scope, change.channel, change.source, change.delivery) == (
        "opt_in", "power_back", "O-2", "ussd", "menu", "sms")
    assert [(s.topic, s.scope, s.channel, s.active) for s in consent.for_user(NUMBER)] == [
        ("power_back", "O-2", "sms", True)]


# ---------------------------------------------------------------- reports
def test_a_complaint_starts_clean(deps):
    chosen = run(deps, "incidents.choose_category", params={"category": "billing", "description": "Billing dispute"})
    assert chosen.outcome == "ok"
    assert chosen.data == {"complaint_category": "billing", "complaint_description": "Billing dispute",
                           "disputed_bill": None, "complaint_text": None}
    assert run(deps, "incidents.choose_category", params={"category": "meter"}).data["complaint_description"] == "meter"
    with pytest.raises(ValueError, match="unknown complaint category 'fraud'"):
        run(deps, "incidents.choose_category", params={"category": "fraud"})


def test_a_complaint_carries_the_customers_words_then_forgets_them(deps, incidents):
    filed = complain(deps, complaint_text="  Compteur bloque  ")
    assert filed.outcome == "ok" and filed.data["ticket_reference"] == incidents.tickets[0].reference
    assert "complaint_text" in filed.data and filed.data["complaint_text"] is None
    assert incidents.described == "Compteur bloque" and incidents.opened_with["msisdn"] == NUMBER
    complain(deps, "ussd:s2", complaint_category="quality", complaint_text="1")   # "1": no description
    assert incidents.described == "Meter problem"
    complain(deps, "ussd:s3", complaint_category="other")                          # nothing typed at all
    assert incidents.described == "Meter problem"


def test_an_outage_report_is_a_ticket_of_its_own_kind(deps, incidents):
    filed = run(deps, "incidents.open_ticket", {"account_number": ACCOUNT}, {"kind": "outage"})
    assert filed.outcome == "ok"
    [ticket] = incidents.tickets
    assert (ticket.kind, ticket.category, ticket.account_number) == ("outage", "outage", ACCOUNT)
    assert incidents.described == "Power outage"
    run(deps, "incidents.open_ticket", {"account_number": "1000002"}, {"kind": "outage", "description": "Noir"},
        "ussd:s2")
    assert incidents.described == "Noir"


def test_a_billing_dispute_names_its_bill(deps, incidents):
    complain(deps, complaint_category="billing", disputed_bill={"bill_id": "B-7"})
    complain(deps, "ussd:s2", complaint_category="meter", disputed_bill={"bill_id": "B-8"})
    assert [t.bill_id for t in incidents.tickets] == ["B-7", None]


@pytest.mark.parametrize("data", [{"account_number": ""}, {"complaint_category": "fraud"},
                                  {"complaint_category": ""}])
def test_a_report_missing_what_it_needs_is_not_filed(deps, incidents, data):
    assert complain(deps, **data).outcome == "not_found"
    assert incidents.tickets == []


def test_a_report_made_while_the_system_is_down_is_kept_and_forwarded_once(deps, incidents):
    """The planted bug "forwarding a kept complaint not idempotent": a later Confirm in the same session
    must find the forwarded ticket, not open a second one."""
    incidents.down = True
    kept = complain(deps, complaint_text="Mon compteur")
    reference = client_reference("ussd:s1", "complaint", "meter")
    assert (kept.outcome, kept.data["ticket_reference"]) == ("kept", local_reference("complaint", reference))
    assert kept.data["complaint_text"] is None
    again = complain(deps)                                 # the same session confirms again: the same report
    assert (again.outcome, again.data) == ("kept", kept.data)
    other = complain(deps, "ussd:s2")                      # another session: that report, not a new one
    assert (other.outcome, other.data["ticket_reference"]) == ("duplicate", kept.data["ticket_reference"])
    assert deps.pending_tickets is not None
    [waiting] = deps.pending_tickets.due()
    assert (waiting.client_reference, waiting.description, waiting.kind, waiting.category) == (
        reference, "Mon compteur", "complaint", "meter")

    incidents.down = False
    assert resend_pending_tickets(incidents, deps.pending_tickets) == 1
    [ticket] = incidents.tickets
    assert ticket.client_reference == reference
    assert deps.pending_tickets.due() == []
    assert resend_pending_tickets(incidents, deps.pending_tickets) == 0
    confirmed = complain(deps)
    assert (confirmed.outcome, confirmed.data["ticket_reference"]) == ("ok", ticket.reference)
    assert len(incidents.tickets) == 1


def test_forwarding_stops_while_the_system_is_down_and_skips_a_refused_report(deps, incidents):
    incidents.down = True
    complain(deps, "ussd:a")
    complain(deps, "ussd:b", complaint_category="quality")
    complain(deps, "ussd:c", complaint_category="other")
    assert deps.pending_tickets is not None
    assert resend_pending_tickets(incidents, deps.pending_tickets) == 0
    assert len(deps.pending_tickets.due()) == 3
    incidents.down = False
    incidents.refuse = {client_reference("ussd:b", "complaint", "quality")}
    assert resend_pending_tickets(incidents, deps.pending_tickets) == 2
    assert [(t.category, t.status) for t in sorted(deps.pending_tickets.for_user(NUMBER), key=lambda t: t.category)
            ] == [("meter", "sent"), ("other", "sent"), ("quality", "refused")]


def test_an_open_ticket_on_the_same_subject_is_answered_with_its_reference(deps, incidents):
    first = complain(deps)
    assert complain(deps, "ussd:s2").data["ticket_reference"] == first.data["ticket_reference"]
    assert complain(deps, "ussd:s2").outcome == "duplicate"
    # Once resolved, the same subject is a new ticket.
    incidents.tickets[0] = Ticket(**{**{f: getattr(incidents.tickets[0], f) for f in Ticket.__slots__},
                                     "status": "resolved"})
    assert complain(deps, "ussd:s3").outcome == "ok" and len(incidents.tickets) == 2


def test_a_ticket_just_opened_without_an_echoed_reference_is_ours(deps, incidents, monkeypatch):
    opened = incidents.open_ticket
    monkeypatch.setattr(incidents, "open_ticket", lambda **kw: Ticket(
        **{**{f: getattr(opened(**kw), f) for f in Ticket.__slots__}, "client_reference": None}))
    assert complain(deps).outcome == "ok"


# ---------------------------------------------------------------- tracking
def test_the_list_shows_kept_reports_first_then_the_systems_newest_first(deps, incidents):
    assert run(deps, "incidents.list_tickets", {"account_number": ACCOUNT}).outcome == "none"
    assert run(deps, "incidents.list_tickets", {}).outcome == "not_found"
    complain(deps, "ussd:a")
    complain(deps, "ussd:b", complaint_category="quality")
    incidents.down = True
    kept = complain(deps, "ussd:c", complaint_category="other").data["ticket_reference"]
    complain(deps, "ussd:d", account_number="1000002", complaint_category="other")   # another account's
    incidents.down = False
    listed = run(deps, "incidents.list_tickets", {"account_number": ACCOUNT})
    assert listed.outcome == "ok"
    assert listed.data["tickets"] == [
        {"ref": kept, "ticket_kind": "complaint", "ticket_status": "recorded"},
        {"ref": incidents.tickets[1].reference, "ticket_kind": "complaint", "ticket_status": "open"},
        {"ref": incidents.tickets[0].reference, "ticket_kind": "complaint", "ticket_status": "open"}]


def test_a_kept_report_is_shown_as_recorded_until_forwarded_then_as_the_ticket(deps, incidents):
    incidents.down = True
    kept = complain(deps, complaint_category="quality").data["ticket_reference"]
    incidents.down = False
    shown = run(deps, "incidents.find_ticket", {"typed_reference": kept.lower().replace("-", " ")})
    assert shown.outcome == "pending"
    assert {k: v for k, v in shown.data.items() if v is not None} == {
        "t_ref": kept, "t_kind": "complaint", "t_category": "quality", "t_status": "recorded",
        "typed_reference": kept}
    assert deps.pending_tickets is not None
    resend_pending_tickets(incidents, deps.pending_tickets)
    forwarded = run(deps, "incidents.ticket_detail", {"ticket": {"ref": kept}, "account_number": ACCOUNT})
    assert (forwarded.outcome, forwarded.data["t_ref"]) == ("ok", incidents.tickets[0].reference)


def test_a_tickets_detail_shows_its_three_latest_events_newest_first(deps, incidents):
    complain(deps)
    # Recorded out of order (an agent's note arrived late): shown by time, the later recorded first on a tie.
    events = (TicketEvent(NOW, "open", ""), TicketEvent(NOW + timedelta(hours=3), "resolved", ""),
              TicketEvent(NOW + timedelta(hours=1), "in_progress", ""),
              TicketEvent(NOW + timedelta(hours=1), "assigned", ""))
    t = incidents.tickets[0]
    incidents.tickets[0] = Ticket(t.reference, t.kind, t.category, "resolved", t.account_number, t.created_at,
                                  events, t.client_reference)
    shown = run(deps, "incidents.ticket_detail", {"ticket": {"ref": t.reference}, "account_number": ACCOUNT})
    assert shown.outcome == "ok"
    assert shown.data == {
        "t_ref": t.reference, "t_kind": "complaint", "t_category": "meter", "t_status": "resolved",
        "t_created_at": NOW.isoformat(), "t_event_count": 3,
        "ev1_at": (NOW + timedelta(hours=3)).isoformat(), "ev1_status": "resolved",
        "ev2_at": (NOW + timedelta(hours=1)).isoformat(), "ev2_status": "assigned",
        "ev3_at": (NOW + timedelta(hours=1)).isoformat(), "ev3_status": "in_progress"}


def test_someone_elses_or_an_unknown_ticket_says_nothing(deps, incidents):
    complain(deps, account_number="2000001")
    ref = incidents.tickets[0].reference
    for data in ({"typed_reference": ref, "account_number": ACCOUNT}, {"typed_reference": "REC-ZZZZ"},
                 {"typed_reference": "not a reference"}):
        unknown = run(deps, "incidents.find_ticket", data)
        assert unknown.outcome == "unknown"
        assert all(v is None for k, v in unknown.data.items() if k != "typed_reference")
        assert "t_ref" in unknown.data
    own = run(deps, "incidents.find_ticket", {"typed_reference": ref, "accounts": [{"account_number": "2000001"}]})
    assert own.outcome == "ok"
    assert run(deps, "incidents.ticket_detail", {"ticket": "REC-2222"}).outcome == "unknown"
    assert run(deps, "incidents.ticket_detail", {"ticket": {"ref": ""}}).outcome == "unknown"


def test_a_kept_outage_report_is_tracked_under_its_inc_reference(deps, incidents):
    incidents.down = True
    kept = run(deps, "incidents.open_ticket", {"account_number": ACCOUNT}, {"kind": "outage"})
    assert kept.data["ticket_reference"].startswith("INC-")
    incidents.down = False
    shown = run(deps, "incidents.find_ticket", {"typed_reference": kept.data["ticket_reference"]})
    assert (shown.outcome, shown.data["t_ref"], shown.data["t_kind"], shown.data["t_category"]) == (
        "pending", kept.data["ticket_reference"], "outage", "outage")
    listed = run(deps, "incidents.list_tickets", {"account_number": ACCOUNT})
    assert listed.data["tickets"] == [{"ref": kept.data["ticket_reference"], "ticket_kind": "outage",
                                       "ticket_status": "recorded"}]


def test_a_forwarded_report_is_listed_once_as_the_systems_ticket(deps, incidents):
    incidents.down = True
    complain(deps)
    incidents.down = False
    assert deps.pending_tickets is not None
    resend_pending_tickets(incidents, deps.pending_tickets)
    listed = run(deps, "incidents.list_tickets", {"account_number": ACCOUNT})
    assert listed.data["tickets"] == [{"ref": incidents.tickets[0].reference, "ticket_kind": "complaint",
                                       "ticket_status": "open"}]


def test_an_account_the_incident_system_does_not_know_has_no_requests(deps, incidents):
    incidents.unknown_accounts = {ACCOUNT}
    assert run(deps, "incidents.list_tickets", {"account_number": ACCOUNT}).outcome == "none"


def test_an_older_kept_report_and_a_refused_one_are_still_found_by_their_reference(deps, incidents):
    incidents.down = True
    older = complain(deps, "ussd:a").data["ticket_reference"]
    complain(deps, "ussd:b", complaint_category="quality")
    incidents.down = False
    assert run(deps, "incidents.find_ticket", {"typed_reference": older}).outcome == "pending"
    incidents.refuse = {client_reference("ussd:a", "complaint", "meter")}
    assert deps.pending_tickets is not None
    resend_pending_tickets(incidents, deps.pending_tickets)
    refused = run(deps, "incidents.find_ticket", {"typed_reference": older})
    assert (refused.outcome, refused.data["t_ref"], refused.data["t_status"]) == ("pending", older, "recorded")


def test_a_kept_billing_dispute_is_forwarded_with_everything_the_customer_said(deps, incidents):
    incidents.down = True
    complain(deps, complaint_category="billing", disputed_bill={"bill_id": "B-7"}, complaint_text="Trop cher")
    incidents.down = False
    assert deps.pending_tickets is not None
    assert resend_pending_tickets(incidents, deps.pending_tickets) == 1
    assert incidents.opened_with == {"kind": "complaint", "category": "billing", "account_number": ACCOUNT,
                                     "msisdn": NUMBER, "description": "Trop cher",
                                     "client_reference": client_reference("ussd:s1", "complaint", "billing", "B-7"),
                                     "bill_id": "B-7"}


def test_a_refused_report_keeps_why_for_the_agents(deps, incidents, engine_db):
    from sqlalchemy import text

    incidents.down = True
    complain(deps)
    incidents.down, incidents.refuse = False, {client_reference("ussd:s1", "complaint", "meter")}
    assert deps.pending_tickets is not None
    resend_pending_tickets(incidents, deps.pending_tickets)
    with make_sessions(engine_db)() as db:
        assert db.execute(text("select refusal from pending_tickets")).scalar_one() == "Rejected: invalid ticket"


def test_a_kept_dispute_of_the_same_bill_is_the_same_report_whatever_was_kept_after_it(deps, incidents):
    incidents.down = True
    first = complain(deps, "ussd:a", complaint_category="billing", disputed_bill={"bill_id": "B-1"})
    complain(deps, "ussd:b", complaint_category="quality")          # kept after it
    again = complain(deps, "ussd:c", complaint_category="billing", disputed_bill={"bill_id": "B-1"})
    assert (again.outcome, again.data["ticket_reference"]) == ("duplicate", first.data["ticket_reference"])
    other = complain(deps, "ussd:d", complaint_category="billing", disputed_bill={"bill_id": "B-2"})
    assert other.outcome == "kept"
    assert deps.pending_tickets is not None and len(deps.pending_tickets.due()) == 3


def test_an_open_ticket_an_agent_opened_on_the_subject_is_someone_elses(deps, incidents):
    incidents.tickets.append(Ticket("REC-AGNT", "complaint", "meter", "open", ACCOUNT, NOW))
    found = complain(deps)
    assert (found.outcome, found.data["ticket_reference"]) == ("duplicate", "REC-AGNT")


def test_a_second_outage_report_while_down_gets_the_first_ones_inc_reference(deps, incidents):
    incidents.down = True
    first = run(deps, "incidents.open_ticket", {"account_number": ACCOUNT}, {"kind": "outage"}, "ussd:a")
    again = run(deps, "incidents.open_ticket", {"account_number": ACCOUNT}, {"kind": "outage"}, "ussd:b")
    assert (again.outcome, again.data["ticket_reference"]) == ("duplicate", first.data["ticket_reference"])
    assert again.data["ticket_reference"].startswith("INC-")
