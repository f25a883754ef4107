"""Hop cost as the live sessions grow: dial and navigation latency with 1 000 to 1 000 000 idle sessions in Redis.

``python -m bench.session_scale`` (or ``make bench-scale``) starts the product as ``make bench`` does (``python -m
app serve``: gunicorn, back office, worker; Redis sessions, a PostgreSQL schema of the run's own) and the floor
(``bench/floor_app.py``, one Redis GET and one SET) on the same scratch Redis database (``BENCH_REDIS_URL``, or the
first empty database, claimed as the tests claim theirs so they leave it alone). It seeds the first level of
``--sessions`` (1 000 idle sessions) there and measures, with wrk, ours' dial (a new session per request) and
navigation hop (next/previous page on sessions dialled beforehand) and the floor's hop, ``--seconds`` each at
``--concurrency`` connections. Then, for each higher level (10 000, 100 000, 1 000 000), it tops a second claimed
database up to that level and measures the same cells in ``--rounds`` pairs: one cell on the first level's
database, one with the two databases switched (SWAPDB, instant), in alternating order, so that each level is
compared with the first on the same machine a few seconds apart.

The idle sessions are the product's own: a real session (a known customer dialled, left on the main menu) is
read back from Redis as the product serialised it, and copied under fresh session ids and callers of the same
length (the bytes stay valid whatever the encoding), streamed through ``redis-cli --pipe`` 10 000 commands at a
time with a TTL (``--ttl``, an hour by default rather than the product's 3 minutes, so the levels stay full for
the run). Every key the run
made, in both databases, is deleted at the end (UNLINK, in batches).

Prints and writes ``bench/results/session_scale.md`` (and ``.json``): the first level alone, then per level and
hop the pairs' requests/s, p50, p99 and CPU per hop, each as the median of the rounds' ratios to the first level,
and requests/s as a ratio to the floor measured at the same level. Ratios within the run
are the claim: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

import redis

from app.web_servers import DEFAULT_SERVER
from bench import bench as main_bench
from bench.bench import (
    PG_URL,
    PHONE,
    RESULTS,
    Cell,
    Server,
    claim_empty_database,
    ensure_wrk,
    machine,
    measure,
    own_redis_keys,
    pg_schema,
    release_database,
    run_id,
    seed,
    slots_for,
    start_floor,
    start_ours,
    wrk,
)
from bench.procs import nofile_limit

TEMPLATE_ID = "scaletemplate000"  # 16 characters, as every copy's id: scale-<10 digits>
PIPELINE = 10_000


def _template(store: redis.Redis, ours: Server) -> list[tuple[bytes, bytes, int]]:
    """The keys a real idle session left in Redis (name, value, TTL): a known customer dialled and left on
    the main menu, the most common idle session; the keys named after its session id."""
    for text in ("",):
        body = urllib.parse.urlencode({"sessionId": TEMPLATE_ID, "serviceCode": "*123#", "phoneNumber": PHONE,
                                       "networkCode": "99999", "text": text}).encode()
        request = urllib.request.Request(ours.url + ours.path, body, {"X-Gateway-Token": ours.token})
        with urllib.request.urlopen(request, timeout=10) as answer:
            screen = answer.read().decode()
        if not screen.startswith("CON "):
            raise SystemExit(f"the template session did not reach the main menu: {screen!r}")
    time.sleep(0.2)
    keys = [k for k in store.scan_iter(match=f"*{TEMPLATE_ID}*", count=10_000)]
    found = [(k, bytes(store.get(k) or b""), store.ttl(k)) for k in keys]   # type: ignore[arg-type]
    if not any(len(value) > 100 for _, value, _ in found):
        raise SystemExit(f"no session found in Redis under the template id: {found!r}")
    return found


def _copy(data: bytes, number: int) -> bytes:
    """``data`` with the template's session id and caller replaced by the ``number``-th copy's (same lengths)."""
    session = f"scale-{number:010d}".encode()
    caller = f"+22178{number:07d}".encode()
    return data.replace(TEMPLATE_ID.encode(), session).replace(PHONE.encode(), caller)


def _resp(*parts: bytes) -> bytes:
    """One command in Redis's wire protocol (RESP)."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def top_up(url: str, template: list[tuple[bytes, bytes, int]], have: int, want: int, ttl: int) -> float:
    """Write copies ``have`` .. ``want - 1`` of the template with their TTL; seconds taken.

    Through ``redis-cli --pipe`` (Redis's documented mass insertion: the commands streamed in the wire
    protocol, replies read as they come), ``PIPELINE`` commands per write: a million sessions in seconds,
    where a Python client's pipelines spend minutes building commands."""
    parsed = urllib.parse.urlparse(url)
    cmd = ["redis-cli", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379),
           "-n", (parsed.path.strip("/") or "0"), "--pipe"]
    env = dict(os.environ, REDISCLI_AUTH=parsed.password or "") if parsed.password else None
    started = time.perf_counter()
    expiry = str(ttl).encode()
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=env) as pipe:
        assert pipe.stdin is not None and pipe.stdout is not None
        chunk: list[bytes] = []
        for number in range(have, want):
            for key, value, _ in template:
                chunk.append(_resp(b"SET", _copy(key, number), _copy(value, number), b"EX", expiry))
            if len(chunk) >= PIPELINE:
                pipe.stdin.write(b"".join(chunk))
                chunk = []
        pipe.stdin.write(b"".join(chunk))
        pipe.stdin.close()
        report = pipe.stdout.read().decode(errors="replace")
    if pipe.returncode or "errors: 0" not in report:
        raise SystemExit(f"seeding through redis-cli --pipe failed:\n{report}")
    return time.perf_counter() - started


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


HOPS = {("floor", "dial"): "floor GET+SET", ("ours", "dial"): "dial", ("ours", "nav"): "navigation"}


def table(results: dict[str, Any]) -> str:
    """The first level alone, then one line per higher level and hop: the paired cells' medians, and the
    median of each round's ratio (level over first level, measured minutes apart at most)."""
    cells = results["cells"]
    first_level = results["first_level"]
    m = results["machine"]
    lines = [(f"Machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, {m['date']}; wrk {main_bench.THREADS} "
              f"threads for the dial, one per connection for navigation, {results['concurrency']} connections, "
              f"{results['seconds']:g} s per cell, {results['rounds']} round(s) per level; idle sessions seeded "
              f"{', '.join(f'{k}: {v:.1f} s' for k, v in results['seed_seconds'].items())}."),
             "",
             f"First level alone ({first_level:,} idle sessions, nothing else seeded):",
             "",
             "| keys in the database | hop | req/s | ×floor | p50 ms | p99 ms | CPU ms/hop | errors |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    alone = [c for c in cells if c["state"] == "alone"]
    floor_alone = next((c for c in alone if c["server"] == "floor"), None)
    for c in alone:
        lines.append(f"| {c['live']:,} | {HOPS[c['server'], c['kind']]} | {c['rps']:.0f} | "
                     f"{_ratio(c['rps'], floor_alone['rps'] if floor_alone else 0)} | {c['p50_ms']:.1f} | "
                     f"{c['p99_ms']:.1f} | {c['cpu_ms']:.2f} | {c['errors']} |")
    lines += ["",
              (f"Each level against the first, in pairs: the same server, the same load, the database switched "
               f"between {first_level:,} and the level's idle sessions (SWAPDB) for alternate cells. Ratios are "
               f"the median of the rounds' level/first ratios:"),
              "",
              ("| idle sessions | hop | req/s first / level | req/s ×first | ×floor at level | p50 ×first "
               "| p99 ms first / level | p99 ×first | CPU ms/hop first / level | CPU ×first | errors |"),
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for level in sorted({c["sessions"] for c in cells if c["state"] == "level"}):
        for (server, kind), hop in HOPS.items():
            def of(state: str, s: str = server, k: str = kind, lv: int = level) -> list[dict[str, Any]]:
                return sorted((c for c in cells if c["sessions"] == lv and c["state"] == state
                               and c["server"] == s and c["kind"] == k), key=lambda c: c["round"])
            base, high = of("first"), of("level")
            if not base or not high:
                continue
            floors = of("level", "floor", "dial")

            def paired(field: str, b: list[dict[str, Any]] = base, h: list[dict[str, Any]] = high) -> float:
                return _median([y[field] / x[field] for x, y in zip(b, h, strict=False) if x[field]])

            def mid(rows: list[dict[str, Any]], field: str) -> float:
                return _median([r[field] for r in rows])
            lines.append(
                f"| {level:,} | {hop} | {mid(base, 'rps'):.0f} / {mid(high, 'rps'):.0f} | "
                f"{paired('rps'):.2f}x | {_ratio(mid(high, 'rps'), mid(floors, 'rps'))} | {paired('p50_ms'):.2f}x | "
                f"{mid(base, 'p99_ms'):.1f} / {mid(high, 'p99_ms'):.1f} | {paired('p99_ms'):.2f}x | "
                f"{mid(base, 'cpu_ms'):.2f} / {mid(high, 'cpu_ms'):.2f} | {paired('cpu_ms'):.2f}x | "
                f"{sum(c['errors'] for c in base + high)} |")
    lines.append("")
    lines.append("Redis memory (the whole server): " + ", ".join(
        f"{int(k):,} sessions {v / 2**20:.0f} MiB" for k, v in results["redis_memory"].items()))
    return "\n".join(lines)


def _database(url: str) -> int:
    return int(urllib.parse.urlparse(url).path.strip("/") or 0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Seed the first level in ours' database and measure it alone; then for each higher level, seed a twin
    database to that level and measure in pairs, switching the two databases (SWAPDB: instant, and every
    client of the database sees the other's keys at once) between the cells of a pair.

    Pairs rather than one level after the other: the machine is shared, and a run of levels drifted with it
    (the floor itself moved by 10 % between levels). A cell at the first level and one at the higher level,
    seconds apart and in alternating order, see the same machine."""
    ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="ussd-scale-"))
    cells: list[dict[str, Any]] = []
    seed_seconds: dict[str, float] = {}
    memory: dict[int, int] = {}
    first_level, *levels = args.sessions

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        with contextlib.ExitStack() as stack:
            store = stack.enter_context(own_redis_keys(main_bench.REDIS_URL))
            ours_db = _database(main_bench.REDIS_URL)
            twin_url, twin = claim_empty_database(
                [main_bench.REDIS_URL.rpartition("/")[0] + f"/{n}" for n in range(15, -1, -1) if n != ours_db])
            stack.callback(release_database, twin)
            database_url = stack.enter_context(pg_schema(PG_URL))
            say(f"Redis {main_bench.REDIS_URL} (twin {twin_url}); starting ours (as make run) and the floor")
            ours, _ = start_ours(stack, tmp, database_url, DEFAULT_SERVER)
            floor = start_floor(stack, tmp)
            for server in (ours, floor):
                wrk(server, "dial", 10, 2, "load", 8, run_id(server, "warm-up", 10))
            template = _template(store, ours)
            say(f"template session: {len(template)} key(s), {sum(len(v) for _, v, _ in template)} bytes")
            started = time.monotonic()

            def cells_of(level: int, state: str, round_: int) -> None:
                dialled = 0.0   # ours' dial rate here: sizes the navigation's sessions (bench.slots_for)
                for server, kind in HOPS:
                    server_ = ours if server == "ours" else floor
                    run = run_id(server_, kind, args.concurrency)
                    slots = slots_for(args.concurrency)
                    if kind == "nav":
                        slots, _ = seed(server_, kind, args.concurrency, run, dialled, args.seconds)
                    live = int(store.dbsize())
                    cell: Cell = measure(server_, kind, args.concurrency, args.seconds, run, slots)
                    if server == "ours" and kind == "dial":
                        dialled = cell.rps
                    cells.append(asdict(cell) | {"rps": cell.rps, "sessions": level, "live": live, "state": state,
                                                 "round": round_})
                    say(f"[{time.monotonic() - started:4.0f}s] {level:>9,} sessions ({state}, round {round_}): "
                        f"{server:<5} {kind:<4} {cell.rps:7.0f} req/s, p50 {cell.p50_ms:6.1f} ms, "
                        f"p99 {cell.p99_ms:6.1f} ms, errors {cell.errors}")

            seed_seconds[f"{first_level:,}"] = top_up(main_bench.REDIS_URL, template, 0, first_level, args.ttl)
            memory[first_level] = int(store.info("memory")["used_memory"])
            cells_of(first_level, "alone", 0)
            have = 0
            for level in levels:
                took = top_up(twin_url, template, have, level, args.ttl)
                seed_seconds[f"{level:,}"] = took
                say(f"[{time.monotonic() - started:4.0f}s] seeded {level - have:,} idle sessions in {took:.1f} s")
                have = level
                memory[level] = int(store.info("memory")["used_memory"])
                for round_ in range(args.rounds):
                    for state in (("first", "level") if round_ % 2 == 0 else ("level", "first")):
                        if state == "level":
                            store.swapdb(ours_db, _database(twin_url))
                        try:
                            # the caller's identity cache stayed with the other database: fill it first
                            wrk(ours, "dial", 10, 1, "load", 8, run_id(ours, "warm-up", 10))
                            cells_of(level, state, round_)
                        finally:
                            if state == "level":
                                store.swapdb(ours_db, _database(twin_url))
            say("deleting the run's keys")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"machine": machine(), "concurrency": args.concurrency, "seconds": args.seconds, "rounds": args.rounds,
            "first_level": first_level, "cells": cells, "seed_seconds": seed_seconds, "redis_memory": memory}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1000,10000,100000,1000000",
                        help="comma-separated levels of idle sessions, increasing")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measured phase")
    parser.add_argument("--concurrency", type=int, default=100, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=2,
                        help="pairs (first level, level) measured per level, in alternating order")
    parser.add_argument("--ttl", type=int, default=3600, help="TTL of the seeded idle sessions, seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.sessions = sorted(int(n) for n in args.sessions.split(","))
    nofile_limit(4 * args.concurrency + 1024)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = run(args)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped and the run's keys deleted", file=sys.stderr)
        return 130
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "session_scale.json").write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    (args.out / "session_scale.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
