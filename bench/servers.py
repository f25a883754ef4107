"""The engine's production server chosen by measurement: gunicorn sync, gunicorn gthread and granian, same run.

``python -m bench.servers`` (or ``make bench-servers``) serves the same ``wsgi:app`` three times, each under one
server of ``app/web_servers.py`` with 2 worker processes (the command lines ``app serve`` uses), beside one back
office (gunicorn, as ``app serve`` runs it on the production set-up), one PostgreSQL schema of the run's own and
one scratch Redis database, with the floor (``bench/floor_app.py``) for the ratios. wrk drives the dial of a
known customer, the navigation hop (next/previous page of the bills list) and the balance hop (``1`` then ``0``,
half of them calling the back office), sessions seeded beforehand, at each ``--concurrency``, with the engine's
own time per hop (``engine_own_seconds`` from each server's ``/metrics``); ``--servers sync:4`` tries 4 workers, the servers interleaved in every cell so a noisy neighbour hits them alike, and
``--rounds`` times over (the table keeps each server's median). The access log is off for all three (granian
writes none): the comparison is of the servers, not of their logging.

Writes ``bench/results/servers.md`` and ``servers.json``. Ratios within the run are the claim.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.web_servers import SERVERS, THREADS, engine_command
from bench import bench as main_bench
from bench.bench import (
    PACED_KINDS,
    PG_URL,
    RESULTS,
    Server,
    ensure_wrk,
    machine,
    measure,
    own_redis_keys,
    pg_schema,
    product_env,
    run_id,
    seed,
    slots_for,
    start_floor,
    wrk,
)
from bench.procs import nofile_limit
from bench.ussd_hops import HOST, PY, child, run_checked, serve_backoffice, started, wait_http

KINDS = ("dial", "nav", "balance")
REJECTS = "en cours|indisponible|Choix invalide"


def start_engines(stack: contextlib.ExitStack, tmp: Path, database_url: str, servers: list[str]) -> list[Server]:
    """One back office, then the engine under each server (its own port and metrics directory)."""
    run_checked([PY, "-m", "app", "migrate"], product_env(tmp, database_url, 0, 0))

    def start_backoffice(running: contextlib.ExitStack, ports: list[int]) -> dict[str, str]:
        env = product_env(tmp, database_url, 0, ports[0])
        run_checked([PY, "-m", "backoffice", "seed"], env)
        serve_backoffice(running, env, ports[0], tmp / "backoffice.log", "--workers", "2")
        return env

    env = started(stack, 1, start_backoffice)
    engines = []
    for name in servers:
        # "sync:4": gunicorn sync with 4 workers (default 2); "gthread:4x1": 4 workers of 1 thread
        server, _, shape = name.partition(":")
        workers, _, threads = shape.partition("x")
        log = tmp / f"{name.replace(':', '-')}.log"

        def start(running: contextlib.ExitStack, ports: list[int], name: str = name, server: str = server,
                  workers: str = workers, threads: str = threads, log: Path = log) -> Server:
            own = dict(env, PORT=str(ports[0]), PUBLIC_BASE_URL=f"http://{HOST}:{ports[0]}",
                       PROMETHEUS_MULTIPROC_DIR=str(tmp / f"prometheus-{name.replace(':', '-')}"))
            Path(own["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
            proc = running.enter_context(child(engine_command(server, HOST, ports[0], int(workers or 2),
                                                              access_log=False, threads=int(threads or THREADS)),
                                               own, log))
            wait_http(ports[0], "/healthz", proc, log)
            return Server(name, ports[0], "/ussd/africastalking", [proc.pid], env["USSD_GATEWAY_TOKEN"], REJECTS,
                          {"dial": ("-", "-"), "nav": ("98,99", "1*1"), "balance": ("1,0", "-")}, engine=True)

        engines.append(started(stack, 1, start))
    return engines


def table(results: dict[str, Any]) -> str:
    """Per hop and concurrency, each server's median over the rounds, with its ratio to the floor and to gthread."""
    m = results["machine"]
    lines = [(f"Machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, {m['date']}; wrk 2 threads for the dial, one per "
             f"connection for navigation, {results['seconds']:g} s per cell, {results['rounds']} round(s) (medians); 2 workers each unless "
             "named server:N, access log off."), "",
             ("| hop | conns | server | req/s | ×floor | ×gthread | p50 ms | p99 ms | p99 ×floor | errors | CPU ms/hop "
              "| engine own p50 / p99 ms (floor: its GET+SET) |"),
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    paced: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in results["cells"]:
        if cell.get("think_ms"):
            paced.setdefault((cell["kind"], cell["server"]), []).append(cell)
        else:
            groups.setdefault((cell["kind"], cell["concurrency"], cell["server"]), []).append(cell)

    def median(kind: str, conc: int, server: str, key: str) -> float:
        return statistics.median(c.get(key) or 0.0 for c in groups.get((kind, conc, server), [{key: 0.0}]))

    def own(kind: str, conc: int, server: str) -> str:
        """The engine's own time; the floor's GET + SET for the floor (results before 28/11 have none)."""
        name = "redis" if server == "floor" else "own"
        if median(kind, conc, server, f"{name}_p50_ms") == 0.0:
            return "-"
        return (f"{median(kind, conc, server, f'{name}_p50_ms'):.2f} / "
                f"{median(kind, conc, server, f'{name}_p99_ms'):.2f}")

    for kind in KINDS:
        for conc in sorted({c["concurrency"] for c in results["cells"]}):
            floor_rps = median("dial", conc, "floor", "rps")
            floor_p99 = median("dial", conc, "floor", "p99_ms")
            # ratios to gthread (the earlier default), else to the first server of the run
            base = median(kind, conc, "gthread" if "gthread" in results["servers"] else results["servers"][0], "rps")
            for server in ("floor", *results["servers"]):
                if (kind, conc, server) not in groups or (server == "floor" and kind != "dial"):
                    continue
                rps, p99 = median(kind, conc, server, "rps"), median(kind, conc, server, "p99_ms")
                hop = "floor GET+SET" if server == "floor" else {"dial": "dial", "nav": "navigation",
                                                                  "balance": "balance 1/0"}[kind]
                lines.append(f"| {hop} | {conc} | {server} | {rps:.0f} | {rps / floor_rps:.2f}x | "
                             f"{rps / base:.2f}x | {median(kind, conc, server, 'p50_ms'):.1f} | {p99:.1f} | "
                             f"{p99 / floor_p99:.2f}x | "
                             f"{sum(c['errors'] for c in groups[(kind, conc, server)])} | "
                             f"{median(kind, conc, server, 'cpu_ms'):.2f} | {own(kind, conc, server)} |")
    if paced:
        lines += ["", ("Paced: each connection a session pausing 0.5-1.5x the given pause before every hop (the "
                  "server not saturated; medians over the rounds)."), "",
                  ("| hop | sessions | pause ms | server | req/s | p50 ms | p99 ms | errors | CPU ms/hop "
                  "| engine own p50 / p99 ms |"), "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for (kind, server), found in paced.items():
            def mid(key: str, found: list[dict[str, Any]] = found) -> float:
                return statistics.median(c[key] or 0.0 for c in found)
            lines.append(f"| {kind} | {found[0]['concurrency']} | {found[0]['think_ms']} | {server} | {mid('rps'):.0f} "
                         f"| {mid('p50_ms'):.1f} | {mid('p99_ms'):.1f} | {sum(c['errors'] for c in found)} "
                         f"| {mid('cpu_ms'):.2f} | {mid('own_p50_ms'):.2f} / {mid('own_p99_ms'):.2f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="ussd-servers-"))
    cells: list[dict[str, Any]] = []

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(own_redis_keys(main_bench.REDIS_URL))
            database_url = stack.enter_context(pg_schema(PG_URL))
            say(f"starting the engine under {', '.join(args.servers)}, one back office, and the floor")
            engines = start_engines(stack, tmp, database_url, args.servers)
            floor = start_floor(stack, tmp)
            for server in (floor, *engines):
                wrk(server, "dial", 10, 2, "load", 8, run_id(server, "warm-up", 10))
            started = time.monotonic()
            plan = [(r, c, k, s) for r in range(args.rounds) for c in args.concurrency for k in args.kinds
                    for s in ([floor] if k == "dial" else []) + engines]
            paced_from = len(plan)
            dial_rates: dict[tuple[str, int], float] = {}
            # then the paced cells: each connection a session pausing about --think ms before every hop
            plan += [(r, args.paced, k, s) for r in range(args.rounds) for k in args.kinds if k in PACED_KINDS
                     for s in engines] if args.think else []
            for i, (round_, connections, kind, server) in enumerate(plan, 1):
                think = args.think if i > paced_from else 0
                run_name = run_id(server, kind, connections)
                slots = slots_for(connections)
                if kind != "dial":
                    rate = 0.0 if think else dial_rates.get((server.name, connections), 0.0)
                    slots, _ = seed(server, kind, connections, run_name, rate, args.seconds)
                cell = measure(server, kind, connections, args.seconds, run_name, slots, think)
                if kind == "dial" and not think:
                    dial_rates[(server.name, connections)] = cell.rps   # sizes the navigation's sessions
                cells.append(asdict(cell) | {"rps": cell.rps, "round": round_})
                say(f"[{i}/{len(plan)} {time.monotonic() - started:4.0f}s] {server.name:<7} {kind:<4} "
                    f"c={connections:<4}{f' pause {think} ms' if think else ''} {cell.rps:7.0f} req/s, "
                    f"p99 {cell.p99_ms:7.1f} ms, errors {cell.errors}{cell.times_said()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"machine": machine(), "seconds": args.seconds, "rounds": args.rounds, "servers": args.servers,
            "cells": cells}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated, of " + ", ".join(SERVERS) + "; NAME:N for N workers (default 2), NAME:NxT for T threads each")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=1, help="measure every cell this many times (medians)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="hop kinds, of " + ", ".join(KINDS))
    parser.add_argument("--paced", type=int, default=100, help="connections of the paced cells")
    parser.add_argument("--think", type=int, default=100,
                        help="pause before each hop of the paced cells, ms (0: no paced cells)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.kinds = args.kinds.split(",")
    args.servers = args.servers.split(",")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    nofile_limit(4 * max(args.concurrency) + 1024)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        results = run(args)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "servers.json").write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    (args.out / "servers.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
