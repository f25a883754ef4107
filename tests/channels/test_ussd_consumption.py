"""Transcripts of the consumption screen: last reading, 7 and 30 days against the period before,
this month's bill estimate (postpaid) or the remaining credit (prepaid).

The back office seeds 90 days of hourly readings ending at seed time, so the expected screens
are built from what its metering API answers, not from fixed numbers.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import flask
import requests

from dialogs.tariffs import estimate, load_tariff


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


def month_bill(url: str, meter: str) -> Decimal:
    """This month so far (whole days) extrapolated to the month, priced with the shipped tariff."""
    now = datetime.now(UTC)
    days = now.day          # the days begun since the 1st
    so_far = Decimal(metering(url, f"{meter}/consumption?days={days}")["kwh"])
    month_kwh = (so_far * calendar.monthrange(now.year, now.month)[1] / days).quantize(Decimal("0.1"),
                                                                                        ROUND_HALF_UP)
    return estimate(month_kwh, load_tariff("config/tariffs.yaml")).total


def reading_time(period: dict) -> str:
    at = datetime.fromisoformat(period["last_reading"]["at"])  # Dakar is UTC
    return at.strftime("%d/%m %H:%M")


def test_postpaid_customer_in_french_sees_the_back_office_figures_and_a_bill_estimate(phone, backoffice_url):
    p = phone("+221770000001")
    p.dial()
    screen = p.answer("2")
    week, month = (metering(backoffice_url, f"MTR-1000001/consumption?days={d}") for d in (7, 30))
    assert screen == (
        f"CON Relevé {reading_time(week)}: {kwh(week['last_reading']['index_kwh'], 'fr')}\n"
        f"7 j: {kwh(week['kwh'], 'fr')}, {change(week)}% vs 7 j préc.\n"
        f"30 j: {kwh(month['kwh'], 'fr')}, {change(month)}% vs 30 j préc.\n"
        f"Facture du mois estimée: {money(month_bill(backoffice_url, 'MTR-1000001'), 'fr')}\n"
        "0. Retour 00. Accueil")
    assert p.answer("0").startswith("CON ElecNet - 1000001\n1. Solde et factures")


def test_business_customer_in_english_sees_the_chosen_account(phone, backoffice_url):
    p = phone("+221770000002")
    assert p.dial().startswith("CON Choose an account:")
    p.answer("2")
    screen = p.answer("2")
    week, month = (metering(backoffice_url, f"MTR-2000002/consumption?days={d}") for d in (7, 30))
    assert screen == (
        f"CON Reading {reading_time(week)}: {kwh(week['last_reading']['index_kwh'], 'en')}\n"
        f"7 d: {kwh(week['kwh'], 'en')}, {change(week)}% vs prev. 7 d\n"
        f"30 d: {kwh(month['kwh'], 'en')}, {change(month)}% vs prev. 30 d\n"
        f"This month's bill (est.): {money(month_bill(backoffice_url, 'MTR-2000002'), 'en')}\n"
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


# ---------------------------------------------------------------- back office down



def test_back_office_down_gives_a_polite_screen(stoppable):
    p, stop_backoffice = stoppable
    assert p.dial().startswith("CON ElecNet - 1000001")
    stop_backoffice()
    assert p.answer("2") == ("CON Vos relevés sont indisponibles pour le moment. Merci de réessayer plus tard.\n"
                             "0. Retour 00. Accueil")
    assert p.answer("0").startswith("CON ElecNet - 1000001")


# ---------------------------------------------------------------- meters with little history
def forget_readings(backoffice_app: flask.Flask, meter: str, older_than_days: int | None = None) -> None:
    """Delete a demo meter's readings (all of them, or those older than N days) in the stand-in's database."""
    from datetime import timedelta

    from sqlalchemy import delete

    from backoffice.models import Reading

    condition = [Reading.meter_id == meter]
    if older_than_days is not None:
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=older_than_days)
        condition.append(Reading.at < cutoff)
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        session.execute(delete(Reading).where(*condition))


def test_without_a_previous_period_the_percentages_are_left_out(phone, backoffice_url, backoffice_app):
    forget_readings(backoffice_app, "MTR-1000001", older_than_days=20)
    p = phone("+221770000001")
    p.dial()
    screen = p.answer("2")
    week, month = (metering(backoffice_url, f"MTR-1000001/consumption?days={d}") for d in (7, 30))
    assert Decimal(month["previous_kwh"]) == 0
    assert screen == (
        f"CON Relevé {reading_time(week)}: {kwh(week['last_reading']['index_kwh'], 'fr')}\n"
        f"7 j: {kwh(week['kwh'], 'fr')}\n"
        f"30 j: {kwh(month['kwh'], 'fr')}\n"
        f"Facture du mois estimée: {money(month_bill(backoffice_url, 'MTR-1000001'), 'fr')}\n"
        "0. Retour 00. Accueil")


def test_a_meter_that_never_reported(phone, backoffice_app):
    forget_readings(backoffice_app, "MTR-3000001")
    p = phone("+221770000003")
    p.dial()
    assert p.answer("2") == ("CON Votre compteur n'a encore transmis aucun relevé. Réessayez dans quelques jours.\n"
                             "0. Retour 00. Accueil")
