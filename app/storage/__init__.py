"""The product's own database: tables, engine set-up and the SQL repositories."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from .alerts import SqlOutbox, SqlSubscriptions
from .consent import SqlConsent
from .payments import SqlPaymentLedger
from .pins import SqlPinVault
from .repositories import SqlAccountLinks, SqlAuditSink, SqlPreferences
from .security_audit import SqlSecurityAudit, pseudonym
from .throttle import MemoryThrottle, RedisThrottle
from .tickets import SqlPendingTickets

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "MemoryThrottle",
    "RedisThrottle",
    "SqlAccountLinks",
    "SqlAuditSink",
    "SqlConsent",
    "SqlOutbox",
    "SqlPaymentLedger",
    "SqlPendingTickets",
    "SqlPinVault",
    "SqlPreferences",
    "SqlSecurityAudit",
    "SqlSubscriptions",
    "make_sessions",
    "migrate",
    "pseudonym",
]

ROOT = Path(__file__).resolve().parents[2]


# Seconds a PostgreSQL connection may take to open (libpq's ``connect_timeout``) unless DATABASE_URL says
# otherwise (``?connect_timeout=N``). Without one, a server that takes the connection and never answers (hung,
# or behind a dead link) holds the request's thread for ever: a hop, a webhook's answer, a worker's pass.
CONNECT_TIMEOUT_SECONDS = 5


def make_sessions(database_url: str) -> sessionmaker[Session]:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine: Engine = create_engine(database_url, pool_pre_ping=True, connect_args=_connect_args(database_url))
    return sessionmaker(engine, expire_on_commit=False)


def _connect_args(database_url: str) -> dict[str, object]:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or "connect_timeout" in url.query:
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}


def migrate(database_url: str) -> None:
    """Bring the database to the latest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")
