"""A prepaid purchase a supervisor settles by hand as paid still gives the customer a token.

Moussa (prepaid meter MTR-3000001, account 3000001) bought 2 000 FCFA of credit; the provider's id never reached
our ledger and the worker gave up: the payment is ``unresolved``. A supervisor, on the provider's proof, settles
it "paid". The product then asks the vending system (the reference back office, served on loopback) for the
token under the payment's own key, keeps it on the payment, and queues the receipt with it, as an automatic
success does: Moussa reads it again under "last payments", and on his balance. However often it is asked (the
form twice, a supervisor's "vend again", the worker), the same token, the meter credited once. The vending
system down or refusing: the payment shows "token owed", the worker asks again with waits doubling, a
supervisor asks again once the cause is fixed; every act in the agents' audit.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask

from app.agent_actions import settle_unresolved_payment, vend_owed_token
from app.storage.agent_console import SqlAgentAudit
from app.worker import reconcile_payments
from backend_clients.config import ClientConfig
from backend_clients.metering import MeteringClient
from backoffice.models import Meter, Vend
from dialogs.vending import vend_owed_tokens
from tests.channels.test_ussd_payments import wait_for
from tests.support.engine import UssdPhone
from tests.support.ports import closed_port
from tests.web_fallback.agents.test_console_payments_to_resolve import (
    mismatched,
    notice,
    open_awa,
    payment_sms,
    provider_side,
    text,
)

MOUSSA = "+221770000003"
KEY = "pay-" + "e" * 40
REFERENCE = "MM7KQ2ZP9XW4"
NAV = "0. Retour 00. Accueil"


@pytest.fixture
def deps(agents_app: Flask) -> Any:
    return agents_app.extensions["parts"]["deps"]


def unresolved_purchase(deps: Any) -> None:
    """Moussa's 2 000 FCFA of credit: started with the provider, never recorded, given up by the worker."""
    deps.ledger.create(idempotency_key=KEY, msisdn=MOUSSA, account_number="3000001", purpose="prepaid",
                       amount=Decimal(2000), wallet="wave")
    assert deps.ledger.give_up_unrecorded(KEY).status == "unresolved"


def settle(client: Any, token: str) -> str:
    open_awa(client, token, MOUSSA)
    return text(client.post("/console/payment-settle", data={
        "csrf_token": token, "key": KEY, "decision": "paid", "reference": REFERENCE,
        "reason": "Provider portal shows it paid"}, follow_redirects=True))


def vend_again(client: Any, token: str) -> str:
    return text(client.post("/console/token-vend", data={"csrf_token": token, "key": KEY}, follow_redirects=True))


def tokens_owed(page: str) -> str:
    start = page.find('<table aria-label="tokens owed">')
    return page[start:page.index("</table>", start)] if start >= 0 else ""


def credit(backoffice_url: str) -> dict[str, Any]:
    answer: dict[str, Any] = requests.get(f"{backoffice_url}/api/v1/meters/MTR-3000001/credit", timeout=5).json()
    return answer


def vends_of(backoffice_app: Flask, payment_id: str = REFERENCE) -> list[str]:
    """The tokens the vending system issued for Moussa's payment."""
    with backoffice_app.extensions["backoffice"].sessions() as db:
        return [v.token for v in db.query(Vend).filter(Vend.payment_id.in_((REFERENCE, payment_id)))]


def grouped(token: str) -> str:
    return " ".join(token[i:i + 4] for i in range(0, 20, 4))


def last_payment_screen(agents_app: Flask) -> str:
    """Moussa dials *123#, 3 (his prepaid meter), 2 (last payments), 1 (the latest)."""
    moussa = UssdPhone(agents_app.test_client(), MOUSSA)
    assert moussa.dial("3") == f"CON Compteur prépayé MTR-3000001\n1. Acheter du crédit\n2. Derniers paiements\n{NAV}"
    moussa.answer("2")
    return moussa.answer("1")


def test_settled_paid_by_hand_the_customer_gets_his_token_once(agents_app, supervisor, deps, backoffice_app,
                                                               backoffice_url, agents_settings) -> None:
    client, token = supervisor
    unresolved_purchase(deps)
    before = Decimal(credit(backoffice_url)["credit_kwh"])

    page = settle(client, token)

    assert notice(page) == "Settled as succeeded; the customer is told by SMS."
    bought = deps.ledger.get(KEY)
    assert bought.status == "succeeded" and bought.token and len(bought.token) == 20
    # The receipt an automatic success sends, with the token in it.
    [receipt] = payment_sms(deps)
    assert (receipt["kind"], receipt["payload"]["token"], receipt["payload"]["reference"]) == (
        "payment_receipt", bought.token, REFERENCE)
    # The meter is credited (2 000 FCFA at 100 per kWh) and the balance's "last purchase" is this one.
    now = credit(backoffice_url)
    assert Decimal(now["credit_kwh"]) == before + 20 and now["last_purchase"]["token"] == bought.token
    # Moussa lost the SMS: he reads the token again under his last payments.
    assert last_payment_screen(agents_app).startswith("CON Achat réussi le ")
    assert f"Code: {grouped(bought.token)}\nRéférence: {REFERENCE}\n" in last_payment_screen(agents_app)
    assert tokens_owed(page) == ""

    # The form sent again, a "vend again" forged for it, the worker's pass: nothing vended twice.
    again = settle(client, token)
    assert notice(again) == "This payment is no longer to resolve (now succeeded): nothing changed."
    assert notice(vend_again(client, token)) == "This payment owes no token any more (vended meanwhile): nothing asked."
    assert vend_owed_tokens(deps, agents_settings.clock() + timedelta(days=1)) == 0
    assert vends_of(backoffice_app) == [bought.token] and Decimal(credit(backoffice_url)["credit_kwh"]) == before + 20
    assert len(payment_sms(deps)) == 1
    assert [e.kind for e in deps.security.for_account("3000001")].count("payment_token_vended") == 1


def test_a_retried_vend_gets_the_same_token_and_credits_the_meter_once(deps, backoffice_app, backoffice_url) -> None:
    """The vending system's answer lost (a timeout after it vended): asked again under the payment's key, the
    same token; two supervisors at once: the first keeps it, the second changes nothing."""
    unresolved_purchase(deps)
    silent = dataclasses.replace(deps, metering=MeteringClient(ClientConfig(f"http://127.0.0.1:{closed_port()}",
                                                                           retries=0)))
    assert settle_unresolved_payment(silent, MOUSSA, KEY, paid=True, reference=REFERENCE, reason="portal",
                                     by="dev:moussa").outcome == "settled_vend_down"
    # Meanwhile the vending system did vend under our key (the answer was what got lost).
    first = deps.metering.vend("MTR-3000001", payment_id=REFERENCE, amount=Decimal(2000), currency="XOF",
                               idempotency_key=f"vend-{KEY}", payment_key=KEY)
    before = credit(backoffice_url)["credit_kwh"]

    assert vend_owed_token(deps, MOUSSA, KEY, by="agent dev:moussa").outcome == "token_vended"
    assert vend_owed_token(deps, MOUSSA, KEY, by="agent dev:fatou").outcome == "already"

    assert deps.ledger.get(KEY).token == first.token
    assert vends_of(backoffice_app) == [first.token] and credit(backoffice_url)["credit_kwh"] == before
    assert [(e["kind"], e["payload"]["token"]) for e in payment_sms(deps)] == [
        ("payment_token_owed", None), ("payment_receipt", first.token)]


def test_vending_system_down_the_token_is_owed_and_the_worker_vends_it_later(
        agents_app, supervisor, deps, agents_settings, backoffice_url) -> None:
    unresolved_purchase(deps)
    down = dataclasses.replace(deps, metering=MeteringClient(ClientConfig(f"http://127.0.0.1:{closed_port()}",
                                                                         retries=0)))
    settled = settle_unresolved_payment(down, MOUSSA, KEY, paid=True, reference=REFERENCE, reason="portal",
                                        by="agent dev:moussa")

    assert settled.outcome == "settled_vend_down"
    assert deps.ledger.get(KEY).status == "succeeded" and deps.ledger.get(KEY).token is None
    # No receipt without its token: Moussa is told his money came and the code follows, once.
    [owed_notice] = payment_sms(deps)
    assert (owed_notice["kind"], owed_notice["msisdn"], owed_notice["payload"]["token"]) == (
        "payment_token_owed", MOUSSA, None)
    assert settle_unresolved_payment(down, MOUSSA, KEY, paid=True, reference=REFERENCE, reason="portal",
                                     by="agent dev:moussa").outcome == "already"
    # His last payments show the purchase paid, and that the code is on its way (not an empty "Code: -").
    owed_screen = last_payment_screen(agents_app)
    assert owed_screen.startswith("CON Achat réussi le ") and owed_screen.endswith(
        "\nMontant: 2 000 FCFA\nCode: en préparation, il vous sera envoyé par SMS\nRéférence: MM7KQ2ZP9XW4\n"
        f"{NAV}")
    # 30 s later the worker asks again, still down (the next wait doubles, to 60 s): Moussa is not told twice.
    assert vend_owed_tokens(down, agents_settings.clock() + timedelta(seconds=31)) == 0
    assert [e["kind"] for e in payment_sms(deps)] == ["payment_token_owed"]
    client, token = supervisor
    owed = tokens_owed(open_awa(client, token, MOUSSA))
    assert KEY in owed and "owed: the worker asks the vending system again" in owed and "2000 XOF" in owed

    now = agents_settings.clock() + timedelta(seconds=31)
    # Its wait is not over: the worker does not ask yet; then it is, and the token comes.
    assert reconcile_payments(deps, agents_settings, now + timedelta(seconds=30))["tokens_vended"] == 0
    assert reconcile_payments(deps, agents_settings, now + timedelta(seconds=61))["tokens_vended"] == 1

    bought = deps.ledger.get(KEY)
    [_, receipt] = payment_sms(deps)
    assert receipt["kind"] == "payment_receipt" and receipt["payload"]["token"] == bought.token
    assert f"Code: {grouped(bought.token)}\nRéférence: {REFERENCE}\n" in last_payment_screen(agents_app)
    assert credit(backoffice_url)["last_purchase"]["token"] == bought.token
    assert tokens_owed(open_awa(client, token, MOUSSA)) == ""
    assert reconcile_payments(deps, agents_settings, now + timedelta(days=1))["tokens_vended"] == 0


def test_a_refused_vend_is_owed_and_a_supervisor_vends_again_once_fixed(
        agents_app, supervisor, agent, deps, backoffice_app, agents_settings) -> None:
    unresolved_purchase(deps)
    with backoffice_app.extensions["backoffice"].sessions() as db:   # the meter wrongly recorded as postpaid
        db.get(Meter, "MTR-3000001").prepaid = False
        db.commit()
    client, token = supervisor

    page = settle(client, token)

    assert notice(page).startswith("Settled as succeeded; the token is owed: the vending system refused it")
    owed = tokens_owed(page)
    assert "owed: refused by the vending system" in owed and "NotFound" in owed and "Vend again" in owed
    [event] = [e for e in deps.security.for_account("3000001") if e.kind == "payment_vend_refused"]
    assert event.extra["amount"] == "2000"
    # Not asked again by the worker: refused for good until someone fixes it.
    assert vend_owed_tokens(deps, agents_settings.clock() + timedelta(days=1)) == 0
    # An agent sees the row, not the button; a forged form is refused.
    agent_client, agent_token = agent
    assert KEY in tokens_owed(open_awa(agent_client, agent_token, MOUSSA))
    assert "Vend again" not in tokens_owed(open_awa(agent_client, agent_token, MOUSSA))
    forged = agent_client.post("/console/token-vend", data={"csrf_token": agent_token, "key": KEY})
    assert forged.status_code == 403 and "supervisor's act" in text(forged)

    with backoffice_app.extensions["backoffice"].sessions() as db:   # the metering clerk fixes the meter
        db.get(Meter, "MTR-3000001").prepaid = True
        db.commit()
    done = vend_again(client, token)

    assert notice(done) == "Token vended: the customer gets it by SMS and reads it again in the last payments."
    bought = deps.ledger.get(KEY)
    assert tokens_owed(done) == "" and vends_of(backoffice_app) == [bought.token]
    assert [(e["kind"], e["payload"]["token"]) for e in payment_sms(deps)] == [
        ("payment_token_owed", None), ("payment_receipt", bought.token)]
    assert notice(vend_again(client, token)).startswith("This payment owes no token any more")
    actions = [(r.action, r.outcome) for r in SqlAgentAudit(agents_app.extensions["parts"]["db"], "agents-test-secret")
               .recent(customer=MOUSSA) if r.action in ("token_vend", "payment_settle")]
    assert actions == [("token_vend", "already"), ("token_vend", "token_vended"), ("token_vend", "refused"),
                       ("payment_settle", "settled_vend_refused")]


def started_with_provider(deps: Any, site: str) -> str:
    """The provider did start Moussa's purchase under our key (its prompt on his phone): its payment id."""
    return str(deps.payments.initiate(account_number="3000001", msisdn=MOUSSA, amount=Decimal(2000),
                                      purpose="prepaid", idempotency_key=KEY, callback_url=f"{site}/payments/callback",
                                      wallet="wave").payment_id)


def account_payments(backoffice_url: str) -> list[tuple[str, str, str, str]]:
    """The money billing says Moussa's account received: (payment id, reference, amount, channel)."""
    listed = requests.get(f"{backoffice_url}/api/v1/accounts/3000001/payments", timeout=5).json()["payments"]
    return [(p["payment_id"], p["reference"], p["amount"], p["channel"]) for p in listed]


def test_the_providers_late_approval_of_a_purchase_vended_by_hand_gives_no_second_token(
        agents_app, supervisor, agent, deps, site, backoffice_app, backoffice_url) -> None:
    """The supervisor typed the receipt's reference (not the provider's payment id); Moussa's approval reaches
    the provider later: the same payment, one token, the meter credited once; the approval is kept for an agent
    and audited, and Moussa, who has his receipt, is told nothing more."""
    client, token = supervisor
    unresolved_purchase(deps)
    payment_id = started_with_provider(deps, site)
    before = Decimal(credit(backoffice_url)["credit_kwh"])
    settle(client, token)
    bought = deps.ledger.get(KEY).token
    # Billing lists the purchase with the account's payments (under the provider's id, the receipt's reference).
    assert account_payments(backoffice_url)[0] == (payment_id, REFERENCE, "2000", "agent")

    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()

    [kept] = wait_for(lambda: deps.ledger.mismatches(REFERENCE))
    assert kept["reasons"] == "payment_id" and f'"payment_id": "{payment_id}"' in kept["received"]
    wait_for(lambda: provider_side(backoffice_app, payment_id).callback_delivered_at is not None)
    assert provider_side(backoffice_app, payment_id).token == bought
    assert vends_of(backoffice_app, payment_id) == [bought]
    assert Decimal(credit(backoffice_url)["credit_kwh"]) == before + 20
    assert [p for p in account_payments(backoffice_url) if p[0] == payment_id] == [
        (payment_id, REFERENCE, "2000", "agent")]
    [event] = [e for e in deps.security.for_account("3000001") if e.kind == "callback_after_settlement"]
    assert event.detail == "provider says succeeded after succeeded; kept"
    assert [e["kind"] for e in payment_sms(deps)] == ["payment_receipt"]
    assert f"Code: {grouped(bought)}\nRéférence: {REFERENCE}\n" in last_payment_screen(agents_app)
    # An agent on the phone with Moussa finds the provider's approval beside the purchase, under its id.
    agent_client, agent_token = agent
    assert payment_id in mismatched(open_awa(agent_client, agent_token, MOUSSA))


def test_approved_while_its_token_was_owed_the_worker_gets_the_providers_token_not_a_second(
        agents_app, supervisor, deps, site, backoffice_app, backoffice_url, agents_settings) -> None:
    unresolved_purchase(deps)
    payment_id = started_with_provider(deps, site)
    down = dataclasses.replace(deps, metering=MeteringClient(ClientConfig(f"http://127.0.0.1:{closed_port()}",
                                                                         retries=0)))
    assert settle_unresolved_payment(down, MOUSSA, KEY, paid=True, reference=REFERENCE, reason="portal",
                                     by="agent dev:moussa").outcome == "settled_vend_down"
    before = Decimal(credit(backoffice_url)["credit_kwh"])
    # Moussa approves meanwhile: the provider's own purchase credits his meter with its token.
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()
    wait_for(lambda: deps.ledger.mismatches(REFERENCE))
    approved = provider_side(backoffice_app, payment_id).token

    assert reconcile_payments(deps, agents_settings, agents_settings.clock() + timedelta(hours=1))[
        "tokens_vended"] == 1

    assert deps.ledger.get(KEY).token == approved
    assert Decimal(credit(backoffice_url)["credit_kwh"]) == before + 20
    assert [(e["kind"], e["payload"]["token"]) for e in payment_sms(deps)] == [
        ("payment_token_owed", None), ("payment_receipt", approved)]
    assert [p[3] for p in account_payments(backoffice_url) if p[0] == payment_id] == ["mobile_money"]
