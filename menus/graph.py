"""The edges of the flow graph as YAML declares them: shared by the linter and the engine."""

from __future__ import annotations

from typing import Any

from .schema import ActionNode, InputNode, MenuNode, MessageNode, RouterNode

__all__ = ["edges"]


def edges(node: Any) -> list[tuple[str, str]]:
    """The ``(label, target)`` pairs leaving a node: options, items, next, outcomes, routes."""
    if isinstance(node, (MenuNode, MessageNode)):
        found = [(f"option {i}", o.target) for i, o in enumerate(node.options, 1)]
        if isinstance(node, MenuNode) and node.items:
            found.append(("items", node.items.target))
        return found
    if isinstance(node, InputNode):
        return [("next", node.next)]
    if isinstance(node, ActionNode):
        return [(f"outcome '{k}'", v) for k, v in node.outcomes.items()]
    if isinstance(node, RouterNode):
        return [(f"route '{r.when}'", r.target) for r in node.routes] + [("default", node.default)]
    return []
