"""Pytest fixtures serving the reference back office on loopback, for any test folder.

Registered for the whole suite by ``tests/conftest.py`` (``pytest_plugins``)::

    def test_balance(backoffice_url):
        requests.get(f"{backoffice_url}/api/v1/accounts/1000001/balance")
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import flask
import pytest

from backoffice import BackofficeConfig, create_app
from backoffice.db import make_engine, make_session_factory
from backoffice.models import Base
from backoffice.seed import seed_demo
from tests.support.clock import SettableClock
from tests.support.services import serve_wsgi

CALLBACK_SECRET = "test-callback-secret"


@pytest.fixture(scope="session")
def backoffice_seeded_at() -> datetime:
    """When the demo data of this run was seeded (aware UTC, whole seconds): its readings end then."""
    return datetime.now(UTC).replace(microsecond=0)


def seed_template(tmp_path_factory: pytest.TempPathFactory, at: datetime) -> Path:
    """A SQLite file holding the demo data as seeded at ``at`` (aware UTC): readings end then."""
    path = tmp_path_factory.mktemp("backoffice-template") / "backoffice.db"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    seed_demo(make_session_factory(engine), now=at.astimezone(UTC).replace(tzinfo=None))
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def seeded_backoffice_db(tmp_path_factory: pytest.TempPathFactory, backoffice_seeded_at: datetime) -> Path:
    """The demo data seeded once per test run (about 2 s); each test gets a copy of the file.

    A module whose clock is fixed overrides this (module scope) with ``seed_template`` at its own instant."""
    return seed_template(tmp_path_factory, backoffice_seeded_at)


@pytest.fixture
def backoffice_config(tmp_path: Path, seeded_backoffice_db: Path) -> BackofficeConfig:
    """A fresh SQLite file (a copy of the seeded one), demo data, manual approval, fast callback retries.

    Development mode (no API key: tests call it as ``make run`` does); callbacks to any loopback port,
    where the tests' receivers listen. ``tests/backoffice/test_setup.py`` covers the closed mode.
    """
    shutil.copyfile(seeded_backoffice_db, tmp_path / "backoffice.db")
    return BackofficeConfig(
        database_url=f"sqlite:///{tmp_path / 'backoffice.db'}",
        callback_secret=CALLBACK_SECRET,
        payment_approval="manual",
        payment_delay=0.0,
        seed_demo=True,
        callback_backoff=0.05,
        callback_hosts=("127.0.0.1",),
        dev=True,
    )


@pytest.fixture
def backoffice_app(backoffice_config: BackofficeConfig, product_clock: SettableClock | None) -> Iterator[flask.Flask]:
    """The back office on the test's ``product_clock`` (the wall clock unless the module sets one)."""
    app = create_app(backoffice_config, clock=product_clock)
    try:
        yield app
    finally:
        app.extensions["backoffice"].close()


@pytest.fixture
def backoffice_url(backoffice_app: flask.Flask) -> Iterator[str]:
    """Base URL (no trailing slash) of a freshly seeded back office served on 127.0.0.1."""
    with serve_wsgi(backoffice_app) as url:
        yield url
