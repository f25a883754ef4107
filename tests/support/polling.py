"""Waiting in a test for what another thread, process or connection does in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["until"]

T = TypeVar("T")


def until(check: Callable[[], T], seconds: float = 10.0, pause: float = 0.05) -> T | None:
    """``check()``'s first truthy value, polled every ``pause`` seconds; ``None`` if none came within
    ``seconds`` (generous defaults: a shared 2-core machine is slow)."""
    deadline = time.monotonic() + seconds
    while not (value := check()):
        if time.monotonic() > deadline:
            return None
        time.sleep(pause)
    return value
