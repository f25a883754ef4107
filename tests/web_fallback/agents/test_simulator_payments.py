"""A payment played in the agents' simulator: what really happens to it. It goes to the demo back office
(the provider's stand-in, which moves no money), the demo back office reports it on the sandbox's own
callback, and only the sandbox's ledger settles: the live ledger, the live callback and the customers'
outbox never see it. The page says it is a simulation."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from flask import Flask

from app.factory import create_app
from app.settings import Settings
from app.storage import SqlPaymentLedger, make_sessions
from backoffice.models import PaymentIntent
from tests.support.services import serve_wsgi

from .conftest import sign_in
from .test_simulator import answer, current_screen, start

PIN = "2468"


@pytest.fixture
def agents_settings(settings: Settings, tmp_path: Path, engine_port: int) -> Settings:
    """The agents' settings, with the public URL the demo back office calls back on."""
    return replace(settings, agents_dev_signin=True, secret_key="agents-test-secret",
                   simulator_database_url=f"sqlite:///{tmp_path / 'simulator.db'}",
                   public_base_url=f"http://127.0.0.1:{engine_port}")


@pytest.fixture
def served(agents_app: Flask, engine_port: int) -> Iterator[str]:
    with serve_wsgi(agents_app, engine_port) as url:
        yield url


def wait_for(check, timeout: float = 8.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return value


def test_a_simulated_payment_settles_in_the_sandbox_only(agents_app, agents_settings, served, backoffice_url,
                                                          backoffice_app):
    client = agents_app.test_client()
    token = sign_in(client, "Fatou", "designer")
    page = start(client, token)
    assert "A payment played here is simulated" in html.unescape(page)
    for typed in ("3", "1", "1", "1", "5500", PIN):
        answer(client, token, typed)
    end = html.unescape(current_screen(answer(client, token, PIN)))
    found = re.search(r"Réf\. (PAY-[0-9A-F]{16})", end)
    assert found and end.startswith("END Validez le paiement de 12 500 FCFA"), end
    payment_id = found.group(1)

    with backoffice_app.extensions["backoffice"].sessions() as db:
        assert db.get(PaymentIntent, payment_id).callback_url == f"{served}/payments/simulator/callback"
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()
    sandbox = SqlPaymentLedger(make_sessions(agents_settings.simulator_database_url))
    assert wait_for(lambda: (p := sandbox.by_provider_id(payment_id)) and p.status == "succeeded" and p)
    live = agents_app.extensions["parts"]["deps"]
    assert live.ledger.by_provider_id(payment_id) is None
    assert live.ledger.recent("+221770000001") == []
    assert [e for e in live.outbox.pending() if e["kind"].startswith("payment_")] == []
    # The demo customer's next simulated dial sees it paid.
    restarted = start(client, token, text="1")
    assert current_screen(restarted).startswith("CON Compte 1000001\nA payer: 0 FCFA\n")


def test_the_simulator_refuses_to_play_on_the_live_database(agents_settings):
    app = create_app(replace(agents_settings, simulator_database_url=agents_settings.database_url))
    client = app.test_client()
    token = sign_in(client, "Fatou", "designer")
    assert "set SIMULATOR_DATABASE_URL apart from DATABASE_URL" in client.get("/simulator/").get_data(as_text=True)
    response = client.post("/simulator/start", data={"channel": "ussd", "language": "fr",
                                                     "number": "+221770000001", "csrf_token": token})
    assert response.status_code == 503
    # Nor is there a sandbox callback to settle anything on.
    assert app.test_client().post("/payments/simulator/callback", data=b"{}").status_code == 404


def test_a_simulator_back_office_that_is_the_live_one_is_refused_in_production(agents_settings):
    production = replace(agents_settings, agents_dev_signin=False, oidc_issuer="http://127.0.0.1:9",
                         simulator_backoffice_url=agents_settings.backoffice_url)
    client = create_app(production).test_client()
    with client.session_transaction() as cookie:   # signed in by the identity provider as a designer
        cookie["agent"] = {"sub": "fatou", "name": "Fatou", "roles": ["designer"], "via": "oidc",
                           "seen": time.time(), "since": time.time()}
        cookie["agent_csrf"] = "t"
    assert "not BACKOFFICE_URL" in client.get("/simulator/").get_data(as_text=True)
    response = client.post("/simulator/start", data={"channel": "ussd", "language": "fr",
                                                     "number": "+221770000001", "csrf_token": "t"})
    assert response.status_code == 503
