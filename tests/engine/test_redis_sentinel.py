"""Sessions kept in a Redis that Sentinel watches (``REDIS_URL=redis+sentinel://...``): hops go to the master
the sentinels name, and after a failover to the new one, the session intact. A master, its replica and a
sentinel of the test's own are started; the machine's shared Redis is never touched."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from engine import RedisSessionStore, Session
from engine.redis_url import redis_from_url

from ..support.polling import until
from ..support.ports import AddressInUse, on_free_port, said_address_in_use
from ..support.services import need_binary
from ..support.throwaway_redis import ThrowawayRedis

KEY = "ussd:ATUid_sentinel"
SERVICE = "elecnet"


def _hop(store: RedisSessionStore, node: str) -> str | None:
    """One hop: take the lock, read the session, save it on ``node``; the node it was on before."""
    with store.locked(KEY) as held:
        before = held.session.node if held.session is not None else None
        held.save(Session(KEY, "ussd", "+221770000001", "main", "1", node, "fr", 1.0, 1.0), 180)
    return before


class Watched:
    """A master, a replica of it, and one sentinel watching them (quorum 1)."""

    def __init__(self, tmp_path: Path) -> None:
        self.master = ThrowawayRedis(tmp_path / "master")
        self.replica = ThrowawayRedis(tmp_path / "replica")
        self.sentinel_port = 0   # chosen when it starts
        self.dir = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for server in (self.master, self.replica):
            server.dir.mkdir()
            server.start()
        redis.Redis(port=self.replica.port).replicaof("127.0.0.1", self.master.port)
        self.sentinel_port = on_free_port(self._start_sentinel)
        assert until(self._replica_known, seconds=20.0, pause=0.1), "the sentinel never saw the replica"

    def _start_sentinel(self, port: int) -> int:
        """The sentinel on ``port``, answering; ``AddressInUse`` when another process took the port first."""
        conf, log = self.dir / "sentinel.conf", self.dir / "sentinel.log"
        conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 1\n"
                        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                        f"sentinel failover-timeout {SERVICE} 5000\n")
        with log.open("wb") as output:
            process = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=output,
                                       stderr=subprocess.STDOUT)
        self.processes.append(process)
        if until(lambda: process.poll() is not None or _answers(port), seconds=10.0, pause=0.05) \
                and process.poll() is None:
            return port
        if said_address_in_use(log):
            raise AddressInUse(f"127.0.0.1:{port}")
        raise AssertionError("the sentinel did not start: " + log.read_text(errors="replace")[-2000:])

    @property
    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, socket_timeout=1.0)

    def _replica_known(self) -> bool:
        try:
            replicas = self.sentinel.sentinel_slaves(SERVICE)
        except redis.RedisError:
            return False
        return any(r["port"] == self.replica.port and "s_down" not in r["flags"]
                   and r.get("master-link-status") == "ok" for r in replicas)

    def master_port(self) -> int:
        address = self.sentinel.sentinel_get_master_addr_by_name(SERVICE)
        assert isinstance(address, tuple), address
        return int(address[1])

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(timeout=10)
        self.master.stop()
        self.replica.stop()


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Watched]:
    need_binary("redis-server")
    servers = Watched(tmp_path)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1.0, socket_connect_timeout=1.0).ping())
    except redis.RedisError:
        return False


def _role(port: int) -> str:
    return str(redis.Redis(port=port, socket_timeout=1.0).info("replication")["role"])


def test_sessions_follow_the_master_the_sentinels_name_through_a_failover(watched):
    store = RedisSessionStore(redis_from_url(f"redis+sentinel://127.0.0.1:{watched.sentinel_port}/{SERVICE}",
                                             socket_timeout=1.0, socket_connect_timeout=1.0))
    assert _hop(store, "home") is None
    assert _hop(store, "balance") == "home"
    master = redis.Redis(port=watched.master.port)
    assert until(lambda: master.exists(f"conv:s:{KEY}"), seconds=2.0, pause=0.01)   # on the master named
    assert master.wait(1, 2000) == 1                     # and on its replica
    watched.sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
    assert until(lambda: watched.master_port() == watched.replica.port, seconds=20.0, pause=0.1)
    assert until(lambda: _role(watched.master.port) == "slave", seconds=20.0, pause=0.1)
    # the store's kept connection still reaches the old master, now read-only: the hop goes to the new one
    assert _hop(store, "bills") == "balance"
    assert until(lambda: redis.Redis(port=watched.replica.port).exists(f"conv:s:{KEY}"), seconds=2.0, pause=0.01)
    assert _hop(store, "home") == "bills"


def test_a_sentinel_url_names_its_service_and_database():
    client = redis_from_url("redis+sentinel://:s3cret@10.0.0.1:26380,[::1],10.0.0.2/elecnet/4"
                            "?sentinel_password=watch", socket_timeout=0.5)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "elecnet"
    assert pool.connection_kwargs["db"] == 4 and pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["socket_timeout"] == 0.5
    sentinels = pool.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in sentinels] == [("10.0.0.1", 26380), ("::1", 26379), ("10.0.0.2", 26379)]
    assert all(s.connection_pool.connection_kwargs["password"] == "watch" for s in sentinels)


@pytest.mark.parametrize("url", ["redis+sentinel://127.0.0.1:26379", "redis+sentinel:///elecnet",
                                 "redis+sentinel://127.0.0.1/elecnet/0/extra"])
def test_a_sentinel_url_without_its_sentinels_or_service_is_refused_with_the_form_it_needs(url):
    with pytest.raises(ValueError, match="redis\\+sentinel://host:port"):
        redis_from_url(url)
