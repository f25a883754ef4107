"""The pieces of ``make bench`` that decide its figures: CPU read from /proc, ratios to the floor.

The bench itself is not run here (minutes of load); these checks take well under a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.procs import cpu_seconds, descendant_running
from bench.report import table
from bench.session_scale import table as scale_table

# burns 0.3 s of CPU, says so, then waits on stdin (alive, so its CPU is still on the books)
CHILD = ("import sys, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
         "print('spun', flush=True)\nsys.stdin.read()\n")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_cpu_of_a_process_tree_counts_its_children() -> None:
    # the parent only waits: without its child the tree would show a few tens of ms of start-up
    spawn_child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}])"
    parent = subprocess.Popen([sys.executable, "-c", spawn_child], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None and parent.stdout.readline() == b"spun\n"
        assert descendant_running(parent.pid, "process_time") not in (None, parent.pid)
        assert cpu_seconds([parent.pid]) >= 0.28
    finally:
        parent.communicate(b"", timeout=10)


def _cell(server: str, rps: float, p99: float, cpu: float) -> dict[str, object]:
    return {"server": server, "kind": "dial", "concurrency": 10, "rps": rps, "p50_ms": 1.0, "p95_ms": 2.0,
            "p99_ms": p99, "errors": 0, "error_detail": {}, "cpu_ms": cpu}


def test_table_states_each_figure_as_a_ratio_to_the_floor_of_the_same_cell() -> None:
    results = {"machine": {"nproc": "2", "cpu": "Test CPU", "python": "3.11", "date": "today"},
               "server": "gunicorn", "seconds": 10,
               "cells": [_cell("floor", 2000, 50, 1.0), _cell("ours", 1600, 100, 2.5), _cell("node", 5000, 25, 0.5)],
               "redis_bytes": {"floor": 700, "ours": 1050}}
    text = table(results)
    ours = next(line for line in text.splitlines() if "| ours |" in line)
    node = next(line for line in text.splitlines() if "| node |" in line)
    assert "| 1600 | 0.80x |" in ours and "| 2.00x |" in ours and "| 2.50x |" in ours
    assert "| 5000 | 2.50x |" in node
    assert "ours 1050 (1.50x floor)" in text
    assert "2 CPUs, Test CPU" in text


def test_paced_cells_get_a_table_of_their_own_and_leave_the_ratios_to_the_floor_alone() -> None:
    paced = _cell("ours", 900, 4, 0.3) | {"think_ms": 100, "own_p50_ms": 0.21, "own_p99_ms": 0.9,
                                          "wait_p50_ms": 0.0, "wait_p99_ms": 0.35, "cpu_p50_ms": 0.12,
                                          "cpu_p99_ms": 0.4}
    paced_10 = paced | {"concurrency": 10, "rps": 95}
    results = {"machine": {"nproc": "2", "cpu": "Test CPU", "python": "3.11", "date": "today"},
               "server": "gunicorn", "seconds": 10,
               "cells": [_cell("floor", 2000, 50, 1.0), _cell("ours", 1600, 100, 2.5), paced_10],
               "redis_bytes": {"floor": 700, "ours": 1050}}
    lines = table(results).splitlines()
    saturated = [line for line in lines if line.startswith("| dial (new session) | 10 | ours |")]
    assert len(saturated) == 1 and "| 1600 | 0.80x |" in saturated[0]   # the paced cell did not replace it
    assert "| dial (new session) | 10 | 100 | 95 | " in lines[-1] and lines[-1].endswith("| 0.21 / 0.90 | 0.12 / 0.40 | 0.00 / 0.35 |")


def _scale_cell(server: str, kind: str, state: str, round_: int, rps: float, sessions: int = 1_000_000
                ) -> dict[str, object]:
    return _cell(server, rps, 1000 / rps, 0.4) | {"kind": kind, "state": state, "round": round_,
                                                 "sessions": sessions, "live": sessions}


def test_scale_table_compares_each_level_with_the_first_round_by_round() -> None:
    """The machine slowed between rounds (1000, then 400, then 600 req/s at the first level): each round's
    level/first ratio is 0.95-0.98, and the table says 0.95x (their median), where the medians of the two
    columns apart (600 / 590) would have said 0.98x."""
    rounds = [(1000, 950), (400, 380), (600, 590)]
    cells = [_scale_cell("floor", "dial", "alone", 0, 2000, 1000), _scale_cell("ours", "dial", "alone", 0, 2500, 1000)]
    for n, (first, level) in enumerate(rounds):
        for state, rps in (("first", first), ("level", level)):
            cells += [_scale_cell("floor", "dial", state, n, rps / 2), _scale_cell("ours", "dial", state, n, rps)]
    results = {"machine": {"nproc": "2", "cpu": "Test CPU", "python": "3.11", "date": "today"},
               "concurrency": 100, "seconds": 8, "rounds": 3, "first_level": 1000, "cells": cells,
               "seed_seconds": {"1,000": 0.1, "1,000,000": 9.0}, "redis_memory": {"1000": 2**20, "1000000": 2**30}}
    lines = scale_table(results).splitlines()
    alone = next(line for line in lines if line.startswith("| 1,000 | dial |"))
    assert "| 2500 | 1.25x |" in alone
    dial = next(line for line in lines if line.startswith("| 1,000,000 | dial |"))
    assert "| 600 / 590 | 0.95x | 2.00x |" in dial
    assert "1,000,000 sessions 1024 MiB" in lines[-1]
