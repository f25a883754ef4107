"""A Redis client from ``REDIS_URL``: one server, or the master of a service that Redis Sentinel watches.

``redis://``, ``rediss://`` and ``unix://`` name one server, as redis-py reads them. A managed Redis with
automatic failover is usually reached through Sentinel, which redis-py supports (``redis.sentinel``) but not
from a URL; the product reads one, in the form other Redis clients use:

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?sentinel_password=...]

``rediss+sentinel://`` reaches the master over TLS. The password (and user) are the master's; the sentinels'
own, if they have one, is ``sentinel_password``. Every connection asks the sentinels where the master is when
it connects, and a connection to a master that was demoted since (its reply ``READONLY``) is closed and
raises ``ConnectionError``, which the session store's scripts answer by sending the call again on a new
connection (``engine.lean_script``): a failover costs the hops in flight a retry, not the session.

Redis Cluster is not supported: the session store's scripts read and write several keys of one caller
(session, lock, resume pointer, cached identity) that share no hash slot.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

__all__ = ["SENTINEL_SCHEMES", "redis_from_url"]

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
_SENTINEL_PORT = 26379


def redis_from_url(url: str, **options: Any) -> redis.Redis:
    """A client of the server ``url`` names, or of the master of its Sentinel service; ``options`` as
    ``redis.Redis`` takes them (timeouts, health checks), applied to the master's connections and, for the
    timeouts, to the sentinels' too."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        return redis.Redis.from_url(url, **options)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or not hosts:
        raise ValueError("a Sentinel URL names its sentinels and service: "
                         "redis+sentinel://host:port[,host:port]/service[/db]")
    query = parse_qs(parts.query)
    timeouts = {k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout")}
    sentinel_password = query.get("sentinel_password", [None])[0]
    sentinel = Sentinel([_address(h) for h in hosts.split(",")],
                        sentinel_kwargs={**timeouts, "password": sentinel_password},
                        **timeouts)
    return sentinel.master_for(path[0], redis_class=redis.Redis, db=int(path[1]) if len(path) > 1 else 0,
                               username=unquote(user) or None, password=unquote(password) or None,
                               ssl=parts.scheme.startswith("rediss"), **options)


def _address(host: str) -> tuple[str, int]:
    """``host:port``, ``host`` or ``[v6]:port`` as (host, port)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else _SENTINEL_PORT
    name, _, port = host.partition(":")
    return name, int(port) if port else _SENTINEL_PORT
