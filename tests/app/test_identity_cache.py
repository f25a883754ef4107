"""Who a number is, cached: a known customer's second dial reaches neither the back office nor the
database, and every change of a link, the language or the PIN shows on the very next dial."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import Engine, event

from app.factory import create_app
from app.settings import Settings
from app.storage import migrate
from app.storage.identity_cache import TOMBSTONE_SECONDS, MemoryIdentityCache, RedisIdentityCache
from app.storage.pins import SqlPinVault
from dialogs.stores import ContactInfo
from tests.support.engine import UssdPhone
from tests.support.services import serve_wsgi

NAV = "0. Retour 00. Accueil"


@dataclass
class CountingWsgi:
    """The back office behind a counter of the requests that reach it."""

    inner: Callable[..., Iterable[bytes]]
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            self.paths.append(environ.get("PATH_INFO", ""))
        return self.inner(environ, start_response)


@dataclass
class SqlCounter:
    """Every statement the product's database engine runs."""

    statements: list[str] = field(default_factory=list)

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement.strip().split()[0].upper())

    def commit(self, conn: Any) -> None:
        self.statements.append("COMMIT")

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s in ("INSERT", "UPDATE", "DELETE", "COMMIT")]


@dataclass
class Product:
    app: Flask
    backoffice: CountingWsgi
    sql: SqlCounter

    @property
    def deps(self) -> Any:
        return self.app.extensions["parts"]["deps"]

    def phone(self, msisdn: str) -> UssdPhone:
        return UssdPhone(self.app.test_client(), msisdn)

    def quiet(self) -> None:
        self.backoffice.paths.clear()
        self.sql.statements.clear()


@pytest.fixture(params=["redis", "embedded", "postgres"])
def product(settings: Settings, backoffice_app: Flask, request: pytest.FixtureRequest) -> Iterator[Product]:
    """The product on Redis (with SQLite, and with PostgreSQL as in production), and as embedded without
    ``REDIS_URL`` (the cache then lives in the process)."""
    counting = CountingWsgi(backoffice_app.wsgi_app)
    redis_url = None if request.param == "embedded" else settings.redis_url
    database_url = settings.database_url
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres_url")
        migrate(database_url)
    with serve_wsgi(counting) as url:
        app = create_app(replace(settings, backoffice_url=url, redis_url=redis_url, database_url=database_url))
        db_engine: Engine = app.extensions["parts"]["db"].kw["bind"]
        counter = SqlCounter()
        event.listen(db_engine, "before_cursor_execute", counter)
        event.listen(db_engine, "commit", counter.commit)
        try:
            yield Product(app, counting, counter)
        finally:
            event.remove(db_engine, "before_cursor_execute", counter)
            event.remove(db_engine, "commit", counter.commit)


def test_a_known_customers_second_dial_calls_no_back_office_and_writes_nothing(product):
    first = product.phone("+221770000001").dial()
    assert first.startswith("CON ElecNet - 1000001\n1. Solde et factures")
    assert product.backoffice.paths                         # the first dial asked the billing register
    product.quiet()
    assert product.phone("+221770000001").dial() == first
    assert product.backoffice.paths == []
    assert product.sql.writes == []
    assert product.sql.statements == []                     # not even a read


def test_a_first_dial_writes_links_only_when_they_are_new(product):
    product.phone("+221770000001").dial()
    product.app.extensions["parts"]["deps"].identity.forget("+221770000001")   # the cache expired
    product.quiet()
    assert product.phone("+221770000001").dial().startswith("CON ElecNet - 1000001")
    assert product.backoffice.paths                         # a miss asks the register again
    assert product.sql.writes == []                         # the link is already there


def test_fresh_figures_still_come_from_the_back_office(product):
    p = product.phone("+221770000001")
    p.dial()
    p = product.phone("+221770000001")
    p.dial()
    product.quiet()
    assert p.answer("1").startswith("CON Compte 1000001\nA payer:")
    assert any("balance" in path for path in product.backoffice.paths)


def test_a_new_link_shows_on_the_next_dial(product):
    assert product.phone("+221770000003").dial().startswith("CON ElecNet - 3000001")
    product.deps.links.link("+221770000003", "1000001", "self-service")
    assert product.phone("+221770000003").dial() == (
        "CON Choisissez un compte:\n1. 3000001 DKR-PARCELLES\n2. 1000001 DKR-MEDINA")


def test_a_link_undone_by_the_holder_shows_on_the_linked_numbers_next_dial(product):
    stranger = product.phone("+221770016666")
    stranger.dial()
    stranger.answer("1")
    stranger.answer("1000001")
    stranger.answer("5500")
    [sent] = [e for e in product.deps.outbox.pending() if e["kind"] == "link_code"]
    assert stranger.answer(sent["payload"]["code"]).startswith("CON Compte 1000001 lié à votre numéro.")
    assert product.phone("+221770016666").dial().startswith("CON ElecNet - 1000001")   # now cached
    holder = product.phone("+221770000001")
    holder.dial()
    holder.answer("8")
    assert holder.answer("5").startswith("CON ")
    holder.answer("1")                  # the stranger's number
    holder.answer("1")                  # confirm
    assert product.deps.links.accounts_for("+221770016666") == []
    assert product.phone("+221770016666").dial().startswith(
        "CON Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")


def test_a_language_change_shows_on_the_next_dial(product):
    p = product.phone("+221770000001")
    assert p.dial().startswith("CON ElecNet - 1000001\n1. Solde et factures")
    p.answer("8")
    p.answer("1")
    assert p.answer("2") == "CON Language saved: English.\n1. Main menu\n0. Back 00. Home"
    assert product.phone("+221770000001").dial().startswith("CON ElecNet - 1000001\n1. Balance and bills")


def test_choosing_the_language_already_chosen_writes_nothing(product):
    product.deps.preferences.set_language("+221770000001", "en")
    product.quiet()
    product.deps.preferences.set_language("+221770000001", "en")
    assert product.sql.writes == []
    product.deps.preferences.set_language("+221770000001", "fr")
    assert product.sql.writes == ["UPDATE", "COMMIT"]


def test_a_channel_chosen_drops_the_cached_identity(product):
    msisdn = "+221770000001"
    product.phone(msisdn).dial()
    product.quiet()
    product.phone(msisdn).dial()
    assert product.backoffice.paths == []      # known, served from the cache
    product.deps.contacts.set_channel(msisdn, "whatsapp", via="ussd", source="menu")
    product.quiet()
    product.phone(msisdn).dial()
    assert product.backoffice.paths             # asked the systems of record again
    assert product.deps.contacts.contact(msisdn) == ContactInfo("whatsapp", None, None, chosen=True)


@pytest.mark.parametrize("change", ["set", "locked", "unlocked"])
def test_a_pin_change_makes_the_next_dial_ask_the_systems_of_record(product, change):
    msisdn = "+221770000001"
    long_ago = SqlPinVault(product.app.extensions["parts"]["db"])   # before anything was cached
    if change != "set":
        long_ago.set_pin(msisdn, "4821")
    if change == "unlocked":
        for wrong in ("1357", "2468", "3579"):
            long_ago.verify(msisdn, wrong, datetime.now(UTC))
    product.phone(msisdn).dial()
    product.quiet()
    product.phone(msisdn).dial()
    assert product.backoffice.paths == []      # known, served from the cache
    if change == "set":
        product.deps.pins.set_pin(msisdn, "4821")
    elif change == "locked":
        p = product.phone(msisdn)
        p.dial()
        p.answer("8")
        p.answer("3")
        p.answer("1357")
        p.answer("2468")
        assert p.answer("3579").startswith("END Code PIN bloqué")
    else:
        assert product.deps.pins.unlock(msisdn)
    product.quiet()
    assert product.phone(msisdn).dial().startswith("CON ElecNet - 1000001")
    assert product.backoffice.paths             # not served from what was known before the change


# ---------------------------------------------------------------- the two caches, one contract
class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["redis", "memory"])
def cache_and_clock(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Clock | None]]:
    if request.param == "memory":
        clock = Clock()
        yield MemoryIdentityCache(ttl_seconds=60, clock=clock), clock
        return
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    yield RedisIdentityCache(client, ttl_seconds=60), None
    client.close()


def test_a_cached_identity_comes_back_until_forgotten(cache_and_clock):
    cache, _ = cache_and_clock
    identity = {"accounts": [{"account_number": "1000001", "zone": "DKR-MEDINA"}], "language": "fr"}
    assert cache.get("+221770000001") is None
    cache.put("+221770000001", identity)
    assert cache.get("+221770000001") == identity
    assert cache.get("+221770000002") is None
    cache.forget("+221770000001")
    assert cache.get("+221770000001") is None


def test_a_cached_identity_expires(cache_and_clock, redis_url):
    cache, clock = cache_and_clock
    cache.put("+221770000001", {"accounts": [], "language": "en"})
    if clock is None:
        client = redis.Redis.from_url(redis_url)
        [key] = [k for k in client.keys("*") if k != b"tests:claimed-by"]
        assert 0 < client.ttl(key) <= 60
        assert b"+221770000001" not in key          # the key names no phone number
        client.close()
    else:
        clock.now += 59
        assert cache.get("+221770000001") is not None
        clock.now += 2
        assert cache.get("+221770000001") is None


def test_a_dial_that_read_the_records_before_a_change_does_not_store_them_after_it(cache_and_clock):
    cache, clock = cache_and_clock
    before = {"accounts": [{"account_number": "1000001"}], "language": "fr"}
    cache.forget("+221770000001")               # the link is undone while a dial is between read and store
    cache.put("+221770000001", before)
    assert cache.get("+221770000001") is None
    if clock is not None:
        clock.now += TOMBSTONE_SECONDS + 1
        cache.put("+221770000001", before)
        assert cache.get("+221770000001") == before
