"""Promises kept: what a screen says will arrive by SMS reaches the (fake, loopback) Africa's
Talking API once the worker runs: "SMS me when power is back" answered by a restoration declared
in the back office, zone broadcasts to subscribed (and only subscribed) customers, customer events
from the back office's feed, a USSD payment's receipt and a prepaid token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from app import worker
from app.factory import build_dispatcher, build_notice_relay
from app.settings import Settings
from app.storage import SqlConsent, SqlPreferences, make_sessions
from app.storage.models import OutboxEventRow
from backoffice.bill_run import issue_bill
from backoffice.notices import publish
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.polling import until
from tests.support.ports import closed_port
from tests.support.services import serve_wsgi

PIN = "2468"



@pytest.fixture
def settings(settings: Settings, provider: FakeAfricasTalking, engine_port: int) -> Settings:
    """The suite's settings with SMS through the fake provider; quiet hours off (tests run at any hour)."""
    return replace(settings, at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   quiet_hours="", public_base_url=f"http://127.0.0.1:{engine_port}")


@pytest.fixture
def served(app: Flask, engine_port: int) -> Iterator[str]:
    with serve_wsgi(app, engine_port) as url:
        yield url


@pytest.fixture
def consent(settings: Settings) -> SqlConsent:
    return SqlConsent(make_sessions(settings.database_url))


def deliver(settings: Settings) -> dict[str, int]:
    """One pass of ``python -m app worker``: the feed, then the outbox."""
    return worker.run_once(settings)


# ---------------------------------------------------------------- power back
def test_sms_me_when_power_is_back_then_a_restoration_in_the_back_office(
        phone: Callable[[str], UssdPhone], settings: Settings, backoffice_url: str,
        provider: FakeAfricasTalking) -> None:
    p: UssdPhone = phone("+221770000002")
    p.dial()
    p.answer("2")
    p.answer("4")
    assert p.answer("1").startswith("CON An outage is already known in your area (THIES-NORD)")
    assert p.answer("1").startswith("CON You will be told by SMS when power is back in your area (THIES-NORD).")
    assert deliver(settings).get("notifications_sent", 0) == 0             # nothing yet: the power is still off

    restored = requests.post(f"{backoffice_url}/api/v1/zones/THIES-NORD/restore", timeout=5)
    assert restored.status_code == 200, restored.text
    passed = deliver(settings)
    assert (passed.get("notices_queued", 0), passed.get("notifications_sent", 0)) == (1, 1)
    assert provider.messages_to("+221770000002") == [
        "ElecNet: power is back in zone THIES-NORD. Thank you for your patience."]
    assert deliver(settings).get("notifications_sent", 0) == 0             # once
    assert len(provider.sent) == 1


# ---------------------------------------------------------------- zone broadcasts
def test_a_zone_broadcast_reaches_subscribed_customers_only_once_each_in_their_language(
        settings, backoffice_url, provider, consent):
    subscribed_fr, subscribed_en, other_zone, opted_out, stopped = (
        "+221771000001", "+221771000002", "+221771000003", "+221771000004", "+221771000005")
    consent.opt_in(subscribed_fr, "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    consent.opt_in(subscribed_en, "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    SqlPreferences(make_sessions(settings.database_url)).set_language(subscribed_en, "en")
    consent.opt_in(subscribed_en, "power_back", "DKR-PLATEAU", channel="ussd", source="menu")   # both topics
    consent.opt_in(other_zone, "outage_zone", "THIES-NORD", channel="ussd", source="menu")
    consent.opt_in(opted_out, "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    consent.opt_out(opted_out, "outage_zone", "DKR-PLATEAU", channel="web", source="preferences")
    consent.opt_in(stopped, "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    consent.stop_all(stopped, channel="sms", source="keyword STOP")

    declared = requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/outage",
                             json={"eta": "2026-11-26T18:30:00Z", "cause": "transformer"}, timeout=5)
    assert declared.status_code == 201, declared.text
    assert deliver(settings).get("notifications_sent", 0) == 2
    assert provider.messages_to(subscribed_fr) == [(
        "ElecNet: coupure de courant dans la zone DKR-PLATEAU. Rétablissement prévu: 26/11 18:30. "
        "Veuillez nous excuser pour le désagrément.")]
    assert provider.messages_to(subscribed_en) == [
        "ElecNet: power cut in zone DKR-PLATEAU. Expected back: 26/11 18:30. We apologise for the inconvenience."]

    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/restore", timeout=5).raise_for_status()
    assert deliver(settings).get("notifications_sent", 0) == 2
    assert provider.messages_to(subscribed_en)[1:] == ["ElecNet: power is back in zone DKR-PLATEAU. Thank you for your patience."]
    assert len(provider.messages_to(subscribed_fr)) == 2
    for never in (other_zone, opted_out, stopped):
        assert provider.messages_to(never) == []
    # "Power is back" was answered: that subscription ended; the outage alerts stay on.
    assert [s.topic for s in consent.for_user(subscribed_en)] == ["outage_zone"]


CUT = "ElecNet: coupure de courant dans la zone DKR-PLATEAU. Nos équipes sont sur place. Veuillez nous excuser pour le désagrément."
BACK = "ElecNet: le courant est rétabli dans la zone DKR-PLATEAU. Merci de votre patience."


def outbox_of(settings: Settings, msisdn: str) -> list[tuple[str, str, str | None]]:
    """(kind, status, last error) of each outbox row of ``msisdn``, oldest first, as agents see them."""
    with make_sessions(settings.database_url)() as db:
        return [(r.kind, r.status, r.last_error) for r in db.scalars(
            select(OutboxEventRow).where(OutboxEventRow.msisdn == msisdn).order_by(OutboxEventRow.id))]


def test_power_back_is_not_sent_when_the_outage_is_declared_again_before_the_worker_sends(
        settings, backoffice_url, provider, consent):
    consent.opt_in("+221771000001", "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/outage", timeout=5).raise_for_status()
    deliver(settings)
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/restore", timeout=5).raise_for_status()
    assert build_notice_relay(settings, make_sessions(settings.database_url)).run_once() == 1   # queued, not sent
    # The power goes off again before the worker's next delivery pass.
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/outage", timeout=5).raise_for_status()
    deliver(settings)
    assert provider.messages_to("+221771000001") == [CUT, CUT]
    assert outbox_of(settings, "+221771000001")[1] == (
        "power_restored", "suppressed", "suppressed: outage ongoing again in zone DKR-PLATEAU")
    # Restored for real this time: that one goes.
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/restore", timeout=5).raise_for_status()
    deliver(settings)
    assert provider.messages_to("+221771000001") == [CUT, CUT, BACK]


def test_sms_me_when_power_is_back_still_answers_after_a_restoration_withdrawn_before_the_send(
        phone: Callable[[str], UssdPhone], settings: Settings, backoffice_url: str,
        provider: FakeAfricasTalking) -> None:
    p: UssdPhone = phone("+221770000002")
    p.dial()
    p.answer("2")
    p.answer("4")
    p.answer("1")
    assert p.answer("1").startswith("CON You will be told by SMS when power is back in your area (THIES-NORD).")
    requests.post(f"{backoffice_url}/api/v1/zones/THIES-NORD/restore", timeout=5).raise_for_status()
    assert build_notice_relay(settings, make_sessions(settings.database_url)).run_once() == 1   # queued, not sent
    requests.post(f"{backoffice_url}/api/v1/zones/THIES-NORD/outage", timeout=5).raise_for_status()
    deliver(settings)
    assert provider.messages_to("+221770000002") == []          # the power is off again: not "power is back"
    assert outbox_of(settings, "+221770000002")[0] == (
        "power_restored", "suppressed",
        "suppressed: outage ongoing again in zone THIES-NORD; the request to be told when power is back is kept")
    # The real restoration answers the customer's request after all.
    requests.post(f"{backoffice_url}/api/v1/zones/THIES-NORD/restore", timeout=5).raise_for_status()
    deliver(settings)
    assert provider.messages_to("+221770000002") == [
        "ElecNet: power is back in zone THIES-NORD. Thank you for your patience."]
    deliver(settings)
    assert len(provider.messages_to("+221770000002")) == 1     # once


@pytest.mark.parametrize("product_clock", [datetime(2026, 11, 26, 10, 0, tzinfo=UTC)], indirect=True)
def test_power_back_waits_while_the_back_office_cannot_say_the_zone_is_back(
        settings, backoffice_url, provider, consent, product_clock):
    consent.opt_in("+221771000001", "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/outage", timeout=5).raise_for_status()
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/restore", timeout=5).raise_for_status()
    sessions = make_sessions(settings.database_url)
    assert build_notice_relay(settings, sessions).run_once() == 2
    with sessions() as db:                                          # queued on the product's clock
        assert {m.replace(tzinfo=UTC) for m in db.scalars(select(OutboxEventRow.created_at))} == {product_clock()}
    unreachable = replace(settings, backoffice_url=f"http://127.0.0.1:{closed_port()}", backend_retries=0)
    passed = build_dispatcher(unreachable, sessions).run_once()
    assert (passed.sent, passed.retried) == (1, 1)                  # the outage notice goes, power back waits
    assert provider.messages_to("+221771000001") == [CUT]
    assert outbox_of(settings, "+221771000001")[1] == (
        "power_restored", "pending", "incidents: cannot check zone DKR-PLATEAU is back")
    product_clock.advance(seconds=5)                                # its next try
    assert build_dispatcher(settings, sessions).run_once().sent == 1
    assert provider.messages_to("+221771000001") == [CUT, BACK]


# ---------------------------------------------------------------- customer events
def test_customer_events_from_the_feed_respect_opt_in_and_stop(settings, backoffice_app, provider, consent):
    consent.opt_in("+221770000001", "bill_issued", "1000001", channel="ussd", source="menu")
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        publish(session, "bill_issued", msisdn="+221770000001", account_number="1000001", amount="12500",
                due_date="2026-12-15")
        publish(session, "bill_issued", msisdn="+221770000009", account_number="1000009", amount="800",
                due_date="2026-12-15")                                      # never opted in
        publish(session, "ticket_status", msisdn="+221770000003", reference="REC-7K3M", status="resolved")
        publish(session, "deferral_approved", msisdn="+221770000004", account_number="1000004",
                instalments=3, instalment_amount="5000")
        publish(session, "low_credit", msisdn="+221770000003", account_number="3000001", credit="4.5")
    consent.stop_all("+221770000004", channel="sms", source="keyword STOP")
    passed = deliver(settings)
    assert passed.get("notifications_sent", 0) == 2
    assert provider.messages_to("+221770000001") == [
        "ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. Payez par *123#."]
    [ticket] = provider.messages_to("+221770000003")             # low credit: not opted in
    assert ticket.startswith("ElecNet: votre demande REC-7K3M est maintenant:")
    assert provider.messages_to("+221770000009") == provider.messages_to("+221770000004") == []


# ---------------------------------------------------------------- payments
def _approve(backoffice_url: str, screen: str) -> None:
    found = re.search(r"(PAY-[0-9A-F]{16})$", screen)
    assert found, screen
    requests.post(f"{backoffice_url}/api/v1/payments/{found.group(1)}/approve", timeout=5).raise_for_status()


def _until(check: Callable[[], Any], seconds: float = 8.0) -> Any:
    value = until(check, seconds)
    assert value, "condition not met in time"
    return value


def _receipts(settings: Settings, provider: FakeAfricasTalking, number: str) -> list[str]:
    deliver(settings)
    return provider.messages_to(number)


def test_a_ussd_payment_receipt_reaches_the_sms_provider(phone, served, settings, backoffice_url, provider):
    p = phone("+221770000001")
    p.dial("3")
    p.answer("1")                         # pay the whole balance
    p.answer("1")                         # Orange Money
    p.answer("1")                         # confirm
    p.answer("5500")                      # a first PIN: the amount of the last bill first
    p.answer(PIN)
    end = p.answer(PIN)
    assert end.startswith("END ") and "SMS" in end
    _approve(backoffice_url, end)
    [receipt] = _until(lambda: [m for m in _receipts(settings, provider, "+221770000001")
                                if m.startswith("ElecNet: paiement de")])
    assert re.fullmatch(r"ElecNet: paiement de 12 500 FCFA confirmé pour le compte 1000001\. Réf\. MM\w+\. Merci\.", receipt), receipt


def test_a_prepaid_token_arrives_by_sms(app, phone, served, settings, backoffice_url, provider):
    app.extensions["parts"]["deps"].pins.set_pin("+221770000003", PIN)
    p = phone("+221770000003")
    p.dial("3")
    p.answer("1")                         # buy credit
    p.answer("2000")
    p.answer("2")                         # Wave (the demo wallet that holds 20 000)
    p.answer("1")                         # confirm
    end = p.answer(PIN)
    assert "SMS" in end
    _approve(backoffice_url, end)
    [sms] = _until(lambda: _receipts(settings, provider, "+221770000003"))
    assert re.fullmatch(r"ElecNet: achat de 2 000 FCFA, compteur du compte 3000001\. Code à saisir au compteur: \d{4}( \d{4}){4}\. "
                        r"Réf\. MM\w+\.", sms), sms


def test_the_app_itself_still_starts(app: Flask) -> None:
    assert app.test_client().get("/healthz").status_code == 200


# ---------------------------------------------------------------- back-office facts -> SMS
def test_an_agent_moving_a_ticket_tells_the_customer(settings, backoffice_url, provider):
    opened = requests.post(f"{backoffice_url}/api/v1/tickets", json={
        "kind": "complaint", "category": "billing", "account_number": "1000001", "msisdn": "+221770000001",
        "description": "bill too high", "client_reference": "test-ticket-1"}, timeout=5)
    assert opened.status_code == 201, opened.text
    reference = opened.json()["reference"]
    moved = requests.post(f"{backoffice_url}/api/v1/tickets/{reference}/status", json={"status": "in_progress"},
                          timeout=5)
    assert moved.status_code == 200, moved.text
    deliver(settings)
    assert provider.messages_to("+221770000001") == [f"ElecNet: votre demande {reference} est maintenant: en cours."]


def test_an_approved_deferral_is_confirmed_by_sms(settings, backoffice_url, provider):
    granted = requests.post(f"{backoffice_url}/api/v1/accounts/2000002/arrangements",
                            json={"kind": "instalments", "months": 3}, headers={"Idempotency-Key": "arr-1"}, timeout=5)
    assert granted.status_code == 201, granted.text
    first = granted.json()["schedule"][0]
    deliver(settings)
    day = "/".join(reversed(first["due_on"].split("-")))
    [sms] = provider.messages_to("+221770000002")
    assert sms == ("ElecNet: your payment plan for account 2000002 is approved: 3 instalments, the first of "
                   f"{int(first['amount']):,} FCFA due by {day}.")


def test_prepaid_credit_running_low_on_the_meter_feed_is_told_once(settings, backoffice_url, provider, consent):
    consent.opt_in("+221770000003", "low_credit", "3000001", channel="ussd", source="menu")
    latest = requests.get(f"{backoffice_url}/api/v1/meters/MTR-3000001/readings/latest", timeout=5).json()
    at = datetime.fromisoformat(latest["at"])
    index = Decimal(latest["index_kwh"])
    _until(lambda: datetime.now(UTC) - at > timedelta(seconds=2.5))    # readings are never in the future
    for seconds, used in ((1, 45), (2, 46)):       # the top-up's 42.5 kWh used up, then a little more
        posted = requests.post(f"{backoffice_url}/api/v1/readings", json={"readings": [
            {"meter_id": "MTR-3000001", "at": (at + timedelta(seconds=seconds)).isoformat(),
             "index_kwh": str(index + used)}]}, timeout=5)
        assert posted.json()["accepted"] == 1, posted.text
    deliver(settings)
    assert provider.messages_to("+221770000003") == [
        "ElecNet: crédit faible sur le compteur du compte 3000001: 0 kWh restants. Rechargez par *123#."]


def test_an_agent_resolving_one_outage_answers_its_power_back_alerts(settings, backoffice_url, provider, consent):
    consent.subscribe("+221770000002", "power_back", "OUT-SEED0001", language="en")
    resolved = requests.post(f"{backoffice_url}/api/v1/outages/OUT-SEED0001/resolve", timeout=5)
    assert resolved.status_code == 200, resolved.text
    requests.post(f"{backoffice_url}/api/v1/outages/OUT-SEED0001/resolve", timeout=5)   # idempotent: no 2nd SMS
    deliver(settings)
    assert provider.messages_to("+221770000002") == [
        "ElecNet: power is back in zone THIES-NORD. Thank you for your patience."]


def test_a_bill_issued_in_the_back_office_reaches_customers_with_bill_alerts(settings, backoffice_app, provider,
                                                                            consent):
    consent.opt_in("+221770000001", "bill_issued", "1000001", channel="ussd", source="menu")
    sessions = backoffice_app.extensions["backoffice"].sessions
    issue_bill(sessions, "1000001", Decimal(9800), kwh=Decimal(61), due=date(2027, 1, 15), period="2026-12")
    issue_bill(sessions, "2000002", Decimal(4100), kwh=Decimal(20), due=date(2027, 1, 15), period="2026-12")
    deliver(settings)
    assert provider.messages_to("+221770000001") == [
        "ElecNet: nouvelle facture pour le compte 1000001: 9 800 FCFA, à payer avant le 15/01/2027. Payez par *123#."]
    assert provider.messages_to("+221770000002") == []           # no bill alerts chosen
