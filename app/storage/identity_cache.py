"""Who a number is, cached (``dialogs.stores.IdentityCache``), and the repositories that forget it on change.

A known customer's dial is then served without the back office and without SQL. The entry lives
``IDENTITY_CACHE_SECONDS`` at most, and is dropped the moment a link is added or undone, the language
or the channel of notifications is chosen, an e-mail address confirmed, or the PIN is set, changed, locked or unlocked, by the repositories below (every writer of
those records goes through them: dialogs, the worker, ``python -m app pin-unlock``).

Redis keys name no phone number: ``identity:<keyed BLAKE2b of the number>``.

The session store reads a caller's entry with the session, in the same round trip (``key_for`` and
``preload``, ``engine.store.ReadAhead``): the dial's ``get`` then costs no round trip of its own. What
was preloaded serves the hop's thread only, until the hop ends or the entry is forgotten or stored.

A change must not be undone by a dial that read the records just before it and stores what it read
just after: ``forget`` leaves a tombstone for ``TOMBSTONE_SECONDS`` (longer than a hop may last), and
``put`` only stores where nothing is kept, so the number is served from the records until it expires.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import AccountLink, EmailCheck, IdentityCache, PinVerdict

from .contacts import SqlContacts
from .pins import SqlPinVault
from .repositories import SqlAccountLinks, SqlPreferences

__all__ = ["TOMBSTONE_SECONDS", "ForgetfulAccountLinks", "ForgetfulContacts", "ForgetfulPinVault",
           "ForgetfulPreferences",
           "MemoryIdentityCache", "RedisIdentityCache"]

log = logging.getLogger("app.identity")

TOMBSTONE_SECONDS = 15   # > the hop deadline (8 s): no dial that began before a change stores after it
_TOMBSTONE = "-"


_NOT_READ = object()


class RedisIdentityCache:
    """The identity of each number as one JSON string with a TTL, shared by every worker."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, key_secret: bytes = b"") -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._secret = key_secret[:64]   # BLAKE2b takes a key of 64 bytes at most
        self._ahead = threading.local()  # msisdn -> raw value read with the hop's session

    def _key(self, msisdn: str) -> str:
        return "identity:" + hashlib.blake2b(msisdn.encode(), key=self._secret, digest_size=16).hexdigest()

    # ``engine.store.ReadAhead``: the session store reads the entry with the session.
    def key_for(self, customer: str) -> str | None:
        return self._key(customer)

    def preload(self, customer: str, raw: bytes | None) -> None:
        self._ahead.__dict__[customer] = raw

    def release(self, customer: str) -> None:
        self._ahead.__dict__.pop(customer, None)

    def get(self, msisdn: str) -> dict[str, Any] | None:
        raw = self._ahead.__dict__.pop(msisdn, _NOT_READ)   # once: a second look reads Redis again
        if raw is _NOT_READ:
            try:
                raw = self._client.get(self._key(msisdn))
            except redis.RedisError as exc:
                log.warning("identity cache unreachable, asking the systems of record: %s", exc)
                return None
        if raw is None or raw == _TOMBSTONE.encode():
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, msisdn: str, identity: dict[str, Any]) -> None:
        self.release(msisdn)
        try:
            self._client.set(self._key(msisdn), json.dumps(identity, separators=(",", ":")), ex=self._ttl, nx=True)
        except redis.RedisError as exc:
            log.warning("identity cache unreachable, identity not kept: %s", exc)

    def forget(self, msisdn: str) -> None:
        self.release(msisdn)
        self._client.set(self._key(msisdn), _TOMBSTONE, ex=TOMBSTONE_SECONDS)


class MemoryIdentityCache:
    """The same cache in this process only: the embedded default without ``REDIS_URL`` (one worker)."""

    def __init__(self, ttl_seconds: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, str]] = {}   # msisdn -> (expires at, JSON or tombstone)
        self._lock = threading.Lock()

    def _live(self, msisdn: str) -> str | None:
        entry = self._entries.get(msisdn)
        if entry is not None and entry[0] <= self._clock():
            del self._entries[msisdn]
            return None
        return entry[1] if entry is not None else None

    def get(self, msisdn: str) -> dict[str, Any] | None:
        with self._lock:
            raw = self._live(msisdn)
        # Kept serialised, so that a caller changing what it got cannot change the cache.
        return json.loads(raw) if raw is not None and raw != _TOMBSTONE else None

    def put(self, msisdn: str, identity: dict[str, Any]) -> None:
        with self._lock:
            now = self._clock()
            if len(self._entries) > 100_000:   # bounded: drop what has expired
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if self._live(msisdn) is None:
                self._entries[msisdn] = (now + self._ttl, json.dumps(identity))

    def forget(self, msisdn: str) -> None:
        with self._lock:
            self._entries[msisdn] = (self._clock() + TOMBSTONE_SECONDS, _TOMBSTONE)


class ForgetfulAccountLinks(SqlAccountLinks):
    """Links on SQL; a link added or removed drops the number's cached identity."""

    def __init__(self, sessions: sessionmaker[Session], cache: IdentityCache) -> None:
        super().__init__(sessions)
        self._cache = cache

    def link(self, msisdn: str, account_number: str, source: str, undo_hash: str | None = None) -> AccountLink:
        result = super().link(msisdn, account_number, source, undo_hash)
        # A link to an account the billing register gives the number changes nothing the identity shows
        # (the register showed it already); it is written by the very dial that is about to store it.
        if source != "billing":
            self._cache.forget(msisdn)
        return result

    def unlink(self, msisdn: str, account_number: str) -> bool:
        removed = super().unlink(msisdn, account_number)
        self._cache.forget(msisdn)
        return removed

    def undo(self, account_number: str, code: str) -> str | None:
        msisdn = super().undo(account_number, code)
        if msisdn is not None:
            self._cache.forget(msisdn)
        return msisdn


class ForgetfulPreferences(SqlPreferences):
    """Preferences on SQL; a language chosen drops the number's cached identity."""

    def __init__(self, sessions: sessionmaker[Session], cache: IdentityCache) -> None:
        super().__init__(sessions)
        self._cache = cache

    def set_language(self, msisdn: str, language: str) -> None:
        super().set_language(msisdn, language)
        self._cache.forget(msisdn)


class ForgetfulPinVault(SqlPinVault):
    """PINs on SQL; a PIN set, changed, locked or unlocked drops the number's cached identity."""

    def __init__(self, sessions: sessionmaker[Session], cache: IdentityCache) -> None:
        super().__init__(sessions)
        self._cache = cache

    def verify(self, msisdn: str, pin: str, now: datetime) -> PinVerdict:
        verdict = super().verify(msisdn, pin, now)
        if verdict.newly_locked:
            self._cache.forget(msisdn)
        return verdict

    def unlock(self, msisdn: str) -> bool:
        unlocked = super().unlock(msisdn)
        self._cache.forget(msisdn)
        return unlocked

    def set_pin(self, msisdn: str, pin: str) -> None:
        super().set_pin(msisdn, pin)
        self._cache.forget(msisdn)

    def confirm_pin(self, msisdn: str, pin: str) -> bool:
        confirmed = super().confirm_pin(msisdn, pin)
        if confirmed:
            self._cache.forget(msisdn)
        return confirmed


class ForgetfulContacts(SqlContacts):
    """Where notifications go, on SQL; a channel chosen or an address confirmed drops the cached identity
    (it is part of what the product knows of the number, like the language)."""

    def __init__(self, sessions: sessionmaker[Session], cache: IdentityCache) -> None:
        super().__init__(sessions)
        self._cache = cache

    def set_channel(self, msisdn: str, channel: str, *, via: str, source: str) -> None:
        super().set_channel(msisdn, channel, via=via, source=source)
        self._cache.forget(msisdn)

    def confirm_email(self, msisdn: str, code: str, now: datetime, *, via: str, source: str) -> EmailCheck:
        verdict = super().confirm_email(msisdn, code, now, via=via, source=source)
        if verdict == "ok":
            self._cache.forget(msisdn)
        return verdict
