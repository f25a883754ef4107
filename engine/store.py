"""Where sessions live between hops: Redis in production and tests, memory as the embedded default.

Both stores give the engine the same guarantees: ``lock(key)`` serialises the hops of
one session (two concurrent hops never lose an update), and ``save`` sets a TTL.
"""

from __future__ import annotations

import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from .session import Session

__all__ = [
    "LockedSession",
    "MemorySessionStore",
    "RedisSessionStore",
    "SessionBusy",
    "SessionStore",
    "StoreUnavailable",
]


class StoreUnavailable(Exception):
    """The session store cannot be reached."""


class SessionBusy(Exception):
    """Another hop of the same session holds the lock for longer than we can wait."""


class LockedSession:
    """A session loaded under its lock; ``save`` stores it (the lock is released on leaving)."""

    def __init__(self, session: Session | None, save: Callable[[Session, int], None]) -> None:
        self.session = session
        self._save = save

    def save(self, session: Session, ttl_seconds: int) -> None:
        self._save(session, ttl_seconds)


class SessionStore(ABC):
    """Loads and saves sessions by key. Every method may raise ``StoreUnavailable``."""

    @contextmanager
    def locked(self, key: str, wait_seconds: float = 3.0) -> Iterator[LockedSession]:
        """Lock, load, and let the caller save: the whole read-modify-write of one hop."""
        with self.lock(key, wait_seconds):
            yield LockedSession(self.load(key), self.save)

    @abstractmethod
    def load(self, key: str) -> Session | None:
        """The session, or ``None`` when absent or expired."""

    @abstractmethod
    def save(self, session: Session, ttl_seconds: int) -> None:
        """Store the session for ``ttl_seconds``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget the session."""

    @abstractmethod
    def latest(self, channel: str, user_id: str) -> str | None:
        """The key of the user's most recent unfinished session on a channel (for resuming a dropped
        session on redial); every ``save`` keeps it up to date for ``resume_seconds``."""

    @abstractmethod
    @contextmanager
    def lock(self, key: str, wait_seconds: float = 3.0) -> Iterator[None]:
        """Hold the session's lock; raises ``SessionBusy`` after ``wait_seconds``."""

    def ping(self) -> bool:
        return True


class MemorySessionStore(SessionStore):
    """In-process store: one worker only, nothing survives a restart. The embedded default."""

    def __init__(self, resume_seconds: int = 300, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` (seconds, monotonic) times the sessions' TTLs and the resume window."""
        self._clock = clock
        self._items: dict[str, tuple[float, str]] = {}
        self._latest: dict[tuple[str, str], tuple[float, str]] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._resume_seconds = resume_seconds

    def load(self, key: str) -> Session | None:
        with self._guard:
            item = self._items.get(key)
            if item is None or item[0] < self._clock():
                self._items.pop(key, None)
                return None
            return Session.from_json(item[1])

    def save(self, session: Session, ttl_seconds: int) -> None:
        with self._guard:
            self._items[session.key] = (self._clock() + ttl_seconds, session.to_json())
            if session.ended:
                self._latest.pop((session.channel, session.user_id), None)
            else:
                self._latest[(session.channel, session.user_id)] = (self._clock() + self._resume_seconds,
                                                                    session.key)
            if len(self._items) > 10_000:
                now = self._clock()
                for k in [k for k, (exp, _) in self._items.items() if exp < now]:
                    del self._items[k]

    def delete(self, key: str) -> None:
        with self._guard:
            self._items.pop(key, None)

    def latest(self, channel: str, user_id: str) -> str | None:
        with self._guard:
            item = self._latest.get((channel, user_id))
            return item[1] if item and item[0] >= self._clock() else None

    @contextmanager
    def lock(self, key: str, wait_seconds: float = 3.0) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=wait_seconds):
            raise SessionBusy(key)
        try:
            yield
        finally:
            lock.release()
            with self._guard:
                if not lock.locked():
                    self._locks.pop(key, None)


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class RedisSessionStore(SessionStore):
    """Sessions as JSON strings with a TTL; a per-session lock with an owner token."""

    # One neutral prefix for every channel: the session keys themselves carry the channel.
    def __init__(self, client: redis.Redis, prefix: str = "conv:", lock_ttl_ms: int = 10_000,
                 resume_seconds: int = 300) -> None:
        self._redis = client
        self._prefix = prefix
        self._lock_ttl_ms = lock_ttl_ms
        self._resume_seconds = resume_seconds
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> RedisSessionStore:
        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                      health_check_interval=30)
        return cls(client, **kwargs)  # type: ignore[arg-type]

    def _key(self, key: str) -> str:
        return f"{self._prefix}s:{key}"

    def load(self, key: str) -> Session | None:
        try:
            raw = self._redis.get(self._key(key))
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return None if raw is None else Session.from_json(raw)  # type: ignore[arg-type]

    def _latest_key(self, channel: str, user_id: str) -> str:
        return f"{self._prefix}u:{channel}:{user_id}"

    def _queue_save(self, pipe: redis.client.Pipeline, session: Session, ttl_seconds: int) -> None:
        pipe.set(self._key(session.key), session.to_json(), ex=ttl_seconds)
        if session.ended:
            pipe.delete(self._latest_key(session.channel, session.user_id))
        else:
            pipe.set(self._latest_key(session.channel, session.user_id), session.key, ex=self._resume_seconds)

    def save(self, session: Session, ttl_seconds: int) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            self._queue_save(pipe, session, ttl_seconds)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def latest(self, channel: str, user_id: str) -> str | None:
        try:
            raw = self._redis.get(self._latest_key(channel, user_id))
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return raw.decode() if isinstance(raw, bytes) else raw

    def delete(self, key: str) -> None:
        try:
            self._redis.delete(self._key(key))
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _acquire(self, key: str, token: str, wait_seconds: float) -> bytes | None:
        """Take the session's lock (retrying with backoff until ``wait_seconds``) and, in the same
        round trip, read the session; the raw session or None."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.002
        try:
            while True:
                pipe = self._redis.pipeline(transaction=False)
                pipe.set(self._lock_key(key), token, nx=True, px=self._lock_ttl_ms)
                pipe.get(self._key(key))
                acquired, raw = pipe.execute()
                if acquired:
                    return raw  # type: ignore[no-any-return]
                if time.monotonic() >= deadline:
                    raise SessionBusy(key)
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _lock_key(self, key: str) -> str:
        return f"{self._prefix}l:{key}"

    @contextmanager
    def lock(self, key: str, wait_seconds: float = 3.0) -> Iterator[None]:
        token = uuid.uuid4().hex
        self._acquire(key, token, wait_seconds)
        try:
            yield
        finally:
            try:
                self._release(keys=[self._lock_key(key)], args=[token])
            except redis.RedisError:
                pass  # the lock expires by itself

    @contextmanager
    def locked(self, key: str, wait_seconds: float = 3.0) -> Iterator[LockedSession]:
        """One round trip to take the lock and read the session, one to save and release:
        as few as a bare GET + SET, which is what a hop costs at the least."""
        name, token = self._lock_key(key), uuid.uuid4().hex
        raw = self._acquire(key, token, wait_seconds)
        pending: list[tuple[Session, int]] = []
        try:
            yield LockedSession(None if raw is None else Session.from_json(raw), lambda s, t: pending.append((s, t)))
        finally:
            try:
                pipe = self._redis.pipeline(transaction=False)
                for session, ttl in pending[-1:]:
                    self._queue_save(pipe, session, ttl)
                # EVAL rather than the registered script: in a pipeline redis-py would first ask
                # SCRIPT EXISTS, one more round trip per hop.
                pipe.eval(_RELEASE, 1, name, token)
                pipe.execute()
            except redis.RedisError as exc:
                if pending:
                    raise StoreUnavailable(str(exc)) from exc

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False
