"""The floor of ``make bench`` times its Redis GET + SET, so that the engine's own time is read beside the least a
hop's session store costs on the same machine under the same load.

The floor runs as the bench runs it (gunicorn, two workers, ``PROMETHEUS_MULTIPROC_DIR``) against the tests'
Redis; the hops go over HTTP and the bench's own reader takes the figures from ``/metrics``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from bench.report import table
from bench.ussd_hops import scrape
from tests.support.services import REDIS_TEST_URL, need_service, start_serving

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_floor_served_as_the_bench_serves_it_says_how_long_its_get_and_set_took(tmp_path: Path) -> None:
    need_service("Redis", REDIS_TEST_URL, 6379)
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    env = dict(os.environ, REDIS_URL=REDIS_TEST_URL, PROMETHEUS_MULTIPROC_DIR=str(metrics))
    log = tmp_path / "floor.log"

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "--bind", f"127.0.0.1:{ports[0]}",
                                     "--chdir", str(BENCH), "--log-level", "warning", "floor_app:app"],
                                    env=env, stdout=out, stderr=subprocess.STDOUT)

    floor, ports = start_serving(launch, lambda p: f"http://127.0.0.1:{p[0]}/healthz", log)
    try:
        for n in range(30):
            answer = requests.post(f"http://127.0.0.1:{ports[0]}/hop",
                                   data={"sessionId": f"floor-test-{n % 3}", "text": "1*2"}, timeout=5)
            assert answer.text == "CON floor hop 2"
        got = scrape(ports[0], ("floor_redis_seconds",))["floor_redis_seconds"]
    finally:
        floor.terminate()
        floor.wait(timeout=20)
    assert got.count == 30   # both workers' hops, whichever worker answered /metrics
    assert 0 < got.quantile(0.5) < 0.5   # seconds: two round trips on loopback, not a clock's wrong unit
    assert got.total > 0


def test_the_table_shows_the_engine_own_time_as_a_multiple_of_the_floor_get_and_set() -> None:
    cell = {"kind": "dial", "concurrency": 100, "rps": 2000, "p50_ms": 40.0, "p95_ms": 60.0, "p99_ms": 70.0,
            "errors": 0, "error_detail": {}, "cpu_ms": 0.6}
    results = {"machine": {"nproc": "2", "cpu": "Test CPU", "python": "3.11", "date": "today"},
               "server": "granian", "seconds": 10,
               "cells": [cell | {"server": "floor", "redis_p50_ms": 0.25, "redis_p99_ms": 1.5},
                         cell | {"server": "ours", "own_p50_ms": 0.5, "own_p99_ms": 1.8, "cpu_p50_ms": 0.3,
                                 "cpu_p99_ms": 0.7, "wait_p50_ms": 0.0, "wait_p99_ms": 0.1}],
               "redis_bytes": {"floor": 700, "ours": 800}}
    lines = table(results).splitlines()
    floor = next(line for line in lines if "| floor |" in line)
    ours = next(line for line in lines if "| ours |" in line)
    assert floor.endswith("| 0.25 / 1.50 | - | - | - |")
    assert ours.endswith("| 0.50 / 1.80 | 2.00x | 0.30 / 0.70 | 0.00 / 0.10 |")
