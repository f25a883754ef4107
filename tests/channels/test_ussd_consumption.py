"""Transcripts of the consumption screen: last reading, 7 and 30 days against the period before,
the next bill's estimate (postpaid) or the remaining credit (prepaid).

The back office seeds 90 days of hourly readings ending at seed time, so the expected screens
are built from what its metering API answers, not from fixed numbers.

Seed time and now are fixed, never the wall clock: the demo data is seeded at 23:30 on 19 March 2027,
and the engine and the back office share ``product_clock``, half a minute before the billing cycle
ends at midnight (the 20th is the billing day), or half a minute into the next cycle.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import flask
import pytest
import requests

from dialogs.tariffs import estimate, load_tariff
from tests.support.backoffice import seed_template
from tests.support.clock import SettableClock

SEEDED_AT = datetime(2027, 3, 19, 23, 30, tzinfo=UTC)
CYCLE_LAST_SECONDS = datetime(2027, 3, 19, 23, 59, 30, tzinfo=UTC)   # the cycle of 20 Feb: 28 days begun
CYCLE_FIRST_SECONDS = datetime(2027, 3, 20, 0, 0, 30, tzinfo=UTC)    # the cycle of 20 March: 1 day begun
BOTH_SIDES_OF_THE_BILLING_DAY = pytest.mark.parametrize(
    "product_clock", [CYCLE_LAST_SECONDS, CYCLE_FIRST_SECONDS], ids=["19th-23:59:30", "20th-00:00:30"],
    indirect=True)


@pytest.fixture(scope="module")
def backoffice_seeded_at() -> datetime:
    return SEEDED_AT


@pytest.fixture(scope="module")
def seeded_backoffice_db(tmp_path_factory: pytest.TempPathFactory, backoffice_seeded_at: datetime) -> Path:
    return seed_template(tmp_path_factory, backoffice_seeded_at)


@pytest.fixture
def product_clock(request: pytest.FixtureRequest) -> SettableClock:
    return SettableClock(getattr(request, "param", CYCLE_LAST_SECONDS))


def metering(url: str, path: str) -> dict:
    response = requests.get(f"{url}/api/v1/meters/{path}", timeout=5)
    response.raise_for_status()
    return response.json()


def kwh(value: str, language: str) -> str:
    """``9615.11`` -> ``9 615,1 kWh`` (fr) / ``9,615.1 kWh`` (en); no decimal when it is zero."""
    whole, _, tenth = f"{Decimal(value).quantize(Decimal('0.1'), ROUND_HALF_UP):,.1f}".partition(".")
    whole = whole.replace(",", " " if language == "fr" else ",")
    return f"{whole}{',' if language == 'fr' else '.'}{tenth} kWh" if tenth != "0" else f"{whole} kWh"


def money(value: Decimal, language: str) -> str:
    return f"{value:,.0f}".replace(",", " " if language == "fr" else ",") + " FCFA"


def change(period: dict) -> str:
    current, previous = Decimal(period["kwh"]), Decimal(period["previous_kwh"])
    percent = ((current - previous) * 100 / previous).quantize(Decimal(1), ROUND_HALF_UP)
    return "0" if percent == 0 else f"{percent:+}"


def cycle_start(now: datetime) -> datetime:
    """The billing cycle's first day: the 20th (the day bills are issued) of this month or the one before."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now.day >= 20:
        return first.replace(day=20)
    return (first - timedelta(days=1)).replace(day=20)


def month_bill(url: str, meter: str, now: datetime) -> Decimal:
    """This billing cycle so far (whole days) extrapolated to the cycle, priced with the shipped tariff."""
    start = cycle_start(now)
    end = cycle_start(start + timedelta(days=40))
    days = max(1, math.ceil((now - start) / timedelta(days=1)))
    so_far = Decimal(metering(url, f"{meter}/consumption?days={days}")["kwh"])
    cycle_kwh = (so_far * (end - start).days / days).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return estimate(cycle_kwh, load_tariff("config/tariffs.yaml")).total


def bills(url: str, account: str) -> list[dict]:
    response = requests.get(f"{url}/api/v1/accounts/{account}/bills", params={"limit": 6}, timeout=5)
    response.raise_for_status()
    return response.json()["bills"]


def reading_time(period: dict) -> str:
    at = datetime.fromisoformat(period["last_reading"]["at"])  # Dakar is UTC
    return at.strftime("%d/%m %H:%M")


@BOTH_SIDES_OF_THE_BILLING_DAY
def test_postpaid_customer_in_french_sees_the_back_office_figures_and_a_bill_estimate(phone, backoffice_url,
                                                                                      product_clock):
    p = phone("+221770000001")
    p.dial()
    screen = p.answer("2")
    week, month = (metering(backoffice_url, f"MTR-1000001/consumption?days={d}") for d in (7, 30))
    assert screen == (
        f"CON Relevé {reading_time(week)}: {kwh(week['last_reading']['index_kwh'], 'fr')}\n"
        f"7 j: {kwh(week['kwh'], 'fr')}, {change(week)}% vs 7 j préc.\n"
        f"30 j: {kwh(month['kwh'], 'fr')}, {change(month)}% vs 30 j préc.\n"
        f"Prochaine facture estimée: {money(month_bill(backoffice_url, 'MTR-1000001', product_clock.now), 'fr')}\n"
        "0. Retour 00. Accueil")
    assert p.answer("0").startswith("CON ElecNet - 1000001\n1. Solde et factures")


@BOTH_SIDES_OF_THE_BILLING_DAY
def test_business_customer_in_english_sees_the_chosen_account(phone, backoffice_url, product_clock):
    p = phone("+221770000002")
    assert p.dial().startswith("CON Choose an account:")
    p.answer("2")
    screen = p.answer("2")
    week, month = (metering(backoffice_url, f"MTR-2000002/consumption?days={d}") for d in (7, 30))
    assert screen == (
        f"CON Reading {reading_time(week)}: {kwh(week['last_reading']['index_kwh'], 'en')}\n"
        f"7 d: {kwh(week['kwh'], 'en')}, {change(week)}% vs prev. 7 d\n"
        f"30 d: {kwh(month['kwh'], 'en')}, {change(month)}% vs prev. 30 d\n"
        f"Next bill (est.): {money(month_bill(backoffice_url, 'MTR-2000002', product_clock.now), 'en')}\n"
        "0. Back 00. Home")


def test_prepaid_customer_sees_the_credit_left_instead_of_a_bill(phone, backoffice_url):
    p = phone("+221770000003")
    assert p.dial().startswith("CON ElecNet - 3000001")
    screen = p.answer("2")
    week, month = (metering(backoffice_url, f"MTR-3000001/consumption?days={d}") for d in (7, 30))
    credit = metering(backoffice_url, "MTR-3000001/credit")
    assert credit["credit_kwh"] == "42.5"
    assert screen == (
        f"CON Relevé {reading_time(week)}: {kwh(week['last_reading']['index_kwh'], 'fr')}\n"
        f"7 j: {kwh(week['kwh'], 'fr')}, {change(week)}% vs 7 j préc.\n"
        f"30 j: {kwh(month['kwh'], 'fr')}, {change(month)}% vs 30 j préc.\n"
        "Crédit restant: 42,5 kWh\n"
        "0. Retour 00. Accueil")


def test_the_shortcut_opens_the_consumption_screen(phone):
    p = phone("+221770000001")
    assert p.dial("2").startswith("CON Relevé ")


# ---------------------------------------------------------------- figures that add up
def screen_money(screen: str) -> Decimal:
    """The amount on the screen's estimate line (``6 176 FCFA`` / ``6,176 FCFA``)."""
    line = next(line for line in screen.splitlines() if "FCFA" in line)
    return Decimal("".join(ch for ch in line.rpartition(":")[2] if ch.isdigit()))


def test_every_seeded_bill_is_its_kwh_priced_with_the_tariff(backoffice_url):
    tariff = load_tariff("config/tariffs.yaml")
    for account in ("1000001", "2000001", "2000002", "2000003"):
        for bill in bills(backoffice_url, account):
            priced = estimate(Decimal(bill["kwh"]), tariff).total
            assert abs(priced - Decimal(bill["amount"])) <= Decimal(bill["amount"]) / 200, (account, bill)


def test_the_estimate_agrees_with_the_customers_recent_bills(phone, backoffice_url):
    """Within 30 % of the range of the last six bills: the same tariff, the same billing cycle."""
    for number, account, choose in (("+221770000001", "1000001", ()), ("+221770000002", "2000002", ("2",))):
        p = phone(number)
        p.dial()
        for choice in choose:
            p.answer(choice)
        estimated = screen_money(p.answer("2"))
        recent = [Decimal(b["amount"]) for b in bills(backoffice_url, account)]
        assert min(recent) * Decimal("0.7") <= estimated <= max(recent) * Decimal("1.3"), (account, estimated,
                                                                                           recent)


def test_the_demo_meters_show_real_variation(backoffice_url):
    """Busier and quieter days and months: some week or month moves by 5 % or more."""
    changes = {change(metering(backoffice_url, f"MTR-{account}/consumption?days={days}"))
               for account in ("1000001", "2000001", "2000002", "2000003", "3000001") for days in (7, 30)}
    assert max(abs(int(c)) for c in changes) >= 5, changes
    assert len(changes) >= 4, changes


# ---------------------------------------------------------------- back office down



def test_back_office_down_gives_a_polite_screen(stoppable):
    p, stop_backoffice = stoppable
    assert p.dial().startswith("CON ElecNet - 1000001")
    stop_backoffice()
    assert p.answer("2") == ("CON Vos relevés sont indisponibles pour le moment. Merci de réessayer plus tard.\n"
                             "0. Retour 00. Accueil")
    assert p.answer("0").startswith("CON ElecNet - 1000001")


# ---------------------------------------------------------------- meters with little history
def forget_readings(backoffice_app: flask.Flask, meter: str, older_than_days: int | None = None,
                    now: datetime = CYCLE_LAST_SECONDS) -> None:
    """Delete a demo meter's readings (all of them, or those older than N days) in the stand-in's database."""
    from datetime import timedelta

    from sqlalchemy import delete

    from backoffice.models import Reading

    condition = [Reading.meter_id == meter]
    if older_than_days is not None:
        cutoff = now.replace(tzinfo=None) - timedelta(days=older_than_days)
        condition.append(Reading.at < cutoff)
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        session.execute(delete(Reading).where(*condition))


def test_without_a_previous_period_the_percentages_are_left_out(phone, backoffice_url, backoffice_app,
                                                                product_clock):
    forget_readings(backoffice_app, "MTR-1000001", older_than_days=20, now=product_clock.now)
    p = phone("+221770000001")
    p.dial()
    screen = p.answer("2")
    week, month = (metering(backoffice_url, f"MTR-1000001/consumption?days={d}") for d in (7, 30))
    assert Decimal(month["previous_kwh"]) == 0
    assert screen == (
        f"CON Relevé {reading_time(week)}: {kwh(week['last_reading']['index_kwh'], 'fr')}\n"
        f"7 j: {kwh(week['kwh'], 'fr')}\n"
        f"30 j: {kwh(month['kwh'], 'fr')}\n"
        f"Prochaine facture estimée: {money(month_bill(backoffice_url, 'MTR-1000001', product_clock.now), 'fr')}\n"
        "0. Retour 00. Accueil")


def test_a_meter_that_never_reported(phone, backoffice_app):
    forget_readings(backoffice_app, "MTR-3000001")
    p = phone("+221770000003")
    p.dial()
    assert p.answer("2") == ("CON Votre compteur n'a encore transmis aucun relevé. Réessayez dans quelques jours.\n"
                             "0. Retour 00. Accueil")
