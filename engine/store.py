"""Where sessions live between hops: Redis in production and tests, memory as the embedded default.

Both stores give the engine the same guarantees: ``lock(key)`` serialises the hops of
one session (two concurrent hops never lose an update), and ``save`` sets a TTL.

A hop on Redis makes two script calls and waits for one: the first takes the lock and reads the
session, the caller's resume pointer and whatever a ``ReadAhead`` asks for (the app's cache of who
the caller is); the second saves, moves the resume pointer and releases the lock, sent before the
hop's answer and confirmed before the thread's next command (``LeanScript.send_later``). The
resume pointer names the caller's latest session only while it can be resumed (waiting for an
input or a confirmation, see ``engine.resume``), so a dial finds nothing to load in the common case;
a save drops it only when it names the session saved (compare-and-delete), so the late save of an
older session (its gateway's end report, a take-over) leaves a newer session's pointer in place.

A key that never carries another conversation once its session is over (USSD: the gateway's
session id) keeps a small ``EndedMarker`` long after the session itself has expired: written by
the saves the engine asks for, read by the lock+load in the same round trip (and by Redis only
when the session itself is absent), so a replayed hop finds it without one more call. What the
marker keeps for the retry of the hop that ended the session (its END) lives under a second key
with a TTL of its own, minutes where the marker's is a day: both are written by the same script
call and read by the same one, and the store hands them back joined, ``value:replay``, the form a
marker kept whole before they were split (which is still read as it was).
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

import redis

from .lean_script import LeanScript, ThreadConnection
from .redis_url import redis_from_url
from .session import Session, UnreadableSession

__all__ = [
    "Caller",
    "EndedMarker",
    "LockedSession",
    "MemorySessionStore",
    "ReadAhead",
    "RedisSessionStore",
    "SessionBusy",
    "SessionStore",
    "StoreUnavailable",
]


class StoreUnavailable(Exception):
    """The session store cannot be reached."""


class SessionBusy(Exception):
    """Another hop of the same session holds the lock for longer than we can wait."""


_UNKNOWN = object()
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sends the hop: the session's channel and address (its resume pointer), the verified customer."""

    channel: str
    address: str
    customer: str | None = None


@dataclass(frozen=True, slots=True)
class EndedMarker:
    """What a session's key keeps for ``seconds`` once saved with it, after the session itself is gone:
    ``value``, a few characters the engine reads back (a language, a tag of the caller), 120 bytes in Redis
    (``MEMORY USAGE``, Redis 7.0) where an ended session takes over a kilobyte, so it can be kept for a day;
    and, for ``replay_seconds`` only, ``replay`` (for a session that ended on an END, that hop's digest and
    answer: a payment's confirmation is not kept a day). Read back as ``value:replay`` while both are kept."""

    value: str
    seconds: int
    replay: str = ""
    replay_seconds: int = 0

    @property
    def replayed(self) -> bool:
        """Whether ``replay`` is kept at all."""
        return bool(self.replay) and self.replay_seconds > 0


def _joined(value: str | bytes | None, replay: str | bytes | None) -> str | None:
    """A marker as the engine reads it: its value, then ``:replay`` while that is kept."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    if replay is None:
        return text
    return f"{text}:{replay.decode() if isinstance(replay, bytes) else replay}"


class ReadAhead(Protocol):
    """Something the hop will read from the same Redis, fetched with the session in one round trip.

    ``key_for(customer)``: the key to read (``None``: nothing); ``preload`` hands over what was read
    (``None`` when absent) before the hop runs; ``release`` drops it when the hop is over."""

    def key_for(self, customer: str) -> str | None: ...

    def preload(self, customer: str, raw: bytes | None) -> None: ...

    def release(self, customer: str) -> None: ...


_Save = Callable[[Session, int, bool, "EndedMarker | None"], None]


class LockedSession:
    """A session loaded under its lock; ``save`` stores it (the lock is released on leaving).

    ``latest``: the caller's resumable session key, when the store read it with the lock
    (``known_latest``); otherwise ask ``SessionStore.latest``. ``marker``: the value of the key's
    ``EndedMarker`` when the session is absent and the marker was asked for (``None`` otherwise)."""

    def __init__(self, session: Session | None, save: _Save, latest: object = _UNKNOWN,
                 marker: str | None = None) -> None:
        self.session = session
        self._save = save
        self.known_latest = latest is not _UNKNOWN
        self.latest: str | None = latest if isinstance(latest, str) else None
        self.marker = marker

    def save(self, session: Session, ttl_seconds: int, resumable: bool = False,
             marker: EndedMarker | None = None) -> None:
        """Store the session; ``resumable``: a redial may offer to continue it (it points the caller there;
        otherwise the caller's pointer is dropped if it names this session, and kept if it names another);
        ``marker``: (re)write the key's ended marker too."""
        self._save(session, ttl_seconds, resumable, marker)


def _decoded(raw: str | bytes | None, key: str) -> Session | None:
    """A stored session, or ``None`` when absent or unreadable (saved by an older release: it expires)."""
    if raw is None:
        return None
    try:
        return Session.decode(raw, key)
    except UnreadableSession:
        return None


class SessionStore(ABC):
    """Loads and saves sessions by key. Every method may raise ``StoreUnavailable``."""

    @contextmanager
    def locked(self, key: str, wait_seconds: float = 3.0, caller: Caller | None = None,
               marked: bool = False) -> Iterator[LockedSession]:
        """Lock, load, and let the caller save: the whole read-modify-write of one hop. ``marked``: when
        the session is absent, read the key's ended marker too (``LockedSession.marker``)."""
        with self.lock(key, wait_seconds):
            session = self.load(key)
            yield LockedSession(session, self.save, marker=self.marker(key) if marked and session is None else None)

    @abstractmethod
    def load(self, key: str) -> Session | None:
        """The session, or ``None`` when absent, expired or unreadable."""

    @abstractmethod
    def save(self, session: Session, ttl_seconds: int, resumable: bool = False,
             marker: EndedMarker | None = None) -> None:
        """Store the session for ``ttl_seconds``; ``resumable``: the caller's redial may resume it (else the
        caller's pointer is dropped only if it names this session: an older session's late save never takes
        a newer one's pointer away); ``marker``: and the key's ended marker, for its own ``seconds``."""

    @abstractmethod
    def marker(self, key: str) -> str | None:
        """The value of the key's ended marker, or ``None`` when it has none (never written, or expired)."""

    @abstractmethod
    def spend(self, key: str, marker: EndedMarker) -> None:
        """Write the key's ended marker alone: a key whose first hop failed before its session was saved."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget the session."""

    @abstractmethod
    def latest(self, channel: str, user_id: str) -> str | None:
        """The key of the user's most recent resumable session on a channel (for resuming a dropped
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
        self._items: dict[str, tuple[float, bytes]] = {}
        self._latest: dict[tuple[str, str], tuple[float, str]] = {}
        self._markers: dict[str, tuple[float, str]] = {}
        self._replays: dict[str, tuple[float, str]] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._resume_seconds = resume_seconds

    def load(self, key: str) -> Session | None:
        with self._guard:
            item = self._items.get(key)
            if item is None or item[0] < self._clock():
                self._items.pop(key, None)
                return None
            return _decoded(item[1], key)

    def save(self, session: Session, ttl_seconds: int, resumable: bool = False,
             marker: EndedMarker | None = None) -> None:
        with self._guard:
            self._items[session.key] = (self._clock() + ttl_seconds, session.encode())
            if marker is not None:
                self._mark(session.key, marker)
            if session.ended or not resumable:
                # Only this session's own pointer goes: a newer session of the caller may be the resumable one.
                pointer = (session.channel, session.user_id)
                if pointer in self._latest and self._latest[pointer][1] == session.key:
                    del self._latest[pointer]
            else:
                self._latest[(session.channel, session.user_id)] = (self._clock() + self._resume_seconds,
                                                                    session.key)
            _prune(self._items, self._clock())

    def _mark(self, key: str, marker: EndedMarker) -> None:
        """Keep ``marker`` (under the guard): its value and, for its own time, its replay."""
        now = self._clock()
        self._markers[key] = (now + marker.seconds, marker.value)
        if marker.replayed:
            self._replays[key] = (now + marker.replay_seconds, marker.replay)
        _prune(self._markers, now)
        _prune(self._replays, now)

    def marker(self, key: str) -> str | None:
        with self._guard:
            now = self._clock()
            item, replay = self._markers.get(key), self._replays.get(key)
            if replay is not None and replay[0] < now:
                del self._replays[key]   # not kept past its time, even in memory
            return _joined(item[1] if item and item[0] >= now else None,
                           replay[1] if replay and replay[0] >= now else None)

    def spend(self, key: str, marker: EndedMarker) -> None:
        with self._guard:
            self._mark(key, marker)

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


def _prune(kept: dict[str, tuple[float, _T]], now: float) -> None:
    """Past 10 000 entries, drop the expired ones (nothing else would: memory stays bounded)."""
    if len(kept) > 10_000:
        for k in [k for k, (expires, _) in kept.items() if expires < now]:
            del kept[k]


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""

# KEYS: lock, session, then what else the hop reads (resume pointer, read-ahead, ended marker and its replay);
# ARGV: token, lock ms, "1" when the last two keys are the session's ended marker and its replay (read only
# when the session is absent: a normal hop does no more work). Nothing (nil) when another holds the lock;
# else 1 and the value of each other key (nil when absent).
# Each script may be sent twice (engine.lean_script: a connection lost before the answer): a second
# _BEGIN with the same token finds the lock its own, _END and _RELEASE change nothing the second time.
_BEGIN = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and redis.call('get', KEYS[1]) ~= ARGV[1] then
  return false
end
local last = #KEYS
if ARGV[3] == '1' then last = last - 2 end
local out = {1}
for i = 2, last do out[i] = redis.call('get', KEYS[i]) end
if last < #KEYS then
  out[last + 1] = (not out[2]) and redis.call('get', KEYS[last + 1])
  out[last + 2] = out[last + 1] and redis.call('get', KEYS[last + 2])
end
return out
"""

# KEYS: lock, session, resume pointer, the ended marker when one is written and its replay when it has one;
# ARGV: token, then (when saving) the session, its TTL, the pointer's TTL ("0": drop the pointer if it names
# this session: a newer session of the caller may own it) and value (the session's key), the marker's value
# and TTL, its replay's value and TTL. The session is saved even if the lock expired meanwhile (as a plain SET
# would); the lock is released only by its owner.
_END = """
if ARGV[2] then
  redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
  if ARGV[4] ~= '0' then redis.call('set', KEYS[3], ARGV[5], 'EX', ARGV[4])
  elseif redis.call('get', KEYS[3]) == ARGV[5] then redis.call('del', KEYS[3]) end
  if KEYS[4] then redis.call('set', KEYS[4], ARGV[6], 'EX', ARGV[7]) end
  if KEYS[5] then redis.call('set', KEYS[5], ARGV[8], 'EX', ARGV[9]) end
end
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return 1
"""


class RedisSessionStore(SessionStore):
    """Sessions as compact strings with a TTL; a per-session lock with an owner token."""

    # One neutral prefix for every channel: the session keys themselves carry the channel.
    def __init__(self, client: redis.Redis, prefix: str = "conv:", lock_ttl_ms: int = 10_000,
                 resume_seconds: int = 300, read_ahead: ReadAhead | None = None) -> None:
        self._redis = client
        self._prefix = prefix
        self._lock_ttl_ms = lock_ttl_ms
        self._resume_seconds = resume_seconds
        self.read_ahead = read_ahead
        # Each call is an EVALSHA with little client work (the script is loaded again if Redis forgot it),
        # on a connection each thread keeps for the three.
        connection = ThreadConnection(client)
        self._release = LeanScript(client, _RELEASE, connection)
        self._begin = LeanScript(client, _BEGIN, connection)
        self._end = LeanScript(client, _END, connection)

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> RedisSessionStore:
        client = redis_from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                      health_check_interval=30)
        return cls(client, **kwargs)  # type: ignore[arg-type]

    def _key(self, key: str) -> str:
        return f"{self._prefix}s:{key}"

    def load(self, key: str) -> Session | None:
        try:
            raw = self._redis.get(self._key(key))
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return _decoded(raw, key)

    def _latest_key(self, channel: str, user_id: str) -> str:
        return f"{self._prefix}u:{channel}:{user_id}"

    def _marker_key(self, key: str) -> str:
        return f"{self._prefix}e:{key}"

    def _replay_key(self, key: str) -> str:
        return f"{self._prefix}r:{key}"

    def _saving(self, locked: str, token: str, session: Session, ttl_seconds: int, resumable: bool,
                marker: EndedMarker | None, later: bool = False) -> None:
        """The _END script: save (with the marker, if any), move the resume pointer, release ``token``'s
        lock of the key ``locked``. ``later``: sent without waiting for Redis's reply (``send_later``)."""
        pointer = self._resume_seconds if resumable and not session.ended else 0
        keys = [self._lock_key(locked), self._key(session.key), self._latest_key(session.channel, session.user_id)]
        args: list[bytes | str | int] = [token, session.encode(), ttl_seconds, pointer, session.key]
        if marker is not None:
            keys.append(self._marker_key(session.key))
            args += [marker.value, marker.seconds]
            if marker.replayed:
                keys.append(self._replay_key(session.key))
                args += [marker.replay, marker.replay_seconds]
        if later:
            self._end.send_later(f"the save of session {session.key}", keys, args)
        else:
            self._end(keys=keys, args=args)

    def save(self, session: Session, ttl_seconds: int, resumable: bool = False,
             marker: EndedMarker | None = None) -> None:
        try:
            self._saving(session.key, "", session, ttl_seconds, resumable, marker)
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def marker(self, key: str) -> str | None:
        try:
            value, replay = self._redis.mget(self._marker_key(key), self._replay_key(key))
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return _joined(value, replay)

    def spend(self, key: str, marker: EndedMarker) -> None:
        try:
            with self._redis.pipeline() as both:   # MULTI: the two keys together, in one round trip
                both.set(self._marker_key(key), marker.value, ex=marker.seconds)
                if marker.replayed:
                    both.set(self._replay_key(key), marker.replay, ex=marker.replay_seconds)
                both.execute()
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

    def _acquire(self, key: str, token: str, wait_seconds: float, others: list[str],
                 marked: bool = False) -> list[bytes | None]:
        """Take the session's lock (retrying with backoff until ``wait_seconds``) and, in the same
        round trip, read the session and the ``others`` keys; their raw values (None when absent).
        ``marked``: the last two of ``others`` are the ended marker and its replay, read only when the session is
        absent."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.002
        keys = [self._lock_key(key), self._key(key), *others]
        args: list[str | int] = [token, self._lock_ttl_ms, "1"] if marked else [token, self._lock_ttl_ms]
        try:
            while True:
                got = self._begin(keys=keys, args=args)
                if got:
                    values = list(got[1:])
                    return values + [None] * (len(keys) - 1 - len(values))  # trailing nils may be cut
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
        token = os.urandom(16).hex()   # the lock's owner: 128 random bits, as uuid4 has, for a third of its time
        self._acquire(key, token, wait_seconds, [])
        try:
            yield
        finally:
            try:
                self._release(keys=[self._lock_key(key)], args=[token])
            except redis.RedisError:
                pass  # the lock expires by itself

    @contextmanager
    def locked(self, key: str, wait_seconds: float = 3.0, caller: Caller | None = None,
               marked: bool = False) -> Iterator[LockedSession]:
        """One round trip to take the lock and read the session (with the caller's resume pointer,
        read-ahead and, ``marked``, the key's ended marker); the save and release are sent without
        waiting for their reply: the hop waits for one round trip, where a bare GET + SET waits for two."""
        token = os.urandom(16).hex()
        others: list[str] = []
        ahead = self.read_ahead if caller is not None and caller.customer else None
        ahead_key = ahead.key_for(caller.customer) if ahead is not None and caller and caller.customer else None
        if caller is not None:
            others.append(self._latest_key(caller.channel, caller.address))
        if ahead_key is not None:
            others.append(ahead_key)
        if marked:
            others += (self._marker_key(key), self._replay_key(key))
        values = self._acquire(key, token, wait_seconds, others, marked)
        raw, latest = values[0], values[1] if caller is not None else _UNKNOWN
        if ahead is not None and ahead_key is not None and caller is not None and caller.customer:
            ahead.preload(caller.customer, values[2])
        marker = _joined(values[-2], values[-1]) if marked else None
        pending: list[tuple[Session, int, bool, EndedMarker | None]] = []
        try:
            yield LockedSession(_decoded(raw, key), lambda s, t, r, m: pending.append((s, t, r, m)),
                                latest.decode() if isinstance(latest, bytes) else latest, marker)
        finally:
            if ahead is not None and caller is not None and caller.customer:
                ahead.release(caller.customer)
            # Sent without waiting for the reply, which this thread reads before its next command: Redis
            # runs the save on receipt, before the hop's answer leaves, and the hop waits for one round
            # trip, not two. A save Redis refuses is then logged, not shown to the caller, whose next
            # hop finds the session as the hop before left it (as after a Redis failover that lost the
            # last writes: a session is a place in a menu; payments, complaints and codes live in SQL).
            try:
                if pending:
                    self._saving(key, token, *pending[-1], later=True)
                else:
                    self._release.send_later(f"the release of session {key}", [self._lock_key(key)], [token])
            except redis.RedisError as exc:
                if pending:
                    raise StoreUnavailable(str(exc)) from exc

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False
