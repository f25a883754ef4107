"""The condition language of ``when:`` in menus: small, safe, checked at load time.

``account_count > 1``, ``linked``, ``not linked``, ``kind == "prepaid"``,
``balance > 0 and not deferral_running``. Names are keys of the session context
(dotted for nested values); literals are numbers, quoted strings, true, false, null.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

__all__ = ["Condition", "ConditionError", "parse_condition"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">=": operator.ge,
    "<=": operator.le, ">": operator.gt, "<": operator.lt,
}
_CLAUSE = re.compile(r"^(not\s+)?([A-Za-z_][\w.]*)\s*(?:(==|!=|>=|<=|>|<)\s*(.+))?$")


class ConditionError(ValueError):
    pass


def _literal(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ConditionError(f"'{text}' is not a number, a quoted string, true, false or null") from None


def _lookup(context: Mapping[str, Any], name: str) -> Any:
    value: Any = context
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(right, Decimal):
        try:
            left = Decimal(str(left))
        except (InvalidOperation, ValueError):
            return False
    try:
        return bool(_OPS[op](left, right))
    except TypeError:
        return False


@dataclass(frozen=True, slots=True)
class _Clause:
    negate: bool
    name: str
    op: str | None
    value: Any

    def holds(self, context: Mapping[str, Any]) -> bool:
        left = _lookup(context, self.name)
        result = bool(left) if self.op is None else _compare(left, self.op, self.value)
        return result != self.negate


@dataclass(frozen=True, slots=True)
class Condition:
    """Clauses joined by ``or`` of groups joined by ``and``."""

    source: str
    groups: tuple[tuple[_Clause, ...], ...]

    def holds(self, context: Mapping[str, Any]) -> bool:
        return any(all(c.holds(context) for c in group) for group in self.groups)

    @property
    def names(self) -> set[str]:
        return {c.name.split(".")[0] for g in self.groups for c in g}


@lru_cache(maxsize=1024)
def parse_condition(source: str) -> Condition:
    """Parse a ``when:`` expression; raises ``ConditionError`` with the reason.

    Kept per distinct text (a ``Condition`` is immutable): a large menu repeats the same few
    conditions on hundreds of nodes, and the linter, its screen measure and the engine each read them."""
    groups = []
    for alternative in re.split(r"\s+or\s+", source.strip()):
        clauses = []
        for part in re.split(r"\s+and\s+", alternative.strip()):
            match = _CLAUSE.match(part.strip())
            if not match:
                raise ConditionError(f"cannot read '{part.strip()}'")
            negate, name, op, value = match.groups()
            clauses.append(_Clause(bool(negate), name, op, _literal(value) if op else None))
        groups.append(tuple(clauses))
    return Condition(source, tuple(groups))
