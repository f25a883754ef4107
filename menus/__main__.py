"""``python -m menus lint config/menus.yaml``: print every problem of a menu file; exit 1 on errors.

This entry point is a composition root: it hands the linter the dialog steps (and which of them work
without a customer), the engine's screen measure and what each channel adapter can show, which the
``menus`` package itself does not import.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

from .lint import lint
from .loader import load_menus
from .problems import MenuError, Problem


def check(path: str) -> list[Problem]:
    # What each adapter shows, from the light module the adapters take it from: importing the
    # adapters themselves would load Flask, Redis and the engine's state machine for nothing.
    from channels.capabilities import ALL
    from dialogs.registry import guest_steps, known_steps
    from engine.preview import screen_problems
    from engine.validators import accepts

    try:
        loaded = load_menus(path)
    except MenuError as exc:
        return exc.problems
    # The product's channels, as their adapters declare them.
    return lint(loaded, steps=known_steps(), screen_check=screen_problems, channels=list(ALL),
                guest_steps=guest_steps(), accepts=accepts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m menus")
    sub = parser.add_subparsers(dest="command", required=True)
    lint_cmd = sub.add_parser("lint", help="check a menu file and its includes")
    lint_cmd.add_argument("path")
    args = parser.parse_args(argv)
    problems = check(args.path)
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    print(f"{args.path}: {errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    # A run that ends as soon as it has printed leaves no garbage worth a cyclic collection: none
    # (each would walk every object of a large menu set), and the process ends without teardown.
    gc.disable()
    code = main()
    # As mypy does: the interpreter's teardown would free the large set's objects one by one (and
    # collect them), a fifth of the run, for nothing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
