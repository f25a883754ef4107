"""Prints the mutation score per module and in total after ``mutmut run`` (``make mutation``), lists the
surviving mutants, and writes the same as ``bench/results/mutation.md`` (linked from the README).

A survivor listed in ``bench/mutation_equivalent.txt`` (``mutant-name  reason``, one a line) is an
equivalent mutant: no customer, agent or ledger could notice it; it is reported with its reason and left
out of the score. Any other survivor is a gap in the tests, listed first. A listed name that no longer
survives is reported as stale (mutant numbers move when a function changes): re-check and update the list.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

EQUIVALENT = Path("bench/mutation_equivalent.txt")
RESULTS = Path("bench/results/mutation.md")
MODULES = ("dialogs.payments", "dialogs.vending", "dialogs.security", "dialogs.incidents", "channels.payment_callback",
           "app.storage.payments", "app.storage.pins", "engine.engine")
KILLED = ("killed", "timeout")     # a mutant that hangs the tests is caught too
COUNTED = (*KILLED, "survived", "suspicious")


def _module(name: str) -> str:
    return next((m for m in MODULES if name.startswith(m + ".")), name.rsplit(".", 1)[0])


def load_equivalent(path: Path = EQUIVALENT) -> dict[str, str]:
    reasons: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                name, _, reason = line.strip().partition(" ")
                reasons[name] = reason.strip()
    return reasons


def results() -> dict[str, str]:
    listed = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], check=False,
                            capture_output=True, text=True).stdout.splitlines()
    if not listed:
        listed = subprocess.run([sys.executable, "-m", "mutmut", "results"], check=False, capture_output=True,
                                text=True).stdout.splitlines()
    found: dict[str, str] = {}
    for line in listed:
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            found[name] = status.strip()
    return found


def report(found: dict[str, str], equivalent: dict[str, str], seconds: float | None) -> str:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in found.items():
        module = _module(name)
        by_module[module][status] += 1
        if status in ("survived", "suspicious") and name in equivalent:
            by_module[module]["equivalent"] += 1
    lines = [f"# Mutation testing ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", ""]
    if seconds is not None:
        lines += [f"Run time: {seconds / 60:.0f} minutes (`make mutation`).", ""]
    lines += [("Score = killed / (tried - equivalent); tried = killed + survived (timeouts count as killed). "
               "Not reached: no selected test runs the mutated function. Not run: the run stopped first."), "",
              "| module | mutants | killed | survived | of which equivalent | not reached | not run | score |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    total: Counter[str] = Counter()
    for module in sorted(by_module, key=lambda m: MODULES.index(m) if m in MODULES else len(MODULES)):
        counts = by_module[module]
        total.update(counts)
        lines.append(_row(module, counts))
    lines.append(_row("**total**", total))
    gaps = sorted(n for n, s in found.items() if s in ("survived", "suspicious") and n not in equivalent)
    kept = sorted(n for n, s in found.items() if s in ("survived", "suspicious") and n in equivalent)
    stale = sorted(n for n in equivalent if found.get(n) not in ("survived", "suspicious"))
    lines += ["", f"## Survivors not known to be equivalent ({len(gaps)})", ""]
    lines += [f"- `{n}`" for n in gaps] or ["None."]
    lines += ["", f"## Equivalent survivors ({len(kept)}), with why no one could notice them", ""]
    lines += [f"- `{n}`: {equivalent[n]}" for n in kept] or ["None."]
    if stale:
        lines += ["", f"## Listed as equivalent but not surviving this run ({len(stale)}): update the list", ""]
        lines += [f"- `{n}` ({found.get(n, 'not generated')})" for n in stale]
    return "\n".join(lines) + "\n"


def _row(module: str, counts: Counter[str]) -> str:
    killed = sum(counts[s] for s in KILLED)
    survived = counts["survived"] + counts["suspicious"]
    tried = killed + survived - counts["equivalent"]
    score = f"{100.0 * killed / tried:.2f} %" if tried else "-"
    mutants = sum(v for k, v in counts.items() if k != "equivalent")
    return (f"| {module} | {mutants} | {killed} | {survived} | {counts['equivalent']} | {counts['no tests']} "
            f"| {counts['not checked']} | {score} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, help="how long the run took, for the report")
    parser.add_argument("--write", action="store_true", help=f"also write {RESULTS}")
    args = parser.parse_args(argv)
    found = results()
    if not found:
        print("no mutation results: did `mutmut run` start? (see its output above)")
        return 1
    text = report(found, load_equivalent(), args.seconds)
    print(text)
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
