"""A Lua script the session store calls on every hop, sent with as little client work as a call can take.

redis-py's ``Script`` goes through the full command layer on each call: deprecated-argument checks,
observability hooks, the retry wrapper, and one encoder call per argument. On a hop that is two
script calls and nothing else, that layer is a third of the hop's time in Redis (measured with
``bench/profile_hop.py``: 40 us per call through ``Script``, 24 us here). ``LeanScript`` keeps
what matters and drops the rest:

* it borrows a connection from the client's own pool (so ``socket_timeout``, the health check and
  fork safety stay redis-py's), packs ``EVALSHA`` itself with the fixed head packed once, and reads
  the reply with redis-py's parser;
* a Redis that forgot the script (restarted, ``SCRIPT FLUSH``) gets it loaded again, as ``Script`` does;
* a connection Redis closed between two hops (restarted) is opened again by the pool before use; one
  that breaks during the call is dropped and the error raised (the store answers "unavailable").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError

__all__ = ["LeanScript"]

Arg = bytes | str | int


def _bulk(value: Arg) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


class LeanScript:
    """``script(keys=[...], args=[...])``: EVALSHA of ``source`` on ``client``'s pool, its reply as redis-py
    parses it (bytes, ints, lists; ``None`` for a Lua ``false``)."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._sha_bulk = _bulk(self.sha)

    def _packed(self, keys: Sequence[Arg], args: Sequence[Arg]) -> bytes:
        return b"".join((b"*%d\r\n$7\r\nEVALSHA\r\n" % (3 + len(keys) + len(args)), self._sha_bulk,
                         _bulk(len(keys)), *map(_bulk, keys), *map(_bulk, args)))

    def _send(self, packed: bytes) -> Any:
        pool = self._client.connection_pool
        connection = pool.get_connection()   # a connection Redis closed meanwhile is opened again here
        try:
            connection.send_packed_command([packed])
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()   # never handed out again half-read
            raise
        finally:
            pool.release(connection)

    def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        packed = self._packed(keys, args)
        try:
            return self._send(packed)
        except NoScriptError:
            self._client.script_load(self._source)
            return self._send(packed)
