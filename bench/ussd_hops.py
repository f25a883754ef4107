"""How fast does the engine answer USSD hops, compared with the least a Flask + Redis hop can cost?

What runs (all on 127.0.0.1, all in a temporary directory, all stopped at the end, also on Ctrl-C):

* the reference back office (``python -m backoffice serve``), seeded, ``BACKOFFICE_PAYMENT_APPROVAL=manual``;
* the engine (``wsgi:app``) under gunicorn, sessions in Redis database 14, a freshly migrated SQLite DB;
* the floor (``bench/floor_app.py``) under the *same* gunicorn settings: one Redis GET + one SET of a
  600-byte value per request, nothing else.

gunicorn runs 2 workers of class ``gthread`` (4 threads each), as ``make run`` does. Why gthread and not
sync: sync workers close the connection after every response (no keep-alive, a TCP handshake per hop),
and a sync worker sits idle while the engine waits on the back office; gthread keeps the gateway's
connections open and overlaps those waits. The 2 workers match the 2-core CI machine.

The load: ``--clients`` threads, each with one keep-alive HTTP connection, play ``--sessions`` complete
USSD sessions between them, the way Africa's Talking does (``text`` = every input so far joined by ``*``):

    dial ""  ->  "1" balance  ->  "1" bills list  ->  "98" next page  ->  "0" back  ->  "00" main menu

The floor gets the very same requests (same forms, same client loop) on its ``/hop`` endpoint.

How to read the figures:

* ``hops/s``: completed hops divided by wall time of the phase, client side. ``ours/floor`` is the ratio
  (target: >= 0.8). Client, servers, back office and Redis share the machine, so compare ratios, not
  absolute numbers between machines.
* ``client p50/p99``: latency seen by the client (request sent -> body read), per hop kind:
  ``back end`` hops are the ones during which the engine called the back office (measured on one
  warm-up session by counting the back office's request log), the others need only Redis (and SQL).
* ``engine_hop_seconds``: the engine's own histogram, scraped from ``GET /metrics`` before and after the
  run; p50/p99 are interpolated inside the buckets like Prometheus' ``histogram_quantile`` (so a p99 of
  "between 5 and 10 ms" prints as a value in that range: read it as a bucket, not a precise number;
  target: p99 < 5 ms). The histogram has no label per hop kind, so the split by kind is client side only.
  Each gunicorn worker keeps its own registry and a scrape reaches one worker: the script scrapes on
  fresh connections until it has seen every worker and checks the summed counts against the hops sent.
* ``redis bytes/session``: ``MEMORY USAGE`` of every ``ussd:s:*`` key once the run is over (sessions left
  idle on the main menu), averaged; the floor's 600-byte values are shown for scale.

Usage: ``python -m bench.ussd_hops [--clients 8] [--sessions 320]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias, TypeVar
from urllib.parse import urlencode

import redis
from prometheus_client.parser import text_string_to_metric_families

from bench.ports import AddressInUse, on_free_ports, said_address_in_use
from bench.procs import listens_alone

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
REDIS_URL = os.environ.get("HOPS_REDIS_URL", "redis://127.0.0.1:6379/14")  # emptied: a database of its own
WORKERS, THREADS = 2, 4
PHONES = ("+221770000001", "+221770000003")
# (kind, input) of one session; the dial sends no input.
SCRIPT = (("dial", None), ("balance 1", "1"), ("bills 1", "1"), ("next 98", "98"), ("back 0", "0"),
          ("home 00", "00"))
PHASE_SECONDS = 25.0  # each phase (engine, floor) stops here whatever --sessions says
START_SECONDS = 30.0
T = TypeVar("T")
Proc: TypeAlias = "subprocess.Popen[bytes]"


# ------------------------------------------------------------------ processes

@contextlib.contextmanager
def child(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own process group (so Ctrl-C reaches us, not it); stop that group on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``proc`` (or a process it started) answers 200 on ``port``. ``AddressInUse`` when the port was not
    its to take: it exited saying so, or another process listens there (and may be the one answering)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            exited = AddressInUse if said_address_in_use(log) else RuntimeError
            raise exited(f"{proc.args!r} exited; see its log:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(HOST, port, timeout=1)
            conn.request("GET", path)
            answered = conn.getresponse().status == 200
            conn.close()
            if answered:
                if listens_alone(proc.pid, port):
                    return
                raise AddressInUse(f"another process listens on {HOST}:{port}, not {proc.args!r}")
        time.sleep(0.2)
    if proc.poll() is None and not listens_alone(proc.pid, port) and _listened(port):
        raise AddressInUse(f"another process listens on {HOST}:{port}; {proc.args!r} never answered there")
    raise RuntimeError(f"nothing answered on {HOST}:{port}{path}; see {log}")


def _listened(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
        return True
    return False


def serve_backoffice(running: contextlib.ExitStack, env: dict[str, str], port: int, log: Path,
                     *options: str) -> Proc:
    """The reference back office on ``port``, entered into ``running``, once it answers (``started``'s step)."""
    proc = running.enter_context(child([PY, "-m", "backoffice", "serve", "--host", HOST, "--port", str(port),
                                        *options], env, log))
    wait_http(port, "/healthz", proc, log)
    return proc


def started(stack: contextlib.ExitStack, count: int, start: Callable[[contextlib.ExitStack, list[int]], T]) -> T:
    """``start(servers, ports)`` on ``count`` ports free when asked: it enters what it starts into ``servers``
    and waits until each answers (``wait_http``). When one could not have its port (``AddressInUse``: another
    process bound it between the asking and the binding), everything it started is stopped and it runs again
    on other ports; what it started then stays in ``stack``. A port race never fails a run."""
    def attempt(ports: list[int]) -> T:
        with contextlib.ExitStack() as servers:
            result = start(servers, ports)
            stack.enter_context(servers.pop_all())
            return result
    return on_free_ports(count, attempt)


def gunicorn(app: str, port: int, chdir: Path) -> list[str]:
    return [PY, "-m", "gunicorn", "--bind", f"{HOST}:{port}", "--workers", str(WORKERS),
            "--worker-class", "gthread", "--threads", str(THREADS), "--chdir", str(chdir),
            "--log-level", "warning", app]


def base_env(tmp: Path, backoffice_port: int, engine_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
    env.update(REDIS_URL=REDIS_URL, DATABASE_URL=f"sqlite:///{tmp / 'engine.db'}",
               BACKOFFICE_URL=f"http://{HOST}:{backoffice_port}",
               BACKOFFICE_DATABASE_URL=f"sqlite:///{tmp / 'backoffice.db'}",
               BACKOFFICE_PAYMENT_APPROVAL="manual", PUBLIC_BASE_URL=f"http://{HOST}:{engine_port}",
               PAYMENT_CALLBACK_SECRET="bench-callback-secret", PYTHONUNBUFFERED="1", BACKOFFICE_DEV="1")
    env.pop("MQTT_URL", None)
    return env


def run_checked(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


# ------------------------------------------------------------------ client

class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        body = urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
            try:
                self.conn.request("POST", path, body, headers)
                response = self.conn.getresponse()
                text = response.read().decode()
                if response.will_close:
                    self.close()
                return response.status, text
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Phase:
    """What one phase measured, client side (and the CPU each process spent on it)."""
    name: str
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    sessions: int = 0

    @property
    def hops(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def play_session(client: Client, path: str, session_id: str, phone: str, phase: Phase,
                 lock: threading.Lock) -> None:
    inputs: list[str] = []
    for kind, value in SCRIPT:
        if value is not None:
            inputs.append(value)
        form = {"sessionId": session_id, "serviceCode": "*123#", "phoneNumber": phone,
                "text": "*".join(inputs), "networkCode": "99999"}
        started = time.perf_counter()
        status, text = client.post(path, form)
        elapsed = time.perf_counter() - started
        with lock:
            phase.latencies[kind].append(elapsed)
            if status != 200 or not text.startswith("CON "):
                phase.errors.append(f"{kind}: {status} {text[:80]!r}")
    with lock:
        phase.sessions += 1


def drive(port: int, path: str, name: str, sessions: int, clients: int, stop: threading.Event) -> Phase:
    """``clients`` threads play ``sessions`` sessions between them; bounded by PHASE_SECONDS."""
    phase, lock, todo = Phase(name), threading.Lock(), queue.SimpleQueue[int]()
    for i in range(sessions):
        todo.put(i)
    tag = uuid.uuid4().hex[:8]
    deadline = time.monotonic() + PHASE_SECONDS

    def loop() -> None:
        client = Client(port)
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                play_session(client, path, f"bench_{tag}_{i}", PHONES[i % len(PHONES)], phase, lock)
        except Exception as exc:  # noqa: BLE001 - reported, not raised, so the others finish
            with lock:
                phase.errors.append(f"client: {type(exc).__name__}: {exc}")
        finally:
            client.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.2)
    phase.seconds = time.perf_counter() - started
    return phase


# ------------------------------------------------------------------ engine metrics

@dataclass(frozen=True)
class Histogram:
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), +Inf last
    count: float
    total: float

    def __sub__(self, other: Histogram) -> Histogram:
        return Histogram(tuple((le, c - o) for (le, c), (_, o) in zip(self.buckets, other.buckets, strict=True)),
                         self.count - other.count, self.total - other.total)

    def __add__(self, other: Histogram) -> Histogram:
        return Histogram(tuple((le, c + o) for (le, c), (_, o) in zip(self.buckets, other.buckets, strict=True)),
                         self.count + other.count, self.total + other.total)

    def quantile(self, q: float) -> float:
        """Linear interpolation inside the bucket, as Prometheus' ``histogram_quantile``."""
        if self.count <= 0:
            return float("nan")
        rank, lower, below = q * self.count, 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if le == float("inf"):
                    return lower
                return lower + (le - lower) * (rank - below) / max(cumulative - below, 1e-12)
            lower, below = le, cumulative
        return lower


METRICS = ("engine_hop_seconds", "engine_own_seconds", "engine_own_cpu_seconds", "engine_wait_seconds")


def scrape(port: int, names: tuple[str, ...] = METRICS) -> dict[str, Histogram]:
    """The histograms ``names`` (channel ussd) of whichever worker accepts this fresh connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", "/metrics", headers={"Connection": "close"})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found: dict[str, Histogram] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in names:
            continue
        buckets, count, total = [], 0.0, 0.0
        for sample in family.samples:
            if sample.labels.get("channel") != "ussd":
                continue
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
        if buckets:
            found[family.name] = Histogram(tuple(sorted(buckets)), count, total)
    missing = [name for name in names if name not in found]
    if missing:
        raise RuntimeError(f"no {missing} for channel ussd in /metrics")
    return found


def all_workers(port: int, expected_count: float | None = None, tries: int = 60) -> dict[str, Histogram]:
    """Sum of the distinct per-worker histograms seen over up to ``tries`` fresh connections.

    Stops once WORKERS distinct states are seen (or, when ``expected_count`` is given, once the
    summed count matches it). Two idle workers with the same state count once, which is right for
    zero and astronomically unlikely otherwise.
    """
    seen: dict[tuple[float, float], dict[str, Histogram]] = {}
    for _ in range(tries):
        found = scrape(port)
        hop = found["engine_hop_seconds"]
        seen[(hop.count, hop.total)] = found
        summed = sum_histograms(f["engine_hop_seconds"] for f in seen.values())
        if len(seen) >= WORKERS or (expected_count is not None and summed.count == expected_count):
            break
    return {name: sum_histograms(f[name] for f in seen.values()) for name in METRICS}


def sum_histograms(histograms: Iterable[Histogram]) -> Histogram:
    items = list(histograms)
    result = items[0]
    for h in items[1:]:
        result = result + h
    return result


# ------------------------------------------------------------------ back office and Redis

def backoffice_requests(log: Path) -> int:
    """Requests the back office has logged so far (werkzeug writes one line per request)."""
    return len(re.findall(rb'"(?:GET|POST|PUT|PATCH|DELETE) /api/[^"]*" \d{3}', log.read_bytes()))


def backend_calls_per_hop(port: int, log: Path) -> dict[str, int]:
    """Play one session alone and count the back office's requests during each hop."""
    client, calls, inputs = Client(port), {}, []
    session_id = f"probe_{uuid.uuid4().hex[:8]}"
    try:
        for kind, value in SCRIPT:
            if value is not None:
                inputs.append(value)
            before = backoffice_requests(log)
            status, text = client.post("/ussd/africastalking", {
                "sessionId": session_id, "serviceCode": "*123#", "phoneNumber": PHONES[0],
                "text": "*".join(inputs)})
            time.sleep(0.05)
            calls[kind] = backoffice_requests(log) - before
            if status != 200 or not text.startswith("CON "):
                raise RuntimeError(f"probe session broke at {kind!r}: {status} {text!r}")
    finally:
        client.close()
    return calls


def redis_bytes(client: redis.Redis, pattern: str) -> tuple[int, float]:
    sizes = [client.memory_usage(key, samples=0) or 0 for key in client.scan_iter(pattern, count=1000)]
    return len(sizes), (statistics.fmean(sizes) if sizes else float("nan"))


# ------------------------------------------------------------------ CPU accounting

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds) of every process we can read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return table


def cpu_seconds(roots: dict[str, int], store: redis.Redis) -> dict[str, float]:
    """CPU seconds used so far by each named process tree, by Redis and by this process (the client)."""
    table, result = _proc_table(), {}
    for name, root in roots.items():
        tree, grew = {root}, True
        while grew:
            found = {pid for pid, (ppid, _) in table.items() if ppid in tree} - tree
            tree |= found
            grew = bool(found)
        result[name] = sum(table[pid][1] for pid in tree if pid in table)
    info = store.info("cpu")
    result["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    usage = os.times()
    result["client"] = usage.user + usage.system
    return result


def cpu_per_hop(before: dict[str, float], after: dict[str, float], hops: int) -> dict[str, float]:
    return {name: (after[name] - before[name]) / max(hops, 1) for name in after}


# ------------------------------------------------------------------ report

def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rate(phase: Phase) -> float:
    return phase.hops / phase.seconds if phase.seconds else 0.0


def latency_rows(engine: Phase, floor: Phase, backend_kinds: set[str]) -> list[str]:
    groups = {"all hops": [k for k, _ in SCRIPT],
              "back-end hops": [k for k, _ in SCRIPT if k in backend_kinds],
              "no back-end hops": [k for k, _ in SCRIPT if k not in backend_kinds]}
    groups.update({f"  {k}": [k] for k, _ in SCRIPT})
    rows = []
    for label, kinds in groups.items():
        ours = [x for k in kinds for x in engine.latencies[k]]
        base = [x for k in kinds for x in floor.latencies[k]]
        rows.append(f"  {label:<26}{ms(pct(ours, .5))} /{ms(pct(ours, .99))}   {ms(pct(base, .5))} /"
                    f"{ms(pct(base, .99))}")
    return rows


def cpu_line(phase: Phase) -> str:
    return ", ".join(f"{name} {seconds * 1000:.2f}" for name, seconds in phase.cpu.items() if seconds > 0.00001)


def engine_histogram_lines(hist: Histogram, name: str) -> list[str]:
    mean = hist.total / hist.count if hist.count else float("nan")
    per_bucket = [(le, c - prev) for (le, c), (_, prev) in zip(hist.buckets, ((0.0, 0.0), *hist.buckets),
                                                                 strict=False)]
    summary = (f"  {name} (/metrics, {hist.count:.0f} hops): p50 {ms(hist.quantile(.5)).strip()} ms, "
               f"p99 {ms(hist.quantile(.99)).strip()} ms, mean {ms(mean).strip()} ms")
    return [
        summary,
        "    hops per bucket (le ms): " + ", ".join(f"{le * 1000:g}: {n:.0f}" for le, n in per_bucket if n),
    ]


def report(args: argparse.Namespace, engine: Phase, floor: Phase, hists: dict[str, Histogram],
           calls: dict[str, int], engine_redis: tuple[int, float], floor_redis: tuple[int, float]) -> str:
    backend_kinds = {k for k, n in calls.items() if n}
    ratio = rate(engine) / rate(floor) if rate(floor) else float("nan")
    # "Engine time": the engine's own work per hop (store, flow, rendering), back-end waits excluded.
    p99 = hists["engine_own_seconds"].quantile(0.99)
    header = (f"USSD hops bench: gunicorn gthread {WORKERS} workers x {THREADS} threads, {args.clients} "
              f"keep-alive clients, {args.sessions} sessions x {len(SCRIPT)} hops, Redis db 14, "
              f"{os.cpu_count()} CPUs")
    calls_line = "  back-office calls per hop (probe session): " + ", ".join(f"{k} {n}" for k, n in calls.items())
    redis_line = (f"  redis bytes per idle session: {engine_redis[1]:.0f} (MEMORY USAGE, {engine_redis[0]} "
                  f"ussd:s:* keys); floor {floor_redis[1]:.0f} ({floor_redis[0]} keys of 600 B)")
    verdict = (f"  target hops/s >= 0.8 x floor: {'MET' if ratio >= 0.8 else 'NOT MET'} ({ratio:.2f}); "
               f"engine own time p99 < 5 ms: {'MET' if p99 < 0.005 else 'NOT MET'} ({ms(p99).strip()} ms)")
    lines = [
        header,
        f"{'':28}{'engine':>16}   {'floor':>16}",
        f"  {'hops':<26}{engine.hops:>16}   {floor.hops:>16}",
        f"  {'hops/s':<26}{rate(engine):>16.0f}   {rate(floor):>16.0f}   ours/floor = {ratio:.2f}",
        f"  {'errors':<26}{len(engine.errors):>16}   {len(floor.errors):>16}",
        f"  client latency ms          {'p50 /    p99':>16}   {'p50 /    p99':>16}",
        *latency_rows(engine, floor, backend_kinds),
        *engine_histogram_lines(hists["engine_hop_seconds"], "engine_hop_seconds, back ends included"),
        *engine_histogram_lines(hists["engine_own_seconds"], "engine_own_seconds, back ends excluded"),
        calls_line,
        "  CPU ms per hop, engine run: " + cpu_line(engine) + " | floor run: " + cpu_line(floor),
        redis_line,
        verdict,
    ]
    lines += [f"  first {p.name} errors: {p.errors[:3]}" for p in (engine, floor) if p.errors]
    return "\n".join(lines)


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (default 8)")
    parser.add_argument("--sessions", type=int, default=320,
                        help=f"complete sessions per phase, {len(SCRIPT)} hops each (default 320)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    args = parser.parse_args(argv)
    # Ctrl-C (even when started from a shell that ignores it) and SIGTERM unwind the same way:
    # every child is stopped and Redis db 14 flushed.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    store = redis.Redis.from_url(REDIS_URL)
    store.ping()
    tmp = Path(tempfile.mkdtemp(prefix="ussd-bench-"))
    stop = threading.Event()
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(store.flushdb)
            store.flushdb()
            print(report(args, *run(args, tmp, stack, store, stop)))
        return 0
    except KeyboardInterrupt:
        stop.set()
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        stop.set()
        store.close()
        if args.keep:
            print(f"logs and databases kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def measured(port: int, path: str, name: str, args: argparse.Namespace, stop: threading.Event,
             store: redis.Redis, roots: dict[str, int]) -> Phase:
    """One phase of the load, with the CPU each process spent on it."""
    cpu_before = cpu_seconds(roots, store)
    phase = drive(port, path, name, args.sessions, args.clients, stop)
    phase.cpu = cpu_per_hop(cpu_before, cpu_seconds(roots, store), phase.hops)
    return phase


def run(args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack, store: redis.Redis,
        stop: threading.Event) -> tuple:
    run_checked([PY, "-m", "backoffice", "seed"], base_env(tmp, 0, 0))   # ports: each start's (``started``)
    run_checked([PY, "-m", "app", "migrate"], base_env(tmp, 0, 0))
    bo_log, engine_log, floor_log = tmp / "backoffice.log", tmp / "engine.log", tmp / "floor.log"

    def start_ours(running: contextlib.ExitStack, ports: list[int]) -> tuple[Proc, Proc, int]:
        bo_port, engine_port = ports
        env = base_env(tmp, bo_port, engine_port)
        bo = serve_backoffice(running, env, bo_port, bo_log)
        engine = running.enter_context(child(gunicorn("wsgi:app", engine_port, ROOT), env, engine_log))
        wait_http(engine_port, "/healthz", engine, engine_log)
        return bo, engine, engine_port

    def start_floor(running: contextlib.ExitStack, ports: list[int]) -> tuple[Proc, int]:
        floor = running.enter_context(child(gunicorn("floor_app:app", ports[0], ROOT / "bench"), base_env(tmp, 0, 0),
                                            floor_log))
        wait_http(ports[0], "/healthz", floor, floor_log)
        return floor, ports[0]

    bo, engine, engine_port = started(stack, 2, start_ours)
    floor, floor_port = started(stack, 1, start_floor)

    calls = backend_calls_per_hop(engine_port, bo_log)
    warm = max(2 * args.clients, 8)
    drive(engine_port, "/ussd/africastalking", "warm-up", warm, args.clients, stop)
    drive(floor_port, "/hop", "warm-up", warm, args.clients, stop)
    store.flushdb()

    before = all_workers(engine_port)
    ours = measured(engine_port, "/ussd/africastalking", "engine", args, stop, store,
                    {"gunicorn": engine.pid, "back office": bo.pid})
    after = all_workers(engine_port, expected_count=before["engine_hop_seconds"].count + ours.hops)
    base = measured(floor_port, "/hop", "floor", args, stop, store, {"gunicorn": floor.pid})
    hists = {name: after[name] - before[name] for name in METRICS}
    counted = hists["engine_hop_seconds"].count
    if counted != ours.hops:
        ours.errors.append(f"/metrics counted {counted:.0f} hops for {ours.hops} sent (a worker not seen)")
    return ours, base, hists, calls, redis_bytes(store, "conv:s:*"), redis_bytes(store, "floor:s:*")


if __name__ == "__main__":
    sys.exit(main())
