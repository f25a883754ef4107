"""The menus a server starts with have passed the linter: a file with errors is refused, never served.

``python -m menus lint`` is the flow designers' check and ``make test`` runs it on ``config/menus.yaml``; a
file deployed without it (edited on the server, another ``MENUS_PATH``) could still load, since the loader
checks only its structure. A guest flow calling a payment step, an option leading nowhere the engine would
meet mid-conversation: each would reach customers as an error screen. So ``python -m app serve``, the WSGI
entry point and the action server lint the file they are given first and stop with its errors (file:line, as
the linter prints them). Warnings are printed and served.

The status is the one every start-up refusal uses (``app.secret_gate.BOOT_REFUSED``, 3): gunicorn's master reads it
as "a worker could not boot" and stops, where after a status 1 it would start the worker again, forever, each one
linting and printing the same problems. gunicorn with the product's settings (``app/gunicorn_conf.py``, as
``python -m app serve`` runs it) lints in its master before any worker, so the problems are printed once; granian
stops at a worker's first exit, and ``python -m app serve`` lints before it spawns either.
"""

from __future__ import annotations

import sys

from .secret_gate import BOOT_REFUSED

__all__ = ["MenusRefused", "refuse_menus_with_errors"]


class MenusRefused(SystemExit):
    """The menu file has errors: the process stops with them (exit status 3, ``BOOT_REFUSED``)."""


def refuse_menus_with_errors(path: str) -> None:
    """Lint ``path`` as ``python -m menus lint`` does; print its problems and raise ``MenusRefused`` on an error."""
    from menus.__main__ import check  # the linter's composition root: the product's steps, screens, channels

    problems = check(path)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        print(problem, file=sys.stderr)
    if errors:
        print(f"{path}: {len(errors)} error(s) in the menus: not served. Fix them (python -m menus lint {path}).",
              file=sys.stderr, flush=True)
        raise MenusRefused(BOOT_REFUSED)
