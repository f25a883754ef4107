"""An agent settles a payment the worker could not resolve, from the customer's page of the console.

Awa paid 12 500 FCFA; the provider's id never reached our ledger and the worker gave up asking by our key: the
payment is ``unresolved``, listed under "Payments to resolve", and still counted as on its way on her balance.
The agent asks the provider now (the worker's question by our key, to the reference back office served on
loopback) or, on proof, settles it by hand with a reason: through the callback's path, with the callback's SMS,
audited under the agent's name, once however often the form is sent, and never against a late callback.
"""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app.agent_actions import settle_unresolved_payment
from app.factory import create_app
from app.settings import Settings
from app.storage.agent_console import SqlAgentAudit
from backend_clients.billing import BillingClient
from backend_clients.config import ClientConfig
from backoffice.models import Payment as BillingPayment
from backoffice.models import PaymentIntent
from dialogs.payments import post_owed_to_billing
from dialogs.stores import ProviderResult
from tests.channels.test_ussd_payments import wait_for
from tests.support.engine import UssdPhone
from tests.support.ports import closed_port
from tests.web_fallback.agents.conftest import sign_in

AWA = "+221770000001"
ALIOU = "+221770000002"
KEY = "pay-" + "a" * 40
AWAITING = ("CON Compte 1000001: votre paiement de 12 500 FCFA est en cours de confirmation. "
            "Rien d'autre à payer pour l'instant.\n3. Derniers paiements\n0. Retour 00. Accueil")
PAYABLE = "CON Payer - compte 1000001\nA payer: 12 500 FCFA\n"


@pytest.fixture
def deps(agents_app: Flask) -> Any:
    return agents_app.extensions["parts"]["deps"]


def unresolved(deps: Any, key: str = KEY, msisdn: str = AWA, account: str = "1000001") -> None:
    """A payment whose provider id was never recorded, given up by the worker."""
    deps.ledger.create(idempotency_key=key, msisdn=msisdn, account_number=account, purpose="bill",
                       amount=Decimal(12500), wallet="orange_money")
    assert deps.ledger.give_up_unrecorded(key).status == "unresolved"


def started_with_provider(deps: Any, callback_url: str, key: str = KEY) -> str:
    """The provider did start it under our key (its prompt on Awa's phone): its payment id."""
    return str(deps.payments.initiate(account_number="1000001", msisdn=AWA, amount=Decimal(12500), purpose="bill",
                                      idempotency_key=key, callback_url=callback_url, wallet="orange_money")
               .payment_id)


def open_awa(client: FlaskClient, token: str, number: str = AWA) -> str:
    return text(client.post("/console/lookup", data={"kind": "phone", "q": number, "csrf_token": token},
                            follow_redirects=True))


def text(answer: Any) -> str:
    """The page as the agent reads it (HTML entities decoded)."""
    return html.unescape(answer.get_data(as_text=True))


def to_resolve(page: str) -> str:
    start = page.index("<h3>Payments to resolve</h3>")
    return page[start:page.index("<h3>", start + 4)]


def mismatched(page: str) -> str:
    start = page.index("<h3>Mismatched payment callbacks kept for an agent</h3>")
    return page[start:page.index("<h3>", start + 4)]


def notice(page: str) -> str:
    found = re.search(r'<p class="notice" role="status">([^<]*)</p>', page)
    return found.group(1) if found else ""


def act(client: FlaskClient, token: str, path: str, **fields: str) -> str:
    """The agent sends one of the page's forms about the payment; the page it lands on."""
    return text(client.post(path, data={"csrf_token": token, "key": KEY, **fields}, follow_redirects=True))


def payment_sms(deps: Any) -> list[dict[str, Any]]:
    return [e for e in deps.outbox.pending() if e["kind"].startswith("payment_")]


def test_asking_the_provider_now_settles_a_payment_it_approved(agent, deps, backoffice_url) -> None:
    client, token = agent
    unresolved(deps)
    payment_id = started_with_provider(deps, f"http://127.0.0.1:{closed_port()}/payments/callback")
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()
    assert "Vérifier auprès de l'opérateur" in to_resolve(open_awa(client, token))

    page = act(client, token, "/console/payment-check")

    assert notice(page) == "The provider settled it: now succeeded; the customer is told by SMS."
    assert "None." in to_resolve(page)
    [receipt] = payment_sms(deps)
    assert (receipt["kind"], receipt["payload"]["payment_id"]) == ("payment_receipt", payment_id)
    # Sent again (a double click): nothing happens twice.
    again = act(client, token, "/console/payment-check")
    assert notice(again) == "This payment is no longer to resolve (now succeeded): nothing changed."
    assert len(payment_sms(deps)) == 1


def test_asking_the_provider_about_a_payment_it_never_got_changes_nothing_and_says_so(agent, deps) -> None:
    client, token = agent
    unresolved(deps)
    open_awa(client, token)
    page = act(client, token, "/console/payment-check")
    assert notice(page).startswith("The provider has no payment under our key")
    assert KEY in to_resolve(page)
    assert deps.ledger.get(KEY).status == "unresolved"


def test_settled_by_hand_as_not_paid_the_customer_is_told_and_may_pay_again(agents_app, supervisor, deps,
                                                                              agents_settings) -> None:
    client, token = supervisor
    unresolved(deps)
    assert UssdPhone(agents_app.test_client(), AWA).dial("3") == AWAITING
    open_awa(client, token)
    reason = "Customer read her wallet SMS to me: no debit. Called from +221 77 123 45 67"

    page = act(client, token, "/console/payment-settle", decision="not_paid", reason=reason)

    assert notice(page) == "Settled as failed; the customer is told by SMS."
    assert UssdPhone(agents_app.test_client(), AWA).dial("3").startswith(PAYABLE)
    [sms] = payment_sms(deps)
    assert (sms["kind"], sms["payload"]["failure_reason"]) == ("payment_failed", "not_received")
    [event] = [e for e in deps.security.for_account("1000001") if e.kind == "payment_settled_by_agent"]
    assert event.detail == ("not paid by agent dev:moussa: Customer read her wallet SMS to me: no debit. "
                            "Called from +2217*****567")
    [row] = [r for r in SqlAgentAudit(agents_app.extensions["parts"]["db"], agents_settings.secret_key).recent(
        agent="dev:moussa") if r.action == "payment_settle"]
    assert (row.action, row.outcome) == ("payment_settle", "settled") and "no debit" in row.detail
    assert "123 45 67" not in row.detail and "45 67" not in row.detail
    # The form sent twice: the second changes nothing and sends nothing.
    again = act(client, token, "/console/payment-settle", decision="not_paid", reason=reason)
    assert notice(again) == "This payment is no longer to resolve (now failed): nothing changed."
    assert len(payment_sms(deps)) == 1


def test_settled_by_hand_as_paid_a_late_refusal_from_the_provider_is_kept_not_applied(
        supervisor, deps, site, backoffice_url) -> None:
    client, token = supervisor
    unresolved(deps)
    payment_id = started_with_provider(deps, f"{site}/payments/callback")
    open_awa(client, token)

    page = act(client, token, "/console/payment-settle", decision="paid", reference=payment_id,
               reason="Provider portal shows it paid")
    assert notice(page) == "Settled as succeeded; the customer is told by SMS."
    [receipt] = payment_sms(deps)
    assert receipt["payload"]["reference"] == payment_id

    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/decline", timeout=5).raise_for_status()
    wait_for(lambda: deps.ledger.mismatches(payment_id))     # the callback lost: kept for an agent
    assert deps.ledger.get(KEY).status == "succeeded"
    assert [e["kind"] for e in payment_sms(deps)] == ["payment_receipt"]


def test_a_callback_that_came_first_wins_and_the_agents_late_word_changes_nothing(
        supervisor, deps, site, backoffice_url) -> None:
    client, token = supervisor
    unresolved(deps)
    payment_id = started_with_provider(deps, f"{site}/payments/callback")
    assert KEY in to_resolve(open_awa(client, token))      # the agent reads the page ...
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()
    wait_for(lambda: deps.ledger.get(KEY).status == "succeeded")   # ... the provider's callback lands ...
    page = act(client, token, "/console/payment-settle", decision="not_paid", reason="No debit seen")  # ... then
    assert notice(page) == (
        "This payment is no longer to resolve (now succeeded): nothing changed.")
    assert [e["kind"] for e in payment_sms(deps)] == ["payment_receipt"]


def test_hostile_or_mistaken_forms_get_a_clear_page_and_change_nothing(agents_app, supervisor, deps) -> None:
    client, token = supervisor
    unresolved(deps)
    unresolved(deps, key="pay-" + "b" * 40, msisdn=ALIOU, account="2000001")
    deps.ledger.create(idempotency_key="pay-other", msisdn=AWA, account_number="1000001", purpose="bill",
                       amount=Decimal(500), wallet="orange_money")
    deps.ledger.mark_pending("pay-other", "PAY-TAKEN")
    open_awa(client, token)
    cases = [
        ({"key": "pay-" + "c" * 40, "decision": "not_paid", "reason": "x"}, 404, "no payment under this key"),
        ({"key": "pay-" + "b" * 40, "decision": "not_paid", "reason": "x"}, 404, "no payment under this key"),
        ({"decision": "not_paid", "reason": "x" * 201}, 400, "at most 200 characters"),
        ({"decision": "not_paid", "reason": "   "}, 400, "Give the reason"),
        ({"decision": "paid", "reason": "portal"}, 400, "needs the provider's reference"),
        ({"decision": "paid", "reference": "<script>", "reason": "portal"}, 400, "needs the provider"),
        ({"decision": "maybe", "reason": "x"}, 400, "paid or not"),
        ({"key": "pay-'; drop table x", "decision": "paid", "reason": "x"}, 400, "Pick a payment"),
    ]
    for fields, status, says in cases:
        answer = client.post("/console/payment-settle", data={"csrf_token": token, "key": KEY, **fields})
        assert (answer.status_code, answer.mimetype) == (status, "text/html"), fields
        assert says in text(answer), fields
    taken = act(client, token, "/console/payment-settle", decision="paid", reference="PAY-TAKEN", reason="portal")
    assert notice(taken).startswith("This reference is another payment's")
    forged = client.post("/console/payment-settle", data={"key": KEY, "decision": "not_paid", "reason": "x"})
    assert forged.status_code == 400 and "did not come from this console" in text(forged)
    # Headed in the agent's words; the status code only in the tab's title.
    page = forged.get_data(as_text=True)
    assert "<h1>This could not be done</h1>" in page and "Bad Request" not in re.sub(r"<title>.*?</title>", "", page)
    assert [deps.ledger.get(k).status for k in (KEY, "pay-" + "b" * 40, "pay-other")] == [
        "unresolved", "unresolved", "pending"]
    assert payment_sms(deps) == []


def test_only_agents_and_supervisors_act_on_payments_and_a_flood_is_throttled(agents_app, agent, deps) -> None:
    designer = agents_app.test_client()
    designer_token = sign_in(designer, "Fatou", "designer")
    refused = designer.post("/console/payment-settle", data={"csrf_token": designer_token, "key": KEY,
                                                            "decision": "not_paid", "reason": "x"})
    assert refused.status_code == 403
    stranger = agents_app.test_client()
    assert stranger.post("/console/payment-check", data={"key": KEY}).status_code in (302, 400)

    client, token = agent
    open_awa(client, token)
    answers = [client.post("/console/payment-check", data={"csrf_token": token, "key": "pay-" + "d" * 40}).status_code
               for _ in range(11)]
    assert answers == [404] * 10 + [429]
    assert "please wait" in text(client.post("/console/payment-check", data={"csrf_token": token, "key": KEY}))


def balance_due(backoffice_url: str, account: str = "1000001") -> str:
    """What the billing system says the account owes (the amount the customer's balance shows)."""
    answer = requests.get(f"{backoffice_url}/api/v1/accounts/{account}/balance", timeout=5)
    return str(answer.json()["amount"])


def provider_side(backoffice_app: Flask, payment_id: str) -> PaymentIntent:
    """The payment as the provider keeps it (its callback deliveries)."""
    with backoffice_app.extensions["backoffice"].sessions() as db:
        return db.get(PaymentIntent, payment_id)


def test_a_late_approval_after_an_agents_not_paid_is_kept_answered_and_the_customer_told(
        supervisor, agent, deps, site, backoffice_app, backoffice_url) -> None:
    client, token = supervisor
    unresolved(deps)
    payment_id = started_with_provider(deps, f"{site}/payments/callback")
    open_awa(client, token)
    act(client, token, "/console/payment-settle", decision="not_paid", reason="No debit seen on her wallet")

    # Awa approves the prompt at last: the provider takes her money and tells us.
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()

    [kept] = wait_for(lambda: deps.ledger.mismatches(f"none-{KEY}"))
    assert kept["reasons"].startswith("payment_id,status") and f'"payment_id": "{payment_id}"' in kept["received"]
    # The provider heard a 2xx: it stops retrying.
    wait_for(lambda: provider_side(backoffice_app, payment_id).callback_delivered_at is not None)
    assert [e["kind"] for e in payment_sms(deps)] == ["payment_failed", "payment_under_review"]
    [event] = [e for e in deps.security.for_account("1000001") if e.kind == "callback_after_settlement"]
    assert event.detail == "provider says succeeded after failed; kept"
    # An agent on the phone with Awa finds it with her payments, under the provider's id she can quote.
    agent_client, agent_token = agent
    assert payment_id in mismatched(open_awa(agent_client, agent_token))
    # The provider sends it again: nothing kept or sent twice.
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/resend-callback", timeout=5).raise_for_status()
    wait_for(lambda: provider_side(backoffice_app, payment_id).callback_attempts >= 2)
    assert len(deps.ledger.mismatches(f"none-{KEY}")) == 1 and len(payment_sms(deps)) == 2


def test_settled_by_hand_as_paid_billing_is_credited_once(agents_app, supervisor, deps, backoffice_url) -> None:
    client, token = supervisor
    unresolved(deps)
    assert balance_due(backoffice_url) == "12500"
    open_awa(client, token)

    act(client, token, "/console/payment-settle", decision="paid", reference="MM7KQ2ZP9XW4",
        reason="Provider portal shows it paid")

    assert balance_due(backoffice_url) == "0"
    assert UssdPhone(agents_app.test_client(), AWA).dial("3").startswith("CON Compte 1000001: rien à payer")
    [posted] = [e for e in deps.security.for_account("1000001") if e.kind == "payment_posted_to_billing"]
    assert posted.extra["amount"] == "12500"
    # The worker's pass finds nothing more to post: billing counts it once.
    assert post_owed_to_billing(deps) == 0
    listed = requests.get(f"{backoffice_url}/api/v1/accounts/1000001/payments", timeout=5).json()["payments"]
    assert [(p["payment_id"], p["amount"], p["channel"]) for p in listed][:1] == [("MM7KQ2ZP9XW4", "12500", "agent")]


def test_settled_paid_under_the_receipts_reference_the_providers_late_approval_pays_the_bill_once(
        supervisor, deps, site, backoffice_app, backoffice_url) -> None:
    """The supervisor typed the receipt's reference, not the provider's payment id; Awa's approval reaches the
    provider later: billing counts the money once (recorded under the provider's id by our key), the approval is
    kept for an agent and audited, and Awa, who had her receipt, is told nothing more."""
    client, token = supervisor
    unresolved(deps)
    payment_id = started_with_provider(deps, f"{site}/payments/callback")
    open_awa(client, token)
    act(client, token, "/console/payment-settle", decision="paid", reference="MM7KQ2ZP9XW4", reason="portal")
    assert balance_due(backoffice_url) == "0"

    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()

    [kept] = wait_for(lambda: deps.ledger.mismatches("MM7KQ2ZP9XW4"))
    assert kept["reasons"] == "payment_id"
    wait_for(lambda: provider_side(backoffice_app, payment_id).callback_delivered_at is not None)
    listed = requests.get(f"{backoffice_url}/api/v1/accounts/1000001/payments", timeout=5).json()["payments"]
    assert [(p["payment_id"], p["reference"], p["channel"]) for p in listed if p["amount"] == "12500"] == [
        (payment_id, "MM7KQ2ZP9XW4", "agent")]
    with backoffice_app.extensions["backoffice"].sessions() as db:   # one payment, not one per id
        assert db.get(BillingPayment, "MM7KQ2ZP9XW4") is None
    assert balance_due(backoffice_url) == "0"
    [event] = [e for e in deps.security.for_account("1000001") if e.kind == "callback_after_settlement"]
    assert event.detail == "provider says succeeded after succeeded; kept"
    assert [e["kind"] for e in payment_sms(deps)] == ["payment_receipt"]


def test_billing_down_when_an_agent_settles_paid_the_worker_posts_it_later(agents_app, deps, backoffice_url) -> None:
    unresolved(deps)
    offline = dataclasses.replace(deps, billing=BillingClient(ClientConfig(f"http://127.0.0.1:{closed_port()}",
                                                                           retries=0)))
    settled = settle_unresolved_payment(offline, AWA, KEY, paid=True, reference="MM7KQ2ZP9XW4",
                                        reason="portal", by="dev:awa")
    assert settled.outcome == "settled" and deps.ledger.get(KEY).status == "succeeded"
    assert balance_due(backoffice_url) == "12500"      # not lost: kept, owed to billing

    assert post_owed_to_billing(deps) == 1                 # the worker's next pass
    assert balance_due(backoffice_url) == "0"
    assert post_owed_to_billing(deps) == 0


def test_an_agent_asks_the_provider_but_settling_by_hand_is_a_supervisors_act(agents_app, agent, deps,
                                                                               agents_settings) -> None:
    client, token = agent
    unresolved(deps)
    listed = to_resolve(open_awa(client, token))
    assert KEY in listed and "Vérifier auprès de l'opérateur" in listed
    assert "Settle by hand" not in listed and "Settling by hand is a supervisor's act." in listed

    forged = client.post("/console/payment-settle", data={"csrf_token": token, "key": KEY, "decision": "paid",
                                                          "reference": "MM7KQ2ZP9XW4", "reason": "portal"})

    assert (forged.status_code, forged.mimetype) == (403, "text/html")
    assert "is a supervisor's act" in text(forged)
    assert deps.ledger.get(KEY).status == "unresolved" and payment_sms(deps) == []
    [row] = [r for r in SqlAgentAudit(agents_app.extensions["parts"]["db"], agents_settings.secret_key).recent(
        agent="dev:awa") if r.action == "payment_settle"]
    assert (row.role, row.outcome) == ("agent", "refused")


def test_the_limit_on_payment_actions_is_a_setting(agents_settings, monkeypatch) -> None:
    monkeypatch.setenv("AGENT_PAYMENT_ACTION_LIMIT", "3")
    assert Settings.from_env().agent_payment_action_limit == 3
    app = create_app(dataclasses.replace(agents_settings, agent_payment_action_limit=3))
    client = app.test_client()
    token = sign_in(client, "Awa", "agent")
    open_awa(client, token)
    answers = [client.post("/console/payment-check", data={"csrf_token": token, "key": "pay-" + "d" * 40})
               for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert "You have acted on 3 payments in the last 10 minutes" in text(answers[-1])


def test_an_agent_reads_the_providers_payment_id_of_a_kept_callback_whole(supervisor, agent, deps) -> None:
    """A provider id with a run of digits (``PAY-`` and hex) is not a phone number: the agent quotes it whole."""
    unresolved(deps)
    settle_unresolved_payment(deps, AWA, KEY, paid=False, reference=None, reason="no debit", by="dev:moussa")
    late = ProviderResult(event_id="evt-late", payment_id="PAY-77123456AB0C9D1E", status="succeeded",
                          amount=Decimal(12500), currency="XOF", account_number="1000001", msisdn=AWA,
                          reference="PAY-77123456AB0C9D1E", idempotency_key=KEY)
    deps.ledger.keep_mismatch(late, ["payment_id", "status"], under=f"none-{KEY}")
    client, token = agent

    kept = mismatched(open_awa(client, token))

    assert "PAY-77123456AB0C9D1E" in kept and "12500" in kept
    assert AWA not in kept and "1000001" not in kept.replace("1***001", "")   # her number stays masked


def billing_already_has(backoffice_app: Flask, payment_id: str, amount: int) -> None:
    """Billing holds the provider's id with another amount (a clerk's typing error): it refuses the post for good."""
    with backoffice_app.extensions["backoffice"].sessions() as db:
        db.add(BillingPayment(payment_id=payment_id, account_number="1000001", reference=payment_id, amount=amount,
                              currency="XOF", paid_at=datetime(2026, 11, 2, 9, 0), channel="counter"))
        db.commit()


def refused_by_billing(page: str) -> str:
    section = to_resolve(page)
    start = section.find('<table aria-label="refused by billing">')
    return section[start:] if start >= 0 else ""


def test_a_hand_paid_billing_refused_is_listed_and_a_supervisor_posts_it_again_once_fixed(
        agents_app, supervisor, agent, deps, backoffice_app, backoffice_url) -> None:
    unresolved(deps)
    billing_already_has(backoffice_app, "MM7KQ2ZP9XW4", 500)
    client, token = supervisor
    open_awa(client, token)
    act(client, token, "/console/payment-settle", decision="paid", reference="MM7KQ2ZP9XW4",
        reason="Provider portal shows it paid")
    assert balance_due(backoffice_url) == "12500"      # billing refused it: still shown due

    listed = refused_by_billing(open_awa(client, token))
    assert KEY in listed and "12500 XOF" in listed
    assert "Conflict: payment MM7KQ2ZP9XW4 was received with another account or amount" in listed   # billing's word
    assert "Post to billing again" in listed and "Mark handled" in listed
    # An agent sees the row, not the buttons; a forged form is refused.
    agent_client, agent_token = agent
    assert KEY in refused_by_billing(open_awa(agent_client, agent_token))
    assert "Post to billing again" not in refused_by_billing(open_awa(agent_client, agent_token))
    forged = agent_client.post("/console/billing-repost", data={"csrf_token": agent_token, "key": KEY})
    assert forged.status_code == 403 and "supervisor's act" in text(forged)

    page = act(client, token, "/console/billing-repost")       # not fixed yet: refused again, still listed
    assert notice(page).startswith("Billing refused it again")
    assert KEY in refused_by_billing(page)

    with backoffice_app.extensions["backoffice"].sessions() as db:   # billing's clerk removes the wrong entry
        db.delete(db.get(BillingPayment, "MM7KQ2ZP9XW4"))
        db.commit()
    page = act(client, token, "/console/billing-repost")
    assert notice(page) == "Billing recorded it: the customer's balance no longer shows it due."
    assert refused_by_billing(page) == "" and balance_due(backoffice_url) == "0"
    again = act(client, token, "/console/billing-repost")       # a double click: billing counts it once
    assert notice(again) == "Billing's refusal of this payment was already dealt with: nothing changed."
    assert balance_due(backoffice_url) == "0"
    actions = [(r.action, r.outcome) for r in SqlAgentAudit(agents_app.extensions["parts"]["db"], "agents-test-secret")
               .recent(customer=AWA) if r.action == "billing_repost"]
    assert actions == [("billing_repost", "already"), ("billing_repost", "billing_posted"),
                       ("billing_repost", "billing_refused"), ("billing_repost", "refused")]


def test_a_supervisor_marks_a_billing_refusal_handled_with_a_reason_once(supervisor, deps, backoffice_app,
                                                                        backoffice_url) -> None:
    unresolved(deps)
    billing_already_has(backoffice_app, "MM7KQ2ZP9XW4", 500)
    client, token = supervisor
    open_awa(client, token)
    act(client, token, "/console/payment-settle", decision="paid", reference="MM7KQ2ZP9XW4", reason="portal")
    blank = client.post("/console/billing-handled", data={"csrf_token": token, "key": KEY, "reason": "  "})
    assert blank.status_code == 400 and "Give the reason" in text(blank)

    page = act(client, token, "/console/billing-handled", reason="Credited by hand in billing, ticket 4411, "
                                                                 "customer +221 77 123 45 67")

    assert notice(page) == "Marked handled; billing is no longer asked to take it."
    assert refused_by_billing(page) == ""
    [event] = [e for e in deps.security.for_account("1000001") if e.kind == "payment_billing_handled"]
    assert event.detail.startswith("handled by agent dev:moussa: Credited by hand in billing")
    assert "123 45 67" not in event.detail and "+2217*****567" in event.detail
    again = act(client, token, "/console/billing-handled", reason="again")
    assert notice(again) == "Billing's refusal of this payment was already dealt with: nothing changed."
    assert [e.kind for e in deps.security.for_account("1000001")].count("payment_billing_handled") == 1
    assert post_owed_to_billing(deps) == 0 and balance_due(backoffice_url) == "12500"


def test_a_supervisors_reason_keeps_its_amounts_readable_and_the_numbers_masked(supervisor, agent, deps) -> None:
    client, token = supervisor
    unresolved(deps)
    open_awa(client, token)
    reason = "Refund 15000 FCFA promised, 25000 of it in cash, ticket 4411; account 1000001, she called from 77 123 45 67"

    act(client, token, "/console/payment-settle", decision="not_paid", reason=reason)

    said = "Refund 15000 FCFA promised, 25000 of it in cash, ticket 4411; account 1***001, she called from 7*****567"
    [event] = [e for e in deps.security.for_account("1000001") if e.kind == "payment_settled_by_agent"]
    assert event.detail == f"not paid by agent dev:moussa: {said}"
    client, token = agent
    page = open_awa(client, token)    # her page, its security events as an agent reads them
    assert said in page
    assert "123 45 67" not in page and "771234567" not in page


def payments(page: str) -> str:
    start = page.index("<h3>Payments</h3>")
    return page[start:page.index("<h3>", start + 4)]


def test_the_payments_list_shows_the_ref_the_customer_was_given_so_the_agent_can_find_their_payment(
        agent, deps) -> None:
    # Awa calls: "I paid 12 500, my screen said Réf. PAY-7F3A..., where is it?" The agent finds that Réf.
    client, token = agent
    deps.ledger.create(idempotency_key=KEY, msisdn=AWA, account_number="1000001", purpose="bill",
                       amount=Decimal(12500), wallet="orange_money")
    deps.ledger.mark_pending(KEY, "PAY-7F3A0C11D2E94B55")

    listed = payments(open_awa(client, token))

    assert "<th>customer's Réf.</th>" in listed
    assert "<td>PAY-7F3A0C11D2E94B55</td>" in listed
