"""Keeps the garbage collector's full passes out of the middle of a test.

A test process builds an app or two per test (menus, machines, SQLAlchemy metadata), and what survives piles
up in the collector's oldest generation: measured on a whole run, each pytest-xdist worker ended with 0.7 to
1.8 million tracked objects and ran 70 to 115 full collections, the longest 6 to 7 s on the shared, loaded
2-core machine. A full collection holds the GIL throughout, so it stops every thread of the process: the back
office served in a thread of the same process (``serve_wsgi``) answers nothing meanwhile while the product's
socket timeout (2 s read, the ``settings`` fixture) keeps running in the kernel. That is how
``test_the_first_pin_proof_is_throttled_like_linking`` failed once: its ``verify`` is a POST, never retried,
so a pause past 2 s became "service unavailable" on the customer's screen.

So the objects that live long (imports, session fixtures, what earlier tests kept) are moved out of the
collector's sight (``gc.freeze``) once collection is over and again every ``EVERY`` tests, after a full
collection made there, between two tests; an automatic full pass during a test then walks only what the
last few tests made. Nothing is left uncollected for long: the next refresh unfreezes and collects it all.
"""

from __future__ import annotations

import gc
from typing import Final

import pytest

EVERY: Final = 50   # tests between two refreshes (each a full collection, a few tenths of a second)

_since_refresh = 0
refreshing = False   # read by diagnostics that time the collector's passes


def _refresh() -> None:
    """A full collection of everything, then all survivors frozen (out of the automatic passes' reach)."""
    global refreshing
    refreshing = True
    try:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
    finally:
        refreshing = False


def pytest_collection_finish(session: pytest.Session) -> None:
    _refresh()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _since_refresh
    _since_refresh += 1
    if _since_refresh >= EVERY:
        _since_refresh = 0
        _refresh()
