"""The product's own database: tables, engine set-up and the SQL repositories."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from .alerts import SqlOutbox, SqlSubscriptions
from .answer_bound import ANSWER_MARGIN_SECONDS, bound_answers
from .consent import SqlConsent
from .payments import SqlPaymentLedger
from .pins import SqlPinVault
from .repositories import SqlAccountLinks, SqlAuditSink, SqlPreferences
from .security_audit import SqlSecurityAudit, pseudonym
from .throttle import MemoryThrottle, RedisThrottle
from .tickets import SqlPendingTickets

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "LOCK_TIMEOUT_SECONDS",
    "STATEMENT_TIMEOUT_SECONDS",
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
# Once connected, the longest a statement may run, and the longest it may wait for a lock another session holds
# (a row a long transaction updates, a table a migration locks), before PostgreSQL cancels it: the hop then
# gets its "service unavailable" answer instead of outliving the gateway's 15 s. Settings
# DATABASE_STATEMENT_TIMEOUT_SECONDS and DATABASE_LOCK_TIMEOUT_SECONDS; the URL's own ``options=-c
# statement_timeout=...`` wins. The lock wait is the shorter: a hop may meet more than one locked table.
STATEMENT_TIMEOUT_SECONDS = 5.0
LOCK_TIMEOUT_SECONDS = 3.0
# A peer that died or went behind a dead link answers nothing, not even an error, and a cancelled statement's
# answer never comes: TCP keepalives probe an idle connection after 10 s, then every 3 s, and give it up after 3
# unanswered probes; unacknowledged data is given up after 20 s (libpq's ``tcp_user_timeout``, milliseconds).
# Each may be set in the URL instead (``?keepalives_idle=30``).
KEEPALIVES: dict[str, int] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
                              "keepalives_count": 3, "tcp_user_timeout": 20_000}
# The embedded SQLite file: how long a write waits for another process's (the worker's) write lock, as
# Python's sqlite3 default; the URL's ``?timeout=N`` wins.
SQLITE_BUSY_TIMEOUT_SECONDS = 5.0


def make_sessions(database_url: str, *, statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
                  lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> sessionmaker[Session]:
    """Sessions on the product's database, every PostgreSQL connection bounded (connect, statement, lock wait,
    dead peer: see the constants above); ``statement_timeout``/``lock_timeout`` in seconds, 0 for none."""
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine: Engine = create_engine(database_url, pool_pre_ping=True,
                                   connect_args=_connect_args(database_url, statement_timeout, lock_timeout))
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        # The server's timeouts need a server that answers; this bound does not (answer_bound.py).
        bound_answers(engine, statement_timeout + ANSWER_MARGIN_SECONDS if statement_timeout > 0 else None)
    return sessionmaker(engine, expire_on_commit=False)


def _connect_args(database_url: str, statement_timeout: float, lock_timeout: float) -> dict[str, object]:
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return {} if "timeout" in url.query else {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    if backend != "postgresql":
        return {}
    args: dict[str, object] = {name: value for name, value in
                               {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **KEEPALIVES}.items()
                               if name not in url.query}
    options = _query_value(url.query.get("options"))
    for name, seconds in (("statement_timeout", statement_timeout), ("lock_timeout", lock_timeout)):
        if name not in options:   # the URL's own wins
            options = f"{options} -c {name}={round(seconds * 1000)}".strip()
    args["options"] = options     # connect_args replace the URL's: the URL's options are kept in it
    return args


def _query_value(value: str | tuple[str, ...] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)


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
