"""The console and the simulator in a real headless Chromium (Playwright), served on loopback as in production:
an agent signs in, looks a customer up, unlocks nothing by accident; a designer plays the USSD menu."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask

from app.settings import Settings
from app.storage import make_sessions
from app.storage.models import PinCredentialRow
from app.storage.pins import hash_pin
from tests.support.services import need_binary, serve_wsgi

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def site(agents_app: Flask) -> Iterator[str]:
    with serve_wsgi(agents_app) as url:
        yield url


@pytest.fixture
def page(site: str) -> Iterator[object]:
    chromium = os.environ.get("CHROMIUM_PATH") or need_binary("chromium")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context()
            tab = context.new_page()
            tab.set_default_timeout(20_000)
            yield tab
        finally:
            browser.close()


def sign_in(page, site: str, name: str, role: str) -> None:
    page.goto(f"{site}/console/")
    page.wait_for_url("**/agents/signin")               # sent to sign in first
    page.get_by_label("Name").fill(name)
    page.get_by_label("Role").select_option(role)
    page.get_by_role("button", name="Sign in (development)").click()


def test_an_agent_looks_a_customer_up_and_unlocks_the_pin(page, site: str,
                                                          agents_settings: Settings) -> None:
    with make_sessions(agents_settings.database_url).begin() as db:
        db.add(PinCredentialRow(msisdn="+221770000001", pin_hash=hash_pin("4821"), failed_attempts=0, lockouts=4,
                                locked_until=datetime.now(UTC) + timedelta(days=3650)))
    sign_in(page, site, "Awa", "agent")
    page.wait_for_url("**/console/")
    page.get_by_label("Number to look up", exact=True).fill("+221 77 000 00 01")
    page.get_by_role("button", name="Look up").click()
    playwright_api.expect(page.locator("#customer-number")).to_have_text("+221770000001")
    accounts = page.get_by_role("table", name="accounts")
    playwright_api.expect(accounts).to_contain_text("1000001")
    playwright_api.expect(accounts).to_contain_text("Awa Ndiaye")
    playwright_api.expect(page.locator("#pin-state")).to_contain_text("locked: until")
    page.get_by_role("button", name="Unlock the PIN").click()
    playwright_api.expect(page.get_by_role("status")).to_have_text("PIN unlocked; the customer is told by SMS.")
    playwright_api.expect(page.locator("#pin-state")).to_contain_text("locked: no")


def test_an_agent_given_an_account_number_sees_the_holders_number_masked(page, site: str) -> None:
    sign_in(page, site, "Awa", "agent")
    page.get_by_label("Look up by").select_option("account")
    page.get_by_label("Number to look up", exact=True).fill("1000001")
    page.get_by_role("button", name="Look up").click()
    playwright_api.expect(page.locator("#customer-number")).to_have_text("+2217*****001")
    assert "+221770000001" not in page.content()


def test_a_designer_plays_the_ussd_menu_in_the_simulator(page, site: str) -> None:
    sign_in(page, site, "Fatou", "designer")
    page.wait_for_url("**/simulator/")                    # no console for a designer
    page.get_by_label("Channel").select_option("ussd")
    page.get_by_label("Language").select_option("en")
    page.get_by_label("Demo customer").select_option("+221770000001")
    page.get_by_role("button", name="Start").click()
    current = page.locator("figure.current")
    playwright_api.expect(current.locator("pre.screen")).to_contain_text("CON ElecNet - 1000001")
    playwright_api.expect(current.locator(".charset")).to_have_text("GSM-7")
    page.get_by_label("answer").fill("1")
    page.get_by_role("button", name="Send").click()
    playwright_api.expect(page.locator("figure.current pre.screen")).to_contain_text("12 500")
    count = page.locator("figure.current .count").inner_text()
    used, limit = (int(n) for n in count.split()[0].split("/"))
    assert limit == 182 and 0 < used <= limit
    playwright_api.expect(page.get_by_role("table", name="linter report")).to_have_count(0)
    playwright_api.expect(page.locator("#lint-clean")).to_be_visible()


def test_a_supervisor_settles_a_payment_to_resolve_as_not_paid(page, site: str, agents_app: Flask) -> None:
    deps = agents_app.extensions["parts"]["deps"]
    deps.ledger.create(idempotency_key="pay-browser", msisdn="+221770000001", account_number="1000001",
                       purpose="bill", amount=Decimal(12500), wallet="orange_money")
    deps.ledger.give_up_unrecorded("pay-browser")
    sign_in(page, site, "Moussa", "supervisor")
    page.get_by_label("Number to look up", exact=True).fill("+221770000001")
    page.get_by_role("button", name="Look up").click()
    to_resolve = page.get_by_role("table", name="payments to resolve")
    playwright_api.expect(to_resolve).to_contain_text("pay-browser")
    to_resolve.get_by_label("Outcome").select_option("not_paid")
    to_resolve.get_by_label("Reason").fill("Wallet SMS read to me: no debit")
    to_resolve.get_by_role("button", name="Settle by hand").click()
    playwright_api.expect(page.get_by_role("status")).to_have_text("Settled as failed; the customer is told by SMS.")
    playwright_api.expect(page.get_by_role("table", name="payments to resolve")).to_have_count(0)
    playwright_api.expect(page.get_by_role("table", name="payments")).to_contain_text("failed")
