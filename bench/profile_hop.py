"""Where does one hop's CPU go? The dial of a known customer and a navigation hop, in-process, end to end.

The production set-up without the sockets: the seeded back office on loopback, the app built by
``create_app`` with Redis sessions (``PROFILE_REDIS_URL``, an empty database of its own, default db 3, claimed as the tests claim theirs;
only the keys made here are deleted) and PostgreSQL (a schema made for the run and dropped after it),
``SECRET_KEY`` and ``USSD_GATEWAY_TOKEN`` set, and gunicorn's own access logger (masked, as
``app/gunicorn_conf.py`` configures it) writing to ``/dev/null``. Each hop is one WSGI call with the
environ gunicorn would build, then the access-log line gunicorn would write.

Hop kinds, as ``make bench`` sends them: **dial** (a new session of ``+221770000001``, ``text=``; its
identity is cached after the first), **nav** (sessions on the bills list paging ``98``/``99``) and **balance**
(``1`` on the main menu: the billing system called over HTTP; its engine own time leaves that call out). The
floor (``bench/floor_app.py``, one Redis GET and one SET) is measured the same way in the same run, so
the figure to read is ours' CPU per hop as a multiple of the floor's (gunicorn's HTTP parsing and
socket work, the same for both, is left out: add ~0.4 ms to each for the served figure).

Usage: ``python -m bench.profile_hop [--hops 2000] [--rounds 1] [--top 25] [--profile dial|nav|none]
[--pace MS]``

``--rounds K`` measures floor, dial and nav K times in turn and prints each one's best round (least CPU per
hop, lowest own p50): on a shared machine a neighbour only ever adds time, so the best of several short
rounds is the figure that compares between two versions of the code.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import io
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import redis

# As `python -m app serve` runs it: metrics written for every worker (set before prometheus_client loads).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="ussd-profile-metrics-"))

from bench.scratch_postgres import scratch_schema
from bench.ussd_hops import HOST, PY, base_env, run_checked, serve_backoffice, started

if TYPE_CHECKING:
    from engine import HopObserver

REDIS_URL = os.environ.get("PROFILE_REDIS_URL", "redis://127.0.0.1:6379/3")
PHONE = "+221770000001"
TOKEN = secrets.token_hex(16)


class _Resp:
    """What gunicorn's access logger reads of a response."""

    def __init__(self, status: str, headers: list[tuple[str, str]], sent: int) -> None:
        self.status, self.headers, self.sent = status, headers, sent


class _Req:
    """What gunicorn's access logger reads of a request: its headers, as gunicorn spells them."""

    def __init__(self, length: int) -> None:
        self.headers = [("HOST", f"{HOST}:8000"), ("USER-AGENT", "wrk"), ("X-GATEWAY-TOKEN", TOKEN),
                        ("CONTENT-TYPE", "application/x-www-form-urlencoded"), ("CONTENT-LENGTH", str(length))]


def access_logger() -> Any:
    """gunicorn's Logger with the product's config (``app.gunicorn_conf``), access log to /dev/null."""
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("accesslog", os.devnull)
    conf = __import__("app.gunicorn_conf", fromlist=["*"])
    logger_class = getattr(conf, "logger_class", None)
    if logger_class is not None:
        cfg.set("logger_class", logger_class)
    return cfg.logger_class(cfg)


def environ(path: str, body: bytes) -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
            "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": HOST, "SERVER_PORT": "8000",
            "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": f"{HOST}:8000", "HTTP_X_GATEWAY_TOKEN": TOKEN,
            "HTTP_CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0)}


def hop(app: Callable[..., Any], log: Any, path: str, session: str, text: str) -> str:
    body = (f"sessionId={session}&serviceCode=%2A123%23&phoneNumber={quote(PHONE)}&networkCode=99999"
            f"&text={quote(text)}").encode()
    env = environ(path, body)
    started = datetime.datetime.now()
    captured: list[Any] = []
    chunks = app(env, lambda status, headers, exc=None: captured.extend((status, headers)))
    out = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    log.access(_Resp(captured[0], captured[1], len(out)), _Req(len(body)), env, datetime.datetime.now() - started)
    return out.decode()


class Kind:
    """A hop kind: ``next()`` sends one hop and checks its answer."""

    def __init__(self, name: str, app: Callable[..., Any], log: Any, path: str, expect: str = "CON ") -> None:
        self.name, self.app, self.log, self.path, self.expect = name, app, log, path, expect
        self.count = 0
        self.run = secrets.token_hex(3)

    def next(self) -> None:
        self.count += 1
        answer = self.send()
        assert answer.startswith(self.expect) and "Choix invalide" not in answer, (self.name, answer)

    def send(self) -> str:
        return hop(self.app, self.log, self.path, f"{self.name}-{self.run}-{self.count}", "")


class Nav(Kind):
    """Sessions on the bills list (dial, ``1``, ``1``), each hop ``98`` or ``99`` after the last."""

    SLOTS, MAX_HOPS = 64, 60

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.texts: dict[int, list[str]] = {}
        self.generation: dict[int, int] = {}

    def _open(self, slot: int) -> None:
        self.generation[slot] = self.generation.get(slot, -1) + 1
        self.texts[slot] = []
        for step in ("", "1", "1*1"):
            hop(self.app, self.log, self.path, self._session(slot), step)
        self.texts[slot] = ["1", "1"]

    def _session(self, slot: int) -> str:
        return f"nav-{self.run}-{slot}-{self.generation[slot]}"

    def send(self) -> str:
        slot = self.count % self.SLOTS
        if slot not in self.texts or len(self.texts[slot]) >= self.MAX_HOPS:
            self._open(slot)
        inputs = self.texts[slot]
        inputs.append("98" if len(inputs) % 2 == 0 else "99")
        return hop(self.app, self.log, self.path, self._session(slot), "*".join(inputs))


class Balance(Nav):
    """Sessions on the main menu, each hop ``1`` (the balance: a call to the billing system), after an untimed
    ``0`` back to the menu: the back-end hop of ``make bench``. ``untimed`` forgets the back hop's own time."""

    MAX_HOPS = 40

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.untimed: Callable[[], None] = lambda: None

    def _open(self, slot: int) -> None:
        self.generation[slot] = self.generation.get(slot, -1) + 1
        hop(self.app, self.log, self.path, self._session(slot), "")
        self.texts[slot] = []

    def send(self) -> str:
        slot = self.count % self.SLOTS
        if slot not in self.texts or len(self.texts[slot]) >= self.MAX_HOPS:
            self._open(slot)
        inputs = self.texts[slot]
        if inputs:
            inputs.append("0")
            hop(self.app, self.log, self.path, self._session(slot), "*".join(inputs))
            self.untimed()
        inputs.append("1")
        return hop(self.app, self.log, self.path, self._session(slot), "*".join(inputs))


class OwnTimes:
    """The engine's own seconds of each hop (``engine_own_seconds``: back ends excluded) and their CPU share
    (``engine_own_cpu_seconds``), as its observer hears them."""

    def __init__(self, inner: HopObserver | None) -> None:
        self.inner = inner
        self.seconds: list[float] = []
        self.cpu: list[float] = []

    def clear(self) -> None:
        self.seconds.clear()
        self.cpu.clear()

    def observe(self, *, channel: str, seconds: float, step_seconds: float, wait_seconds: float,
                end: bool, cpu_seconds: float) -> None:
        self.seconds.append(max(0.0, seconds - step_seconds - wait_seconds))
        self.cpu.append(cpu_seconds)
        if self.inner is not None:
            self.inner.observe(channel=channel, seconds=seconds, step_seconds=step_seconds,
                               wait_seconds=wait_seconds, end=end, cpu_seconds=cpu_seconds)

    def forget_last(self) -> None:
        if self.seconds:
            self.seconds.pop()
            self.cpu.pop()

    def quantile(self, q: float, cpu: bool = False) -> float:
        """Milliseconds (of the own time, or of its CPU share); 0 when nothing was heard (the floor has no engine)."""
        ordered = sorted(self.cpu if cpu else self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    def quantiles(self) -> str:
        return (f"engine own p50 {self.quantile(0.5):.3f} ms, p99 {self.quantile(0.99):.3f} ms "
                f"(its CPU p50 {self.quantile(0.5, cpu=True):.3f} ms)")


def cpu_per_hop(kind: Kind, hops: int, own: OwnTimes | None = None) -> float:
    """CPU milliseconds per hop of this process (the back office's, a separate process, not counted)."""
    for _ in range(min(200, hops)):
        kind.next()
    if own is not None:
        own.clear()
    started = time.process_time()
    for _ in range(hops):
        kind.next()
    return (time.process_time() - started) / hops * 1000


def paced_hops(kinds: dict[str, Kind], own: OwnTimes, pause_ms: float, hops: int) -> list[str]:
    """Each kind's engine own time with ``pause_ms`` between hops, as at a person's pace: the process, Redis
    and the CPU idle between them (caches cold, cores asleep), where back-to-back hops keep them warm. Beside
    it, the whole WSGI call's wall time (p50), the floor's included: what the same idleness costs a bare
    GET + SET, the least a hop can take on this machine at that pace."""
    lines, calls = [], {}
    for name, kind in kinds.items():
        own.clear()
        walls = []
        for _ in range(hops):
            time.sleep(pause_ms / 1000)
            started = time.perf_counter()
            kind.next()
            walls.append(time.perf_counter() - started)
        calls[name] = sorted(walls)[len(walls) // 2] * 1000
        ratio = f", {calls[name] / calls['floor']:.2f}x the floor's" if "floor" in calls and name != "floor" else ""
        engine = f"{own.quantiles()}, " if own.seconds else ""
        lines.append(f"{name}, one hop every {pause_ms:g} ms: {engine}whole call p50 {calls[name]:.3f} ms{ratio}")
    return lines


def threaded_dials(app: Any, log: Any, own: OwnTimes, threads: int, hops: int) -> str:
    """``hops`` dials sent from ``threads`` threads at once, as gthread's threads run them in one process."""
    kinds = [Kind("dial", app, log, "/ussd/africastalking") for _ in range(threads)]
    own.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda kind: [kind.next() for _ in range(hops // threads)], kinds))
    wall = time.perf_counter() - started
    return (f"dial from {threads} threads (switch interval {sys.getswitchinterval() * 1000:g} ms): "
            f"{hops / wall:.0f} hops/s, {own.quantiles()}")


def session_bytes(store: redis.Redis) -> str:
    from engine.session import Session

    keys = list(store.scan_iter("conv:s:ussd:dial-*", count=1000))[:100]
    usage = [store.memory_usage(k) or 0 for k in keys]
    raw: bytes = store.get(keys[0])  # type: ignore[assignment]
    key = keys[0].decode().removeprefix("conv:s:")
    session = Session.decode(raw, key)
    encode = timeit.timeit(session.encode, number=500) / 500
    decode = timeit.timeit(lambda: Session.decode(raw, key), number=500) / 500
    if os.environ.get("PROFILE_SHOW_SESSION"):
        print(session.to_json())
    return (f"idle session after a dial: {len(raw)} bytes serialised, MEMORY USAGE {sum(usage) / len(usage):.0f} "
            f"(key included); encode {encode * 1e6:.0f} us, decode {decode * 1e6:.0f} us")


@contextlib.contextmanager
def own_keys(url: str) -> Iterator[redis.Redis]:
    store = redis.Redis.from_url(url)
    # Claimed the way tests/support/services.py claims a database, so that no test run takes it meanwhile.
    if store.dbsize() or not store.set("tests:claimed-by", f"profile-{os.getpid()}", nx=True, ex=3600):
        raise SystemExit(f"{url} is not empty; point PROFILE_REDIS_URL at a database of its own")
    try:
        yield store
    finally:
        keys = list(store.scan_iter(count=1000))
        for i in range(0, len(keys), 1000):
            store.delete(*keys[i:i + 1000])
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1, help="measure each kind this many times, in turn; "
                        "print each one's best round")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--profile", choices=("dial", "nav", "balance", "none"), default="dial")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--pace", type=float, default=0.0,
                        help="also send each kind's hops with this many milliseconds between them (500 hops)")
    parser.add_argument("--threads", type=int, default=0,
                        help="also send the dials from this many threads at once (the GIL's share of own time)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for the threaded run (Python's default: 0.005 s)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ussd-profile-"))
    try:
        with own_keys(REDIS_URL) as store, scratch_schema() as database_url:
            run_checked([PY, "-m", "backoffice", "seed"], base_env(tmp, 0, 0))

            def start_backoffice(running: contextlib.ExitStack, ports: list[int]) -> dict[str, str]:
                env = base_env(tmp, ports[0], 0)   # the engine is served in process here: no port of its own
                # two gunicorn workers, as ``app serve`` runs it with Redis (kept-alive connections)
                serve_backoffice(running, env, ports[0], tmp / "backoffice.log", "--workers", "2")
                return env

            with contextlib.ExitStack() as servers:
                env = started(servers, 1, start_backoffice)
                os.environ.update(SECRET_KEY=secrets.token_hex(32), USSD_GATEWAY_TOKEN=TOKEN, LOG_LEVEL="WARNING")
                from app.factory import create_app
                from app.settings import Settings
                from app.storage import migrate

                migrate(database_url)
                settings = Settings.from_env()
                settings = Settings(**{**settings.__dict__, "database_url": database_url, "redis_url": REDIS_URL,
                                       "backoffice_url": env["BACKOFFICE_URL"],
                                       "payment_callback_secret": "bench-callback-secret"})
                app = create_app(settings)
                log = access_logger()
                os.environ["REDIS_URL"] = REDIS_URL
                from bench.floor_app import create_app as create_floor

                floor = Kind("floor", create_floor(REDIS_URL), log, "/hop")
                engine = app.extensions["engine"]
                own = engine.observer = OwnTimes(engine.observer)
                balance = Balance("balance", app, log, "/ussd/africastalking")
                balance.untimed = own.forget_last
                kinds = {"dial": Kind("dial", app, log, "/ussd/africastalking"),
                         "nav": Nav("nav", app, log, "/ussd/africastalking"), "balance": balance}
                best: dict[str, tuple[float, float, float, float]] = {}
                for _ in range(args.rounds):
                    for kind in (floor, *kinds.values()):
                        ms = cpu_per_hop(kind, args.hops, own)
                        now = (ms, own.quantile(0.5), own.quantile(0.99), own.quantile(0.5, cpu=True))
                        best[kind.name] = tuple(map(min, zip(best.get(kind.name, now), now)))  # type: ignore[assignment]
                floor_ms = best["floor"][0]
                print(f"floor: {floor_ms:.3f} ms CPU per hop in-process")
                for name in kinds:
                    ms, p50, p99, cpu50 = best[name]
                    print(f"{name}: {ms:.3f} ms CPU per hop in-process, {ms / floor_ms:.2f}x the floor's; "
                          f"engine own p50 {p50:.3f} ms (its CPU {cpu50:.3f}), p99 {p99:.3f} ms (one hop at a time"
                          f"{f', best of {args.rounds} rounds' if args.rounds > 1 else ''})")
                print(session_bytes(store))
                if args.pace:
                    print("\n".join(paced_hops({"floor": floor, **kinds}, own, args.pace, 500)))
                if args.threads:
                    if args.switch_interval is not None:
                        sys.setswitchinterval(args.switch_interval)
                    print(threaded_dials(app, log, own, args.threads, args.hops))
                if args.profile != "none":
                    profile = cProfile.Profile(time.process_time)  # CPU, not waits on sockets
                    kind = kinds[args.profile]
                    profile.enable()
                    for _ in range(args.hops):
                        kind.next()
                    profile.disable()
                    out = io.StringIO()
                    pstats.Stats(profile, stream=out).strip_dirs().sort_stats(args.sort).print_stats(args.top)
                    print(out.getvalue())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
