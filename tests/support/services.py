"""Reaching the real services tests need (Redis, PostgreSQL, MQTT) and serving WSGI apps on loopback.

Without ``REQUIRE_SERVICES=1`` a missing service skips the test with the reason;
with it (as in ``.ci/run``) the test fails instead.

Each test process has a Redis database of its own (``REDIS_TEST_URL``): it claims the database of
``TEST_REDIS_URL`` (default 15), or the next unclaimed one, with a key only it holds, so two runs on
one machine (or parallel workers) never flush each other's sessions. Tests clean it with
``clean_redis``, which keeps the claim. The claim names its process (pid, start time, and the machine's
boot and pid namespace): a claim whose process is gone (a mutmut fork killed at its timeout, a run
killed with -9) is taken over at once, emptied, instead of holding the database for ``CLAIM_SECONDS``;
a claim from another machine or namespace, which cannot be checked, waits for its lease as before.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final
from urllib.parse import urlparse, urlunparse

import pytest
import redis
import requests
from werkzeug.serving import make_server

from .ports import AddressInUse, on_free_ports, reserve_port, reserved_socket, said_address_in_use

CLAIM_KEY: Final = "tests:claimed-by"
CLAIM_SECONDS: Final = 900          # a crashed run's database is free again after this; live runs renew it
# Replaces a claim only if it is still the dead holder's: two processes finding the same dead claim cannot
# both take it (the second sees the first's value).
_TAKE_OVER: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except (OSError, ValueError):
        return None


def _pid_space() -> str | None:
    """Where a pid means one process: this boot of the kernel and this pid namespace (None: cannot say)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}" if boot else None


def _started(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None when there is no such live process: gone, or
    a zombie (killed, not yet reaped by its parent)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()   # after the command name, which may hold spaces
    return None if not fields or fields[0] in ("Z", "X") else fields[19]


def _run_id(pid: int) -> str:
    """``<pid>.<start>-<nonce>@<pid space>``: enough for another process to tell whether this one is gone."""
    return f"{pid}.{_started(pid) or ''}-{uuid.uuid4().hex[:8]}@{_pid_space() or ''}"


def _holder_gone(value: bytes) -> bool:
    """Whether the claim ``value`` names a process of this pid space that no longer runs (or whose pid another
    process now has). False whenever it cannot be checked: another machine, an older format."""
    holder, _, space = value.decode("ascii", "replace").rpartition("@")
    here = _pid_space()
    if not holder or here is None or space != here:
        return False
    pid, _, start = holder.split("-", 1)[0].partition(".")
    if not pid.isdigit() or not start:
        return False
    return _started(int(pid)) != start


RUN_ID = _run_id(os.getpid())   # a forked test process takes another


def _with_db(url: str, db: int) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{db}"))


def _take_over(client: redis.Redis) -> bool:
    """This run's claim in place of a gone process's, its leftovers emptied."""
    held = client.get(CLAIM_KEY)
    if held is None or not _holder_gone(held):   # type: ignore[arg-type]  # bytes: the client decodes nothing
        return False
    if not client.eval(_TAKE_OVER, 1, CLAIM_KEY, held, RUN_ID, CLAIM_SECONDS):
        return False
    clean_redis(client)   # the gone run's keys: tests expect an empty database
    return True


def _claim_redis_database(base_url: str) -> str:
    """This process's own database: the one in ``base_url`` if unclaimed, else the next free one of 0-15."""
    parsed = urlparse(base_url)
    first = int(parsed.path.strip("/") or 0)
    for db in [first, *(n for n in range(15, -1, -1) if n != first)]:
        url = _with_db(base_url, db)
        try:
            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            if _take_over(client):
                atexit.register(_release, url)
                return url
            if client.set(CLAIM_KEY, RUN_ID, nx=True, ex=CLAIM_SECONDS) or client.get(CLAIM_KEY) == RUN_ID.encode():
                # Another database than the one named is taken only when empty: it may hold a developer's
                # live sessions, and the tests flush what they claim.
                if db != first and client.dbsize() > 1:
                    client.delete(CLAIM_KEY)
                    continue
                atexit.register(_release, url)
                return url
        except (redis.RedisError, ValueError):
            return base_url   # no Redis here: the tests that need it skip (or fail under REQUIRE_SERVICES=1)
    return base_url


def _release(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)
        if client.get(CLAIM_KEY) == RUN_ID.encode():
            clean_redis(client, keep_claim=False)
    except redis.RedisError:
        pass


def clean_redis(client: redis.Redis, keep_claim: bool = True) -> None:
    """Empty this run's own database in one transaction, renewing the claim (never touches another db)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.flushdb()
        if keep_claim:
            pipe.set(CLAIM_KEY, RUN_ID, ex=CLAIM_SECONDS)
        pipe.execute()


REDIS_TEST_URL = _claim_redis_database(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
_CLAIMED_IN = _PARENT = os.getpid()


def claim_again_after_fork() -> None:
    """A forked test process (mutmut runs each mutant's tests in one, several at once) takes a database of
    its own: the one it inherited is its siblings' too, and the tests flush what they claim. Every module
    that imported ``REDIS_TEST_URL`` gets the new one; ``release_forked_claim`` gives it back."""
    global REDIS_TEST_URL, RUN_ID, _CLAIMED_IN
    if os.getpid() == _CLAIMED_IN:
        return
    inherited = REDIS_TEST_URL
    RUN_ID = _run_id(os.getpid())
    REDIS_TEST_URL = _claim_redis_database(inherited)
    _CLAIMED_IN = os.getpid()
    for module in list(sys.modules.values()):
        if getattr(module, "REDIS_TEST_URL", None) == inherited:
            setattr(module, "REDIS_TEST_URL", REDIS_TEST_URL)  # noqa: B010 - a module's global, by name


def release_controller_claim() -> None:
    """Free the database this process claimed on import, now: it runs no test (pytest-xdist's controller,
    whose workers each claim their own), and 16 databases are shared by every run on the machine."""
    _release(REDIS_TEST_URL)


def release_forked_claim() -> None:
    """Empty and free a forked process's database now (it may leave by ``os._exit``, past ``atexit``)."""
    if _CLAIMED_IN != _PARENT:
        _release(REDIS_TEST_URL)


POSTGRES_TEST_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MQTT_TEST_URL = os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, url: str, default_port: int) -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) when the service at ``url`` is not reachable."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def need_binary(name: str) -> str:
    """The path of the program ``name``; skips (or fails under REQUIRE_SERVICES=1) when it is not installed."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@contextmanager
def serve_wsgi(app: object, port: int = 0) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1 in a thread; yields its base URL (no trailing slash). ``port``: 0 for
    any (the kernel's choice, bound at once), or one from ``reserve_port()``, served on its held socket."""
    reserved = reserved_socket(port) if port else None
    if port and reserved is None:
        raise ValueError(f"port {port} was not reserved: pass 0, or a port from reserve_port()")
    fd = reserved.fileno() if reserved is not None else None
    server = make_server("127.0.0.1", port, app, threaded=True, fd=fd)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        if reserved is not None:
            reserved.close()   # the server listened on a duplicate of it
        thread.join(timeout=5)


@contextmanager
def gunicorn_servers(env: dict[str, str], count: int = 2) -> Iterator[list[str]]:
    """``count`` engine server processes (gunicorn, one worker each, the product's config) with ``env``, as
    production runs several behind one Redis; their base URLs, once each answers ``/healthz``. Each serves
    on a socket bound here first (``fd://``), so no other process can take its port meanwhile."""
    listeners = [reserved_socket(reserve_port()) for _ in range(count)]
    sockets = [listener for listener in listeners if listener is not None]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    servers = [subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"fd://{listener.fileno()}",
                                 "--workers", "1", "--config", "python:app.gunicorn_conf", "wsgi:app"],
                                cwd=root, env=env, pass_fds=(listener.fileno(),),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for listener in sockets]
    try:
        urls = [f"http://127.0.0.1:{listener.getsockname()[1]}" for listener in sockets]
        for url, server in zip(urls, servers, strict=True):
            wait_until_up(f"{url}/healthz", server)
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
        for listener in sockets:
            listener.close()


def wait_until_up(url: str, process: subprocess.Popen[bytes] | None = None, seconds: float = 60.0,
                  log: Path | None = None) -> None:
    """Poll ``url`` until it answers 2xx; fail if ``process`` (the server) exits or time runs out. A server
    that exited saying, in its ``log``, that its address was in use raises ``AddressInUse`` (for
    ``on_free_port`` to start it again elsewhere)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    if process is not None and process.poll() is not None and log is not None and said_address_in_use(log):
        raise AddressInUse(url)
    raise AssertionError(f"{url} did not come up")


def start_serving(launch: Callable[[list[int]], subprocess.Popen[bytes]], health_url: Callable[[list[int]], str],
                  log: Path, ports: int = 1, seconds: float = 60.0) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A server process that is only told its port numbers, up: ``launch(ports)`` starts it on ``ports``
    free ports, its output to ``log`` (opened anew by each launch), and ``health_url(ports)`` answers 2xx.
    When it exits saying its address was in use (another process bound one of the ports first), it is
    started again on others. The process and its ports; the caller stops it."""
    def start(chosen: list[int]) -> tuple[subprocess.Popen[bytes], list[int]]:
        process = launch(chosen)
        try:
            wait_until_up(health_url(chosen), process, seconds, log=log)
        except BaseException:
            process.terminate()
            process.wait(timeout=20)
            raise
        return process, chosen
    return on_free_ports(ports, start)
