"""``present(x)``: a value a test expects to exist, typed without its ``None``.

A repository's ``get`` answers ``Row | None``; a test that reads a field of the row it just wrote says, with
``present(ledger.get("k1")).status``, that the row must be there (an ``AssertionError`` naming the absence
if not) instead of failing later with ``AttributeError: 'NoneType'`` or silencing the type checker.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def present(value: T | None) -> T:
    """``value``, asserted not to be None."""
    assert value is not None, "expected a value, found None"
    return value
