"""``make bench``: the product's USSD hops against the floor and the Node peer, in one run on loopback.

Three servers run side by side, each on the same Redis database (``BENCH_REDIS_URL``, else the first empty
one, claimed for the run as the tests claim theirs; only the keys the run created are deleted at the end):

* **ours**: the product as ``make run`` serves it, on the production set-up: ``python -m app migrate`` then
  ``python -m app serve`` (gunicorn as it configures it, the back office, the worker) with ``REDIS_URL``, a
  PostgreSQL ``DATABASE_URL`` whose schema is created for the run and dropped after it, ``SECRET_KEY`` and
  ``USSD_GATEWAY_TOKEN`` set (the load sends the token). ``--server gthread|sync|granian`` has ``app serve``
  serve the engine under another server of ``app/web_servers.py`` (``WEB_SERVER``); ``bench/servers.py``
  compares them side by side.
* **floor**: ``bench/floor_app.py``, a bare Flask endpoint doing one Redis GET and one SET, gunicorn ``-w 2``.
* **node**: ``bench/node_peer.js``, ussd-menu-builder on Express with Redis sessions, two cluster workers;
  the packages are installed from npm into ``var/bench-node`` (scratch, not committed).

The load is wrk (C, ``bench/hops.lua``), three hop kinds (dial of a known customer, navigation:
next/previous page on sessions dialled beforehand, balance ``1``/``0``; see ``Server.routes``) at 10, 100
and 1 000 connections: the dial on 2 wrk threads; navigation and balance on one thread per connection, so that
the hops of a session are sent one after the other, as a gateway sends them (``wrk_threads``), ``--seconds`` each (about 8 minutes in all at 10 s), the three servers
interleaved per cell so a noisy neighbour hits all of them alike. CPU per hop is read from ``/proc`` for each
server's process tree (for ours: engine workers, back office and worker; Redis and PostgreSQL excluded).
Redis bytes per idle session: ``MEMORY USAGE`` of the keys that 100 fresh dials left behind, per dial.
Then the paced cells (``--paced`` sessions, ``--think`` pauses): 100 sessions pausing about 100 ms before each
hop (about 1 000 hops/s, a stress) and about 1 s (still 5-20x faster than people read a USSD screen).

Writes ``bench/results/bench.json``, ``bench.md`` (the table) and ``bench.png`` (the chart).
Usage: ``python -m bench.bench [--seconds 10] [--server granian|gthread|sync] [--threads N] [--concurrency 10,100,1000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from app.web_servers import DEFAULT_SERVER, SERVERS
from bench.procs import cpu_seconds, descendant_running, nofile_limit
from bench.report import KINDS, chart, table
from bench.ussd_hops import HOST, PY, ROOT, Histogram, child, run_checked, scrape, started, wait_http

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
NODE_DIR = ROOT / "var" / "bench-node"
NODE_PACKAGES = ("ussd-menu-builder@1.2.0", "express@5.3.0", "redis@6.3.1")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PHONE = "+221770000001"
THREADS = 2   # wrk threads of the dial cells (the hop kinds that play sessions: one per connection)
STATEFUL_KINDS = ("nav", "balance")   # the hop kinds whose hops continue a session (seeded beforehand)
MEMORY_DIALS = 100
SEED_SECONDS_MAX = 180.0
SEED_CONNECTIONS = 32  # sessions seeded at a time (bench.seed)
PACED_KINDS = ("dial", "nav")  # the hops whose engine's own time has a target (no back end in them)
SESSION_HOPS = 60  # hops.lua's MAX_HOPS: a slot's session is retired after that many hops and opened again
RATE_MARGIN = 1.5  # the navigation cell's rate may exceed the dial cell's before it by this much


@dataclass
class Server:
    """One server under test: where to send the hops and which processes to charge the CPU to."""

    name: str
    port: int
    path: str
    pids: list[int]
    token: str = "-"
    rejects: str = "-"  # texts of a 200 answer that is not the screen asked for
    # per hop kind: the two inputs its hops alternate, and the inputs that lead a fresh session there
    routes: dict[str, tuple[str, str]] = field(default_factory=lambda: {
        "dial": ("-", "-"), "nav": ("98,0", "-"), "balance": ("1,0", "-")})
    stateful: bool = True  # False: every hop costs the same whatever the session (the floor): no seeding
    engine: bool = False   # the product: its /metrics tell the engine's own time per hop
    timed: bool = False    # the floor: its /metrics tell its Redis GET + SET per hop (floor_redis_seconds)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass
class Cell:
    """One phase: a server, a hop kind, a concurrency, and what wrk and /proc saw."""

    server: str
    kind: str
    concurrency: int
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    cpu_ms: float = 0.0
    error_detail: dict[str, int] = field(default_factory=dict)
    bad_sample: str = ""  # the start of one answer counted as bad
    # ours only: the engine's own time per hop (engine_own_seconds, back ends excluded), from /metrics
    own_p50_ms: float | None = None
    own_p99_ms: float | None = None
    think_ms: int = 0  # paced cells: each connection pauses about this long before each hop (hops.lua THINK)
    # ours only: what a hop waited in the engine (engine_wait_seconds: the turnstile, a held session), not in own
    wait_p50_ms: float | None = None
    wait_p99_ms: float | None = None
    # ours only: the CPU share of the own time (engine_own_cpu_seconds): the rest is Redis's round trip and the
    # hop's thread waiting for a CPU
    cpu_p50_ms: float | None = None
    cpu_p99_ms: float | None = None
    # the floor only: its Redis GET + SET per hop (floor_redis_seconds), the least a session store costs here
    redis_p50_ms: float | None = None
    redis_p99_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def times_said(self) -> str:
        """The engine's own time (ours) or the floor's GET + SET, for a progress line; empty for the peer."""
        if self.redis_p50_ms is not None:
            return f", GET+SET p50 {self.redis_p50_ms:.2f} / p99 {self.redis_p99_ms or 0:.2f} ms"
        if self.own_p50_ms is not None:
            return f", engine own p50 {self.own_p50_ms:.2f} / p99 {self.own_p99_ms or 0:.2f} ms"
        return ""


# ------------------------------------------------------------------ prerequisites

def ensure_wrk() -> str:
    """The path of wrk, installed with apt-get when missing and allowed (root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        for cmd in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
            if subprocess.run(cmd, capture_output=True, check=False).returncode == 0 and shutil.which("wrk"):
                break
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    return found


def ensure_node_packages() -> Path | None:
    """``var/bench-node/node_modules`` with the peer's packages, installed from npm once; None without npm."""
    if not (shutil.which("node") and shutil.which("npm")):
        print("node/npm missing: the Node peer is skipped", file=sys.stderr)
        return None
    modules = NODE_DIR / "node_modules"
    stamp = NODE_DIR / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(NODE_PACKAGES):
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        print(f"npm install {' '.join(NODE_PACKAGES)} into {NODE_DIR.relative_to(ROOT)}", file=sys.stderr)
        done = subprocess.run(["npm", "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund",
                               "--no-save", *NODE_PACKAGES], capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"npm install failed:\n{done.stderr[-2000:]}")
        stamp.write_text(" ".join(NODE_PACKAGES))
    return modules


@contextlib.contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A PostgreSQL schema of the run's own (created, dropped after); yields the DATABASE_URL using it."""
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    plain = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in base_url else "?"
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# The tests' claim on a Redis database (tests/support/services.py): the bench takes it too, so a test run
# started meanwhile picks another database instead of emptying the bench's (and the bench never runs in
# a database a test holds, which is never empty).
CLAIM_KEY = "tests:claimed-by"


def _redis_candidates(url: str) -> list[str]:
    """``url``; without BENCH_REDIS_URL in the environment, then every other database of its server."""
    if "BENCH_REDIS_URL" in os.environ:
        return [url]
    base, _, db = url.rpartition("/")
    return [url, *(f"{base}/{n}" for n in range(15, -1, -1) if str(n) != db)]


def claim_empty_database(candidates: list[str]) -> tuple[str, redis.Redis]:
    """The first of ``candidates`` that is empty, claimed for this run (``CLAIM_KEY``, as the tests claim
    theirs, so they leave it alone): its URL and a client."""
    claim = f"bench-{secrets.token_hex(4)}"
    for candidate in candidates:
        store = redis.Redis.from_url(candidate)
        store.ping()
        if not store.dbsize() and store.set(CLAIM_KEY, claim, nx=True, ex=24 * 3600):
            if store.dbsize() == 1:
                return candidate, store
            store.delete(CLAIM_KEY)
        store.close()
    raise SystemExit(f"{candidates[0]} is not empty; point BENCH_REDIS_URL at a database of the bench's own")


def release_database(store: redis.Redis) -> None:
    """Delete every key the run made in its claimed database, then the claim."""
    # UNLINK frees the values in Redis's background thread; batches of 10 000 (a million seeded sessions)
    for batch in batched(store.scan_iter(count=10_000), 10_000):
        if keys := [key for key in batch if key != CLAIM_KEY.encode()]:
            store.unlink(*keys)
    store.delete(CLAIM_KEY)
    store.close()


@contextlib.contextmanager
def own_redis_keys(url: str) -> Iterator[redis.Redis]:
    """The bench's Redis database: an empty one, claimed for the run; every key the run made is deleted at
    the end. Sets ``REDIS_URL`` (the servers' database) to the one taken."""
    global REDIS_URL
    REDIS_URL, store = claim_empty_database(_redis_candidates(url))
    try:
        yield store
    finally:
        release_database(store)


def batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------ servers

# The back office runs closed, as in production: ours and the Node peer present the same key.
BACKOFFICE_KEY = secrets.token_hex(16)


def product_env(tmp: Path, database_url: str, port: int, bo_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "MQTT_URL")}
    env.update(HOST=HOST, PORT=str(port), BACKOFFICE_PORT=str(bo_port), REDIS_URL=REDIS_URL,
               DATABASE_URL=database_url, BACKOFFICE_URL=f"http://{HOST}:{bo_port}",
               BACKOFFICE_DATABASE_URL=f"sqlite:///{tmp / 'backoffice.db'}",
               PUBLIC_BASE_URL=f"http://{HOST}:{port}", SECRET_KEY=secrets.token_hex(32),
               USSD_GATEWAY_TOKEN=secrets.token_hex(16), PAYMENT_CALLBACK_SECRET=secrets.token_hex(32),
               BACKOFFICE_API_KEY=BACKOFFICE_KEY,   # the back office closed, as in production
               PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"), LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               # the load is USSD only; the chat's action server would be one more port to race (5055 by default)
               RASA_ACTIONS_PORT="off")
    return env


def start_ours(stack: contextlib.ExitStack, tmp: Path, database_url: str, server: str,
               threads: int | None = None) -> tuple[Server, int]:
    """The product on the production set-up; returns it and the back office's port (the peer calls it too)."""
    run_checked([PY, "-m", "app", "migrate"], product_env(tmp, database_url, 0, 0))
    log = tmp / "ours.log"

    def start(running: contextlib.ExitStack, ports: list[int]) -> tuple[Server, int]:
        port, bo_port = ports
        env = product_env(tmp, database_url, port, bo_port)
        # exactly what `make run` runs after migrating; WEB_SERVER only when another server than its default is asked
        if server != DEFAULT_SERVER:
            env["WEB_SERVER"] = server
        if threads is not None:
            env["WEB_THREADS"] = str(threads)
        proc = running.enter_context(child([PY, "-m", "app", "serve"], env, log))
        wait_http(bo_port, "/healthz", proc, log)   # app serve's back office: its port is app serve's too
        wait_http(port, "/healthz", proc, log)
        return Server("ours", port, "/ussd/africastalking", [proc.pid], env["USSD_GATEWAY_TOKEN"],
                      "en cours|indisponible|Choix invalide",
                      # the main menu has one page: paging is measured on the bills list (balance, bills),
                      # next page 98 / previous page 99 ("0" there goes back to the balance screen)
                      {"dial": ("-", "-"), "nav": ("98,99", "1*1"), "balance": ("1,0", "-")}, engine=True), bo_port

    return started(stack, 2, start)


def start_floor(stack: contextlib.ExitStack, tmp: Path) -> Server:
    metrics = tmp / "floor-prometheus"   # its GET + SET timed (floor_redis_seconds), summed over its workers
    metrics.mkdir(exist_ok=True)
    env = dict(os.environ, REDIS_URL=REDIS_URL, PROMETHEUS_MULTIPROC_DIR=str(metrics))
    log = tmp / "floor.log"

    def start(running: contextlib.ExitStack, ports: list[int]) -> Server:
        proc = running.enter_context(child([PY, "-m", "gunicorn", "-w", "2", "--bind", f"{HOST}:{ports[0]}", "--chdir",
                                            str(BENCH), "--log-level", "warning", "floor_app:app"], env, log))
        wait_http(ports[0], "/healthz", proc, log)
        return Server("floor", ports[0], "/hop", [proc.pid], stateful=False, timed=True)

    return started(stack, 1, start)


def start_node(stack: contextlib.ExitStack, tmp: Path, modules: Path, bo_port: int, ours: Server) -> Server:
    """The Node peer; its balance calls ours' back office, whose CPU is then charged to the peer too."""
    log = tmp / "node.log"

    def start(running: contextlib.ExitStack, ports: list[int]) -> Server:
        env = dict(os.environ, PORT=str(ports[0]), REDIS_URL=REDIS_URL, NODE_PATH=str(modules), WORKERS="2",
                   BACKOFFICE_URL=f"http://{HOST}:{bo_port}", BACKOFFICE_API_KEY=BACKOFFICE_KEY)
        proc = running.enter_context(child(["node", str(BENCH / "node_peer.js")], env, log))
        wait_http(ports[0], "/healthz", proc, log)
        # "python -m backoffice serve", or under gunicorn its master "gunicorn: master [backoffice]"
        backoffice = descendant_running(ours.pids[0], "backoffice") or ours.pids[0]
        return Server("node", ports[0], "/ussd", [proc.pid, backoffice])

    return started(stack, 1, start)


# ------------------------------------------------------------------ load

def wrk_threads(kind: str, connections: int) -> int:
    """wrk threads for a cell: one per connection where hops continue sessions, else ``THREADS``.

    wrk's script has no state per connection, only per thread: a thread with several connections hands its
    sessions out round robin, and a slow hop (the balance calls the back office) let the same session's next
    hop leave on another connection while it was still in flight. Two hops of a session were then in the server
    at once (710 hops in 11 255 waited for their session's lock in a 30 s balance cell at 10 connections, 59
    arrived out of order), which a gateway never does: it waits for each screen. With one connection per
    thread, a thread sends its next hop only once the last one is answered.

    Per-connection sessions in the script (a few threads for 1 000 connections) cannot be had in wrk 4.1: it
    calls ``request()`` from ``socket_writeable(c)`` and ``response()`` from ``response_complete(c)`` with the
    thread's Lua state only (``script_request(thread->L, ...)``; ``response(status, headers, body)``), no API
    names the connection (wg/wrk issue 234, open since 2016), and the answer cannot name the session either
    (a screen carries no session id). So a thread of several connections cannot tell which of its sessions an
    answer freed: any session it sends next may be one still in flight."""
    return max(connections, 1) if kind in STATEFUL_KINDS else THREADS


def wrk(server: Server, kind: str, connections: int, seconds: float, mode: str, slots: int,
        run_id: str, think_ms: int = 0) -> dict[str, Any]:
    """Run wrk once; its ``done()`` prints one ``BENCH {json}`` line. ``run_id`` prefixes the session ids:
    the seed and the load of one cell share it. ``think_ms``: each connection's pause before a hop. ``slots``:
    sessions per wrk thread (``wrk_threads``)."""
    threads = wrk_threads(kind, connections)
    cmd = ["wrk", "-t", str(threads), "-c", str(max(connections, threads)), "-d", f"{seconds:g}s",
           "--timeout", "10s", "-s", str(BENCH / "hops.lua"), server.url, "--", kind, server.path, PHONE,
           server.token, run_id, str(slots), mode, server.rejects, *server.routes[kind], str(think_ms)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line[len("BENCH "):])
    result["bad_sample"] = next((ln[len("BENCHBAD "):] for ln in done.stdout.splitlines()
                                 if ln.startswith("BENCHBAD ")), "")
    return result


def slots_for(connections: int, kind: str = "dial", rate: float = 0.0, seconds: float = 0.0,
              prefix: int = 0) -> int:
    """Sessions per wrk thread (``wrk_threads``) for nav/balance: twice the connections in all, at least 16.
    Each thread has one connection there, so its sessions' hops never overlap however slow one is.

    Navigation gets enough for none to be retired during the cell (``SESSION_HOPS``), at up to ``rate``
    hops a second (the dial cell's before it, with a margin): a retired session opens again with the dial
    and the prefix, the balance and the bills (two back-end calls), and one page turn in 30 had been such a
    reopening, its back-end time in the navigation's p95/p99 (README, "Benchmark")."""
    sessions = max(16, 2 * connections)
    if kind == "nav" and rate > 0:
        hops_each = SESSION_HOPS - prefix - 2   # after the seed's hops, before the retiring one
        sessions = max(sessions, math.ceil(rate * RATE_MARGIN * seconds / hops_each))
    return math.ceil(sessions / wrk_threads(kind, connections))


def run_id(server: Server, kind: str, connections: int) -> str:
    return f"{server.name[0]}{kind[0]}{connections}x{secrets.token_hex(3)}"


def _seed_sessions(server: Server, sessions: list[str], texts: list[str], deadline: float) -> int:
    """Play ``texts`` on each session in turn over one keep-alive connection; how many got every hop right."""
    done = 0
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if server.token != "-":
        headers["X-Gateway-Token"] = server.token
    rejects = [] if server.rejects == "-" else server.rejects.split("|")
    try:
        for session in sessions:
            if time.monotonic() > deadline:
                break
            ok = True
            for text in texts:
                body = urllib.parse.urlencode({"sessionId": session, "serviceCode": "*123#", "phoneNumber": PHONE,
                                               "networkCode": "99999", "text": text})
                connection.request("POST", server.path, body, headers)
                answer = connection.getresponse()
                screen = answer.read().decode(errors="replace")
                if answer.status != 200 or not screen.startswith("CON ") or any(r in screen for r in rejects):
                    ok = False
                    break
            done += ok
    except OSError:
        pass
    finally:
        connection.close()
    return done


def seed(server: Server, kind: str, connections: int, run: str, rate: float = 0.0,
         seconds: float = 0.0) -> tuple[int, str]:
    """Bring every slot's session where the hops of ``kind`` apply (dial, then the route's prefix).

    Played from Python, each session's hops one after the other, ``SEED_CONNECTIONS`` sessions at a time,
    until every session is there (or ``SEED_SECONDS_MAX``): the prefix may call the back office (ours: the
    balance, then the bills), so its pace is the back office's, not the dial's. Sizing a wrk run from the dial
    rate had left half the sessions unseeded at 1 000 connections: their load hops then replayed the whole
    path on a fresh session (two back-office calls each) and ours' navigation fell to 0.08x the floor.
    Returns the slots per wrk thread the load uses (``slots_for``, ``rate``: the hops a second to expect) and a
    note for the progress line."""
    prefix = [] if server.routes[kind][1] == "-" else server.routes[kind][1].split("*")
    slots = slots_for(connections, kind, rate, seconds, len(prefix))
    if not server.stateful:
        return slots, ""
    wait_idle(server)
    texts = ["*".join(prefix[:n]) for n in range(len(prefix) + 1)]
    # the session ids of hops.lua: RUN-<thread>-<slot>-<generation>
    sessions = [f"{run}-{thread}-{slot}-0" for thread in range(wrk_threads(kind, connections))
                for slot in range(slots)]
    workers = min(SEED_CONNECTIONS, connections)
    deadline = time.monotonic() + SEED_SECONDS_MAX
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        seeded = sum(pool.map(lambda share: _seed_sessions(server, share, texts, deadline),
                              [sessions[i::workers] for i in range(workers)]))
    note = f"{seeded}/{len(sessions)} sessions seeded in {time.monotonic() - started:.0f} s, "
    if seeded < len(sessions):
        note += "the others open on their first hop, "
    return slots, note


def wait_idle(server: Server, limit: float = 60.0) -> None:
    """Wait until the server has stopped working off an earlier cell's load.

    When wrk stops, up to one request per connection is still queued in the server (at 1 000 connections,
    seconds of work): it answers them to closed sockets, and without this wait the next cell (or the
    memory measure) ran beside that backlog and was charged for it."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(server.pids)
        time.sleep(0.5)
        if cpu_seconds(server.pids) - before < 0.05:  # under 10% of a core: only its timers
            return


ENGINE_TIMES = ("engine_own_seconds", "engine_own_cpu_seconds", "engine_wait_seconds")


FLOOR_TIMES = ("floor_redis_seconds",)


def engine_times(server: Server) -> dict[str, Histogram] | None:
    """``engine_own_seconds``, ``engine_own_cpu_seconds`` and ``engine_wait_seconds`` of the USSD channel summed
    over every worker (multiprocess mode), for the product; ``floor_redis_seconds`` for the floor."""
    if server.engine:
        return scrape(server.port, ENGINE_TIMES)
    return scrape(server.port, FLOOR_TIMES) if server.timed else None


def measure(server: Server, kind: str, connections: int, seconds: float, run: str, slots: int,
            think_ms: int = 0) -> Cell:
    wait_idle(server)
    times_before = engine_times(server)
    before = cpu_seconds(server.pids)
    result = wrk(server, kind, connections, seconds, "load", slots, run, think_ms)
    cpu = cpu_seconds(server.pids) - before
    if server.engine or server.timed:
        wait_idle(server)   # /metrics waits behind the hops still queued (1 000 connections: seconds of them)
    times_after = engine_times(server)
    times = ({name: times_after[name] - times_before[name] for name in times_after}
             if times_after is not None and times_before is not None else {})
    own, own_cpu, waited = (times.get(name) for name in ENGINE_TIMES)
    floor_redis = times.get(FLOOR_TIMES[0])
    detail = {k: result[k] for k in ("connect", "read", "write", "status", "timeout", "bad", "overlap")
              if result.get(k)}
    requests = result["requests"]
    return Cell(server.name, kind, connections, requests, result["duration_us"] / 1e6, result["p50_us"] / 1e3,
                result["p95_us"] / 1e3, result["p99_us"] / 1e3, sum(detail.values()),
                cpu * 1000 / requests if requests else 0.0, detail, result["bad_sample"],
                own.quantile(0.5) * 1000 if own else None, own.quantile(0.99) * 1000 if own else None, think_ms,
                waited.quantile(0.5) * 1000 if waited else None, waited.quantile(0.99) * 1000 if waited else None,
                own_cpu.quantile(0.5) * 1000 if own_cpu else None, own_cpu.quantile(0.99) * 1000 if own_cpu else None,
                floor_redis.quantile(0.5) * 1000 if floor_redis else None,
                floor_redis.quantile(0.99) * 1000 if floor_redis else None)


def redis_bytes_per_session(store: redis.Redis, server: Server) -> float:
    """MEMORY USAGE of the keys that ``MEMORY_DIALS`` fresh dials added, per dial (sessions left idle)."""
    wait_idle(server)
    before = set(store.scan_iter(count=1000))
    # one connection per thread: each thread stops right after its last answer, nothing else in flight
    dials = wrk(server, "dial", THREADS, 5, "seed", MEMORY_DIALS // THREADS, run_id(server, "memory", 0))["requests"]
    time.sleep(0.5)  # let the last hop's save land
    new = [k for k in store.scan_iter(count=1000) if k not in before]
    total = sum(store.memory_usage(k, samples=0) or 0 for k in new)
    return total / dials if dials else 0.0


# ------------------------------------------------------------------ main

def machine() -> dict[str, str]:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor() or "unknown")
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, object]:
    ensure_wrk()
    modules = None if args.no_node else ensure_node_packages()
    tmp = Path(tempfile.mkdtemp(prefix="ussd-bench-"))
    cells: list[Cell] = []
    try:
        with contextlib.ExitStack() as stack:
            store = stack.enter_context(own_redis_keys(REDIS_URL))
            database_url = stack.enter_context(pg_schema(PG_URL))
            progress(f"starting ours ({args.server}), the floor{'' if modules is None else ' and the Node peer'}")
            ours, bo_port = start_ours(stack, tmp, database_url, args.server, args.threads)
            servers = [start_floor(stack, tmp), ours]
            if modules is not None:
                servers.append(start_node(stack, tmp, modules, bo_port, ours))
            for server in servers:  # warm-up: imports, connection pools, caches
                wrk(server, "dial", 10, 2, "load", 8, run_id(server, "warm-up", 10))
            plan = [(c, k, s) for c in args.concurrency for k in args.kinds for s in servers]
            dial_rates: dict[tuple[str, int], float] = {}   # sizes the navigation's sessions (slots_for)
            started = time.monotonic()
            for i, (connections, kind, server) in enumerate(plan, 1):
                note, run, slots = "", run_id(server, kind, connections), slots_for(connections)
                if kind != "dial":
                    dialled = dial_rates.get((server.name, connections), 0.0)
                    slots, note = seed(server, kind, connections, run, dialled, args.seconds)
                cell = measure(server, kind, connections, args.seconds, run, slots)
                cells.append(cell)
                if kind == "dial":
                    dial_rates[(server.name, connections)] = cell.rps
                elapsed = time.monotonic() - started
                progress(f"[{i}/{len(plan)} {elapsed:4.0f}s] {server.name:<5} {kind:<7} c={connections:<4} "
                         f"{note}{cell.rps:7.0f} req/s, p99 {cell.p99_ms:6.1f} ms, errors {cell.errors}"
                         + cell.times_said() + (f" (e.g. {cell.bad_sample!r})" if cell.bad_sample else ""))
            # The engine's own time at a pace people keep: every connection a session that pauses before
            # each hop, the server far from saturated (the cells above measure it saturated).
            paced = [(t, k) for t in args.think for k in PACED_KINDS if k in args.kinds]
            for j, (think, kind) in enumerate(paced, 1):
                run, slots = run_id(ours, kind, args.paced), slots_for(args.paced)
                if kind != "dial":
                    slots, _ = seed(ours, kind, args.paced, run)
                cell = measure(ours, kind, args.paced, args.seconds, run, slots, think)
                cells.append(cell)
                progress(f"[paced {j}/{len(paced)}] ours  {kind:<7} c={args.paced} pause {think} ms: "
                         f"{cell.rps:6.0f} req/s, engine own p50 {cell.own_p50_ms or 0:.2f} / "
                         f"p99 {cell.own_p99_ms or 0:.2f} ms, errors {cell.errors}")
            memory = {}
            for server in servers:
                memory[server.name] = redis_bytes_per_session(store, server)
            if args.keep:
                stack.callback(lambda: print(f"logs kept in {tmp}", file=sys.stderr))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"machine": machine(), "server": args.server + ("" if args.threads is None else f" ({args.threads} thread(s) per worker)"), "seconds": args.seconds,
            "cells": [asdict(c) | {"rps": c.rps} for c in cells], "redis_bytes": memory}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase")
    parser.add_argument("--server", choices=SERVERS, default=DEFAULT_SERVER,
                        help="the engine's server (app/web_servers.py); by default the one `make run` uses")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per worker of ours (WEB_THREADS; default: app serve's)")
    parser.add_argument("--concurrency", default="10,100,1000", help="comma-separated connection counts")
    parser.add_argument("--no-node", action="store_true", help="skip the Node peer")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated hop kinds, of " + ", ".join(KINDS))
    parser.add_argument("--paced", type=int, default=100,
                        help="connections of the paced cells (sessions pausing between hops; 0: none)")
    parser.add_argument("--think", default="100,1000",
                        help="comma-separated pauses before each hop of the paced cells, in ms")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where bench.json/.md/.png go (bench/results; bench/results/<server> for another server)")
    args = parser.parse_args(argv)
    # a run under another server sits beside the default one instead of replacing the README's figures
    args.out = args.out or (RESULTS if args.server == DEFAULT_SERVER and args.threads is None
                            else RESULTS / f"{args.server}{'' if args.threads is None else f'x{args.threads}'}")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.kinds = [k for k in KINDS if k in args.kinds.split(",")]
    args.think = [int(t) for t in args.think.split(",") if int(t) > 0] if args.paced else []
    nofile_limit(4 * max(args.concurrency) + 1024)
    # Ctrl-C and SIGTERM unwind the same way: every child stopped, the schema dropped, our keys deleted.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = run(args, lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    (args.out / "bench.md").write_text(text + "\n")
    chart(results, args.out / "bench.png")
    print(text)
    print(f"\nwritten: {args.out / 'bench.json'}, bench.md, bench.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
