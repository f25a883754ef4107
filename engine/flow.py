"""A menu flow compiled once per version into a shared ``transitions`` machine.

Per hop the engine adds a light model at the session's node, fires ``advance`` (or
``home``), reads the new state and removes the model: the machine is never rebuilt per
request, and a move the YAML graph does not declare is refused by the machine itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from transitions import Machine, MachineError

from menus.conditions import Condition, parse_condition
from menus.loader import LoadedMenus
from menus.schema import (ActionNode, FlowSpec, InputNode, MenuNode, MessageNode, RouterNode)

__all__ = ["CompiledFlow", "FlowSet", "edges", "IllegalMove"]

# With model_override the machine skips conveniences the model does not declare and says
# so at WARNING for every state on every hop; that is by design here.
logging.getLogger("transitions.core").setLevel(logging.ERROR)


class IllegalMove(RuntimeError):
    """The engine asked for a move the flow graph does not declare (a bug, not user input)."""


def edges(node: object) -> list[tuple[str, str]]:
    """The ``(label, target)`` pairs leaving a node, as declared in YAML."""
    if isinstance(node, (MenuNode, MessageNode)):
        found = [(f"option {i}", o.target) for i, o in enumerate(node.options, 1)]
        if isinstance(node, MenuNode) and node.items:
            found.append(("items", node.items.target))
        return found
    if isinstance(node, InputNode):
        return [("next", node.next)]
    if isinstance(node, ActionNode):
        return [(f"outcome {k}", v) for k, v in node.outcomes.items()]
    if isinstance(node, RouterNode):
        return [(f"route {r.when}", r.target) for r in node.routes] + [("default", node.default)]
    return []


class _TargetIs:
    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, event: object) -> bool:
        return getattr(event, "kwargs", {}).get("to") == self.target


class _Hop:
    """The per-hop model. ``trigger`` is declared so that ``model_override`` binds only it."""

    state: str

    def trigger(self, name: str, **kwargs: object) -> bool:  # replaced by the machine
        raise NotImplementedError


@dataclass
class CompiledFlow:
    name: str
    version: str
    spec: FlowSpec
    shortcuts: dict[str, str]
    conditions: dict[str, Condition]
    machine: Machine = field(repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def compile(cls, name: str, spec: FlowSpec, version: str) -> CompiledFlow:
        machine = Machine(model=None, states=list(spec.nodes), initial=spec.start,
                          auto_transitions=False, send_event=True, model_override=True)
        conditions: dict[str, Condition] = {}
        shortcuts: dict[str, str] = {}
        for node_id, node in spec.nodes.items():
            targets = dict.fromkeys(t for _, t in edges(node))
            for target in targets:
                machine.add_transition("advance", node_id, target, conditions=[_TargetIs(target)])
            for when in _whens(node):
                conditions[when] = parse_condition(when)
            if node.shortcut:
                shortcuts[node.shortcut] = node_id
        machine.add_transition("home", "*", spec.home)
        return cls(name, version, spec, shortcuts, conditions, machine)

    def move(self, current: str, target: str | None) -> str:
        """Fire ``advance`` to ``target`` (or ``home`` when None) from ``current``; the new node."""
        hop = _Hop()
        with self._guard:
            self.machine.add_model(hop, initial=current)
            try:
                moved = hop.trigger("advance", to=target) if target else hop.trigger("home")
            except MachineError as exc:
                raise IllegalMove(f"{self.name}: {current} -> {target}: {exc}") from exc
            finally:
                self.machine.remove_model(hop)
        if not moved:
            raise IllegalMove(f"{self.name}: no edge {current} -> {target}")
        return hop.state


def _whens(node: object) -> Iterable[str]:
    for option in getattr(node, "options", ()) or ():
        if option.when:
            yield option.when
    for route in getattr(node, "routes", ()) or ():
        yield route.when


class FlowSet:
    """Every compiled flow version in memory. A reload adds versions; sessions that started
    on an older version keep it until they end."""

    def __init__(self, loaded: LoadedMenus) -> None:
        self._flows: dict[tuple[str, str], CompiledFlow] = {}
        self._current: dict[str, str] = {}
        self.menus = loaded.menus
        self.load(loaded)

    def load(self, loaded: LoadedMenus) -> None:
        self.menus = loaded.menus
        for name, spec in loaded.menus.flows.items():
            version = f"{spec.version}-{loaded.fingerprint}"
            if (name, version) not in self._flows:
                self._flows[(name, version)] = CompiledFlow.compile(name, spec, version)
            self._current[name] = version

    def current(self, name: str) -> CompiledFlow:
        return self._flows[(name, self._current[name])]

    def get(self, name: str, version: str) -> CompiledFlow:
        """The version a session started on, or the current one if that version is gone."""
        return self._flows.get((name, version)) or self.current(name)

    def entry_flow(self, channel: str, entry: str) -> str:
        points = self.menus.entry_points.get(channel, {})
        return points.get(entry) or points.get("*") or next(iter(self.menus.flows))
