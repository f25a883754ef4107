"""Prints the mutation score and the surviving mutants after ``mutmut run`` (``make mutation``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STATS = Path("mutants/mutmut-cicd-stats.json")


def main() -> int:
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], check=False, capture_output=True)
    if not STATS.exists():
        print("no mutation results: did `mutmut run` start? (see its output above)")
        return 1
    stats = json.loads(STATS.read_text())
    killed = stats["killed"] + stats["timeout"]          # a mutant that hangs the tests is caught too
    tried = killed + stats["survived"] + stats["suspicious"]
    score = 100.0 * killed / tried if tried else 0.0
    print(f"\nmutation score: {score:.1f}% ({killed} killed of {tried} tried; "
          f"{stats['no_tests']} not reached by the selected tests, {stats['skipped']} skipped)")
    listed = subprocess.run([sys.executable, "-m", "mutmut", "results"], check=False, capture_output=True,
                            text=True).stdout.splitlines()
    survivors = [line for line in listed if line.rstrip().endswith((": survived", ": suspicious"))]
    print("surviving mutants (show one with `.venv/bin/python -m mutmut show NAME`):")
    print("\n".join(survivors) or "    none")
    print(f"\nmutation score: {score:.1f}% ({killed} killed of {tried} tried)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
