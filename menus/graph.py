"""The edges of the flow graph as YAML declares them: shared by the linter and the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .schema import OptionSpec

__all__ = ["edges", "first_item_number", "option_keys"]


def option_keys(options: Sequence[OptionSpec]) -> list[str]:
    """The number of each declared option: its ``key``, else its position in the list (from 1).

    Hidden options keep their place, so the numbers a customer learns never shift. An option shown
    after a list's items (``after_items``) has ``""`` here: its number follows the items, known per hop."""
    return ["" if o.after_items else o.key or str(position) for position, o in enumerate(options, 1)]


def first_item_number(options: Sequence[OptionSpec]) -> int:
    """Items of a list menu are numbered after every declared option, shown or hidden (but those shown
    after the items)."""
    return max((int(k) for k in option_keys(options) if k), default=0) + 1


def edges(node: Any) -> list[tuple[str, str]]:
    """The ``(label, target)`` pairs leaving a node: options, items, next, outcomes, routes."""
    return list(node.edges())
