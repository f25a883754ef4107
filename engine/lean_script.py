"""A Lua script the session store calls on every hop, sent with as little client work as a call can take.

redis-py's ``Script`` goes through the full command layer on each call: deprecated-argument checks,
observability hooks, the retry wrapper, and one encoder call per argument. On a hop that is two
script calls and nothing else, that layer is a third of the hop's time in Redis (measured with
``bench/profile_hop.py``: 40 us per call through ``Script``, 24 us here). ``LeanScript`` keeps
what matters and drops the rest:

* each thread keeps one connection for the scripts (``ThreadConnection``), made by the client's own
  pool with its settings (``socket_timeout``, the health check), instead of borrowing one from the pool
  on every call: a borrow and its return cost 13 us (the pool's lock, its observability counters and a
  poll of the socket), half as much as the call itself;
* it packs ``EVALSHA`` itself with the fixed head packed once, and reads the reply with redis-py's parser;
* a Redis that forgot the script (restarted, ``SCRIPT FLUSH``) gets it loaded again, as ``Script`` does;
* a kept connection Redis closed since its last call (restarted) fails on its next call, which is sent
  again once on a new connection (the scripts are written to be sent twice: see ``engine.store``); a
  new connection that fails, or a timeout, is dropped and the error raised (the store answers
  "unavailable");
* ``send_later`` sends a script without waiting for its reply, which the thread's connection reads
  before its next command (``ThreadConnection``): a hop's save goes out before its answer, and the hop
  makes one round trip that waits, not two. A reply read later that is an error (Redis refused the
  write) or lost with its connection is logged, with the session key masked; so is one read when the
  thread ends before its next call.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import redis
from redis.connection import ConnectionInterface
from redis.exceptions import NoScriptError

from .masking import mask_numbers

__all__ = ["LeanScript", "ThreadConnection"]

log = logging.getLogger(__name__)

Arg = bytes | str | int


def _bulk(value: Arg) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


class ThreadConnection:
    """One connection per thread (and process) to ``client``'s server, kept from call to call.

    Made by the client's pool, so it has the pool's settings, but never lent to it: when its thread
    ends, the connection goes with it (redis-py closes a connection it collects). After a fork the
    child makes its own instead of sharing the parent's socket.

    A script sent without waiting (``LeanScript.send_later``) leaves its reply unread: ``get`` reads it
    before handing the connection out for the next command (by then it has long arrived: a read from
    the socket's buffer, no wait), so replies never go to the wrong caller, a health check's PING
    included."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()

    def get(self) -> ConnectionInterface:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            held = self._local.held = _Held(self._pool.make_connection())
        if held.unread:
            _confirm(held.connection, held.unread)
        return held.connection

    def unread(self, what: str) -> None:
        """A command was just sent on this thread's connection without reading its reply; ``what`` names it
        in a log line should the reply be an error."""
        self._local.held.unread.append(what)


class _Held:
    """A thread's connection and the names of the commands sent on it whose replies are not read yet.

    When the thread ends (a server retires its idle threads), its thread-local goes and this with it:
    the replies still unread are read then, so that a save Redis refused is logged even if its thread
    never made another call."""

    __slots__ = ("connection", "pid", "unread")

    def __init__(self, connection: ConnectionInterface) -> None:
        self.pid = os.getpid()
        self.connection = connection
        self.unread: list[str] = []

    def __del__(self) -> None:
        if self.unread and self.pid == os.getpid():
            try:
                _confirm(self.connection, self.unread)
            except Exception:   # one raised in __del__ would only be printed, never seen
                log.exception("unread Redis replies of an ended thread")


def _confirm(connection: ConnectionInterface, unread: list[str]) -> None:
    """Read the replies of the commands sent without waiting, oldest first."""
    while unread:
        what = unread.pop(0)
        try:
            connection.read_response()
        except redis.ResponseError as exc:
            log.error("%s failed after the hop was answered: %s", mask_numbers(what), exc)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            connection.disconnect()
            log.error("%s not confirmed, the connection to Redis was lost: %s", mask_numbers(what),
                      type(exc).__name__)
            for lost in unread:
                log.error("%s not confirmed, the connection to Redis was lost", mask_numbers(lost))
            unread.clear()


def _sent(connection: ConnectionInterface, packed: bytes) -> None:
    """Send ``packed``, connecting first through ``connect()``: a connection that Sentinel places
    (``redis.sentinel``) asks where the master is there, which the connect ``send_packed_command`` makes
    by itself skips (redis-py 8.1), reaching the default ``localhost:6379`` instead."""
    if not connection.is_connected:
        connection.connect()
    connection.send_packed_command([packed])


class LeanScript:
    """``script(keys=[...], args=[...])``: EVALSHA of ``source`` on the thread's connection to ``client``'s
    server, its reply as redis-py parses it (bytes, ints, lists; ``None`` for a Lua ``false``). Scripts of
    one store share ``connection``."""

    def __init__(self, client: redis.Redis, source: str, connection: ThreadConnection | None = None) -> None:
        self._client = client
        self._connection = connection or ThreadConnection(client)
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._by_sha = b"$7\r\nEVALSHA\r\n" + _bulk(self.sha)
        self._by_source = b"$4\r\nEVAL\r\n" + _bulk(source)

    def _packed(self, keys: Sequence[Arg], args: Sequence[Arg], head: bytes) -> bytes:
        """The command: ``head`` (EVALSHA and the digest, or EVAL and the source), the keys, the args."""
        return b"".join((b"*%d\r\n" % (3 + len(keys) + len(args)), head, _bulk(len(keys)), *map(_bulk, keys),
                         *map(_bulk, args)))

    def _send(self, packed: bytes) -> Any:
        connection = self._connection.get()
        kept = connection.is_connected
        try:
            _sent(connection, packed)
            return connection.read_response()
        except redis.ConnectionError:
            connection.disconnect()   # never used again half-read
            if not kept:
                raise
        except redis.TimeoutError:
            connection.disconnect()
            raise
        # A kept connection that Redis closed since (restarted): once more, on a new one.
        try:
            _sent(connection, packed)
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            raise

    def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        packed = self._packed(keys, args, self._by_sha)
        try:
            return self._send(packed)
        except NoScriptError:
            self._client.script_load(self._source)
            return self._send(packed)

    def send_later(self, what: str, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> None:
        """Send the script without waiting for its reply (read before the thread's next command; an error
        then is logged as ``what``). Sent as EVAL with its source, so that a Redis that forgot the script
        still runs it: an EVALSHA refused later would have left its work undone. A send that fails is made
        again on a new connection and waited for; its error, if that fails too, is raised."""
        packed = self._packed(keys, args, self._by_source)
        connection = self._connection.get()
        try:
            _sent(connection, packed)
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            self._send(packed)
            return
        self._connection.unread(what)
