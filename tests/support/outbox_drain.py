"""The worker's outbox drained to the end in a test: every message the dispatcher can send, sent."""

from __future__ import annotations

from typing import Any

__all__ = ["drain_outbox"]


def drain_outbox(dispatcher: Any, passes: int = 20) -> None:
    """Run the dispatcher's passes (``app.notify.Dispatcher.run_once``) until one sends, paces and retries
    nothing, at most ``passes`` of them."""
    for _ in range(passes):
        done = dispatcher.run_once(limit=500)
        if not (done.sent or done.paced or done.retried):
            return
