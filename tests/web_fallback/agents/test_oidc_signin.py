"""Agents sign in by OpenID Connect against a real provider on loopback (``oidc-provider-mock``, run as its
own process): the browser's round trip is played with the Flask test client (our side) and ``requests``
(the provider's authorisation form); our app fetches the discovery document, exchanges the code and
checks the ID token over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import select

from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.agent_console import AgentAuditRow
from tests.support.services import start_serving


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[str]:
    # Its own process: the provider's deprecation warnings are not our test's errors.
    log_path = tmp_path / "issuer.log"

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        with log_path.open("w") as log:
            return subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--port", str(ports[0]),
                                     "--require-nonce"], stdout=log, stderr=subprocess.STDOUT)

    server, [port] = start_serving(
        launch, lambda ports: f"http://127.0.0.1:{ports[0]}/.well-known/openid-configuration", log_path, seconds=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def oidc_settings(agents_settings: Settings, issuer: str) -> Settings:
    return replace(agents_settings, oidc_issuer=issuer, oidc_client_id="console", oidc_client_secret="s3cret",
                   agents_dev_signin=True, agent_roles="carla@example.com=supervisor")


def user(issuer: str, sub: str, **claims: object) -> None:
    assert requests.put(f"{issuer}/users/{quote(sub)}", json=claims, timeout=5).status_code == 204


def sign_in_at_provider(client: FlaskClient, sub: str, action: str = "authorize") -> tuple[int, str]:
    """Our redirect to the provider, the agent's choice on its form, the provider's redirect back to us."""
    start = client.get("/agents/oidc/start")
    assert start.status_code == 302
    back = requests.post(start.headers["Location"], data={"sub": sub, "action": action}, allow_redirects=False,
                         timeout=5)
    assert back.status_code == 302, back.text
    target = urlsplit(back.headers["Location"])
    done = client.get(f"{target.path}?{target.query}")
    return done.status_code, done.headers.get("Location", "") or done.get_data(as_text=True)


def test_an_agent_with_a_role_claim_signs_in_and_lands_on_the_console(oidc_settings: Settings, issuer: str) -> None:
    user(issuer, "awa@example.com", email="awa@example.com", name="Awa Diop", roles=["agent"])
    client = create_app(oidc_settings).test_client()
    page = client.get("/agents/signin").get_data(as_text=True)
    # With an issuer configured, the local sign-in is not offered, even with the development switch.
    assert "Sign in with your organisation" in page and "DEVELOPMENT ONLY" not in page
    status, where = sign_in_at_provider(client, "awa@example.com")
    assert status == 302 and where.endswith("/console/")
    page = client.get("/console/").get_data(as_text=True)
    assert "Awa Diop (agent)" in page and "local development sign-in" not in page
    with make_sessions(oidc_settings.database_url)() as db:
        row = db.scalars(select(AgentAuditRow).where(AgentAuditRow.action == "sign_in")).one()
    assert (row.agent, row.role, row.detail) == ("awa@example.com", "agent", "via oidc")


def test_roles_may_come_from_the_configured_list(oidc_settings: Settings, issuer: str) -> None:
    user(issuer, "carla@example.com", email="carla@example.com", name="Carla")
    client = create_app(oidc_settings).test_client()
    assert sign_in_at_provider(client, "carla@example.com")[0] == 302
    assert "Carla (supervisor)" in client.get("/console/").get_data(as_text=True)


def test_a_designer_lands_on_the_simulator(oidc_settings: Settings, issuer: str) -> None:
    user(issuer, "fatou", name="Fatou", roles="designer")
    client = create_app(oidc_settings).test_client()
    status, where = sign_in_at_provider(client, "fatou")
    assert status == 302 and where.endswith("/simulator/")
    assert client.get("/console/").status_code == 403


def test_someone_without_an_agent_role_is_refused_and_the_refusal_audited(oidc_settings: Settings,
                                                                           issuer: str) -> None:
    user(issuer, "mallory@example.com", email="mallory@example.com", roles=["customer"])
    client = create_app(oidc_settings).test_client()
    status, body = sign_in_at_provider(client, "mallory@example.com")
    assert status == 403 and "no agent role was granted" in body
    assert client.get("/console/").status_code == 302
    with make_sessions(oidc_settings.database_url)() as db:
        row = db.scalars(select(AgentAuditRow)).one()
    assert (row.agent, row.outcome) == ("mallory@example.com", "refused")


def test_a_denied_or_forged_callback_signs_no_one_in(oidc_settings: Settings, issuer: str) -> None:
    user(issuer, "awa@example.com", roles=["agent"])
    client = create_app(oidc_settings).test_client()
    status, body = sign_in_at_provider(client, "awa@example.com", action="deny")
    assert status == 403 and "did not sign you in" in body
    forged = client.get("/agents/oidc/callback?code=stolen&state=guess")
    assert forged.status_code == 400 and forged.mimetype == "text/html"
    assert "could not be completed" in forged.get_data(as_text=True)
    assert client.get("/console/").status_code == 302
