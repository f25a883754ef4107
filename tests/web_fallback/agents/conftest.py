"""Fixtures of the agents' pages: the product app with the marked development sign-in, and a signed-in
browser-like client (Flask's test client keeps the session cookie like a browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.factory import create_app
from app.settings import Settings
from tests.support.services import serve_wsgi

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def agents_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, agents_dev_signin=True, secret_key="agents-test-secret",
                   simulator_database_url=f"sqlite:///{tmp_path / 'simulator.db'}", agent_lookup_limit=6)


@pytest.fixture
def agents_app(agents_settings: Settings) -> Flask:
    return create_app(agents_settings)


def csrf_of(client: FlaskClient, path: str = "/agents/signin") -> str:
    """The CSRF token a page carries in its forms, as a browser would submit it."""
    found = _CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no form on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, name: str, role: str) -> str:
    """Sign in through the development form; returns the CSRF token of the signed-in session."""
    response = client.post("/agents/dev-signin", data={"name": name, "role": role, "csrf_token": csrf_of(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_of(client, "/simulator/")


@pytest.fixture
def site(agents_app: Flask) -> Iterator[str]:
    """The product on loopback, where the provider's callbacks reach it."""
    with serve_wsgi(agents_app) as url:
        yield url


@pytest.fixture
def agent(agents_app: Flask) -> tuple[FlaskClient, str]:
    client = agents_app.test_client()
    return client, sign_in(client, "Awa", "agent")


@pytest.fixture
def supervisor(agents_app: Flask) -> tuple[FlaskClient, str]:
    client = agents_app.test_client()
    return client, sign_in(client, "Moussa", "supervisor")
