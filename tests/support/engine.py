"""Fixtures that serve the whole product: engine app on Redis and a migrated database, the
back office on loopback, and a ``UssdPhone`` that talks to the USSD callback like the gateway."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app.factory import create_app
from app.settings import Settings
from app.storage import migrate
from app.web_servers import DEFAULT_SERVER, engine_command

from .clock import SettableClock
from .ports import release_port, reserve_port
from .services import POSTGRES_TEST_URL, REDIS_TEST_URL, clean_redis, need_service, serve_wsgi, start_serving

_ids = itertools.count(1)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """This run's own Redis database (see ``services``), empty at the start and the end of the test."""
    need_service("Redis", REDIS_TEST_URL, 6379)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    clean_redis(client)
    yield REDIS_TEST_URL
    clean_redis(client)
    client.close()


ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def served_engine(settings: Settings, log_path: Path, web_server: str = DEFAULT_SERVER,
                  **env: str) -> Iterator[str]:
    """The engine as ``app serve`` runs it, one worker under ``web_server``, on ``settings``' database, Redis and
    back office (and ``env`` besides), its output in ``log_path``: its base URL while the block runs."""
    environ = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or "",
               "BACKOFFICE_URL": settings.backoffice_url, "PAYMENT_CALLBACK_SECRET": "test-callback-secret",
               "SECRET_KEY": "test-served-key", **env}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        with log_path.open("w") as log:
            return subprocess.Popen(engine_command(web_server, "127.0.0.1", ports[0], 1), cwd=ROOT, env=environ,
                                    stdout=log, stderr=subprocess.STDOUT)

    server, [port] = start_serving(launch, lambda ports: f"http://127.0.0.1:{ports[0]}/healthz", log_path)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def engine_port() -> Iterator[int]:
    """The engine's port, held from now: a test whose back office calls the engine back puts its public URL in
    the settings before the engine is served there (``serve_wsgi`` takes the held socket)."""
    port = reserve_port()
    yield port
    release_port(port)


@pytest.fixture(scope="session")
def migrated_engine_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's schema migrated once per test run; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("engine-template") / "engine.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine_db(tmp_path: Path, migrated_engine_db: Path) -> str:
    """A fresh, migrated SQLite database of the product for one test."""
    shutil.copyfile(migrated_engine_db, tmp_path / "engine.db")
    return f"sqlite:///{tmp_path / 'engine.db'}"


@pytest.fixture
def settings(engine_db: str, redis_url: str, backoffice_url: str, product_clock: SettableClock | None) -> Settings:
    # Transcripts redial often; resuming a dropped session has its own tests.
    found = Settings(database_url=engine_db, redis_url=redis_url, backoffice_url=backoffice_url,
                     backend_connect_timeout=0.5, backend_read_timeout=2.0,
                     payment_callback_secret="test-callback-secret", resume_window_seconds=0)
    return found if product_clock is None else replace(found, clock=product_clock)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


class UssdPhone:
    """A handset on the gateway: ``dial()`` opens a session, ``answer(x)`` sends one more input.

    Keeps the cumulative ``text`` as Africa's Talking does and returns the screen body with
    its ``CON``/``END`` prefix, so tests read like transcripts.
    """

    def __init__(self, client: FlaskClient, msisdn: str, service_code: str = "*123#") -> None:
        self.client = client
        self.msisdn = msisdn
        self.service_code = service_code
        self.session_id = ""
        self.inputs: list[str] = []
        self.last_status = 0

    def post(self, text: str) -> str:
        response = self.client.post("/ussd/africastalking", data={
            "sessionId": self.session_id, "serviceCode": self.service_code, "phoneNumber": self.msisdn,
            "text": text, "networkCode": "99999"})
        self.last_status = response.status_code
        assert response.mimetype == "text/plain"
        body = response.get_data(as_text=True)
        assert body.startswith(("CON ", "END ")), body
        assert len(body) <= 182, f"screen of {len(body)} characters:\n{body}"
        return body

    def dial(self, *preset: str) -> str:
        self.session_id = f"ATUid_{uuid.uuid4().hex[:12]}_{next(_ids)}"
        self.inputs = list(preset)
        return self.post("*".join(self.inputs))

    def answer(self, value: str) -> str:
        self.inputs.append(value)
        return self.post("*".join(self.inputs))


@pytest.fixture
def phone(app: Flask) -> Callable[[str], UssdPhone]:
    client = app.test_client()
    return lambda msisdn: UssdPhone(client, msisdn)


@pytest.fixture
def stoppable(settings: Settings, backoffice_app: Flask) -> Iterator[tuple[UssdPhone, Callable[[], None]]]:
    """A phone on an app whose back office can be stopped in the middle of a session: (phone, stop)."""
    with ExitStack() as stack:
        url = stack.enter_context(serve_wsgi(backoffice_app))
        app = create_app(replace(settings, backoffice_url=url))
        yield UssdPhone(app.test_client(), "+221770000001"), stack.close


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated product database in a schema of its own on the test PostgreSQL, dropped afterwards."""
    need_service("PostgreSQL", POSTGRES_TEST_URL, 5432)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_TEST_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_TEST_URL}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
