"""The bench's results as one table (Markdown, also printed) and one chart (matplotlib, Agg backend).

``python -m bench.report [bench/results]`` redraws both from the ``bench.json`` of a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KINDS = ("dial", "nav", "balance")
KIND_LABELS = {"dial": "dial (new session)", "nav": "navigation (next/previous page)", "balance": "balance 1/0"}
SERVER_ORDER = ("ours", "floor", "node")
SERVER_LABELS = {"ours": "ours", "floor": "floor (Flask GET+SET)", "node": "Node peer (ussd-menu-builder)"}


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor else "-"


def _cells(results: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The saturated cells (every connection hops again as soon as it is answered), by server, kind, conns."""
    return {(c["server"], c["kind"], c["concurrency"]): c for c in _saturated(results)}


def _saturated(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in results["cells"] if not c.get("think_ms")]


def _own(cell: dict[str, Any], ratio: str | None = None) -> str:
    """The engine's own time per hop, its CPU share, then what a hop waited in it (ours only; older results have
    none); for the floor, its Redis GET + SET in the first column; ``ratio``, a column after the first."""
    own = _quantiles(cell, "redis" if cell.get("redis_p50_ms") is not None else "own")
    between = "" if ratio is None else f" | {ratio}"
    return f"{own}{between} | {_quantiles(cell, 'cpu')} | {_quantiles(cell, 'wait')}"


def _own_ratio(cell: dict[str, Any], floor: dict[str, Any] | None) -> str:
    """The engine's own time p50 as a multiple of the floor's GET + SET p50 in the same cell: what the engine
    adds to the least a hop's session store costs on this machine under this load."""
    own, redis_time = cell.get("own_p50_ms"), (floor or {}).get("redis_p50_ms")
    return _ratio(own, redis_time) if own is not None and redis_time else "-"


def _quantiles(cell: dict[str, Any], name: str) -> str:
    p50, p99 = cell.get(f"{name}_p50_ms"), cell.get(f"{name}_p99_ms")
    return "-" if p50 is None or p99 is None else f"{p50:.2f} / {p99:.2f}"


def table(results: dict[str, Any]) -> str:
    """One Markdown table: every cell, each figure beside its ratio to the floor of the same cell."""
    m = results["machine"]
    cells = _cells(results)
    lines = [
        (f"Machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, {m['date']}; ours served by "
        f"{results['server']}; wrk 2 threads for the dial, one per connection for navigation and balance, "
        f"{results['seconds']:g} s per cell."),
        "",
        ("| hop | conns | server | req/s | ×floor | p50 ms | p95 ms | p99 ms | p99 ×floor | errors "
        "| CPU ms/hop | CPU ×floor | engine own p50 / p99 ms (floor: its GET+SET) | own p50 ×floor's GET+SET "
        "| its CPU p50 / p99 ms | waited p50 / p99 ms |"),
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    concurrencies = sorted({c["concurrency"] for c in _saturated(results)})
    for kind in KINDS:
        for conc in concurrencies:
            floor = cells.get(("floor", kind, conc))
            for name in SERVER_ORDER:
                c = cells.get((name, kind, conc))
                if c is None:
                    continue
                f = floor or c
                errors = str(c["errors"]) + (f" ({', '.join(f'{k} {v}' for k, v in c['error_detail'].items())})"
                                             if c["errors"] else "")
                lines.append(
                    f"| {KIND_LABELS[kind]} | {conc} | {name} | {c['rps']:.0f} | {_ratio(c['rps'], f['rps'])} "
                    f"| {c['p50_ms']:.1f} | {c['p95_ms']:.1f} | {c['p99_ms']:.1f} "
                    f"| {_ratio(c['p99_ms'], f['p99_ms'])} | {errors} | {c['cpu_ms']:.2f} "
                    f"| {_ratio(c['cpu_ms'], f['cpu_ms'])} | {_own(c, _own_ratio(c, floor))} |")
    memory = results["redis_bytes"]
    floor_bytes = memory.get("floor", 0.0)
    lines += ["", "Redis bytes per idle session (MEMORY USAGE after a dial): " + ", ".join(
        f"{name} {memory[name]:.0f} ({_ratio(memory[name], floor_bytes)} floor)"
        for name in SERVER_ORDER if name in memory)]
    return "\n".join(lines + _paced_table(results))


def _paced_table(results: dict[str, Any]) -> list[str]:
    """Ours at a pace people keep: each connection a session that pauses before every hop."""
    paced = [c for c in results["cells"] if c.get("think_ms")]
    if not paced:
        return []
    lines = ["", ("Paced: each connection a session that pauses before every hop (0.5-1.5x the pause, drawn "
             "per hop), so the server is not saturated; the engine's own time is the figure with a target "
             "(p50 0.3 ms, p99 2 ms at 100 concurrent sessions)."), "",
             ("| hop | sessions | pause ms | req/s | p50 ms | p99 ms | errors | CPU ms/hop "
             "| engine own p50 / p99 ms | its CPU p50 / p99 ms | waited p50 / p99 ms |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in paced:
        lines.append(f"| {KIND_LABELS[c['kind']]} | {c['concurrency']} | {c['think_ms']} | {c['rps']:.0f} "
                     f"| {c['p50_ms']:.1f} | {c['p99_ms']:.1f} | {c['errors']} | {c['cpu_ms']:.2f} | {_own(c)} |")
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    """requests/s and p99 against connections, one row per hop kind, ours beside the floor and the peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    cells = _cells(results)
    concurrencies = sorted({c["concurrency"] for c in _saturated(results)})
    kinds = [k for k in KINDS if any(c["kind"] == k for c in _saturated(results))]  # a run may measure a few
    fig, axes = plt.subplots(len(kinds), 2, figsize=(10, 3.2 * len(kinds)), squeeze=False)
    styles = {"ours": ("tab:red", "o"), "floor": ("tab:gray", "s"), "node": ("tab:green", "^")}
    for row, kind in enumerate(kinds):
        for col, (key, label) in enumerate((("rps", "requests/s"), ("p99_ms", "p99 latency (ms)"))):
            ax = axes[row][col]
            for name in SERVER_ORDER:
                points = [(c, cells[(name, kind, c)][key]) for c in concurrencies if (name, kind, c) in cells]
                if points:
                    color, marker = styles[name]
                    ax.plot(*zip(*points, strict=True), marker=marker, color=color, label=SERVER_LABELS[name])
            ax.set_xscale("log")
            ax.set_xticks(concurrencies, [str(c) for c in concurrencies])
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_title(f"{KIND_LABELS[kind]}: {label}", fontsize=10)
            ax.set_xlabel("concurrent connections")
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    m = results["machine"]
    fig.suptitle(f"make bench, {m['date']}: {m['nproc']} CPUs ({m['cpu']}), ours under {results['server']}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results")
    data = json.loads((folder / "bench.json").read_text())
    (folder / "bench.md").write_text(table(data) + "\n")
    chart(data, folder / "bench.png")
    print(table(data))
