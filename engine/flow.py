"""A menu flow compiled once per version into a shared ``transitions`` machine.

The machine is built once per flow version from the YAML graph; at the same time its
``advance`` transitions are read back into a frozen table (node -> the nodes it may move to),
each screen's options are numbered once (``options``, ``first_items``: the numbers never depend
on the hop, only on the YAML),
and a hop's move is a look-up in that table: a move the graph does not declare is refused,
without the per-event bookkeeping (event data, condition objects, callbacks) a move through
``Event.trigger`` costs, about a tenth of a dial's CPU. When the ``transitions`` logger is at
DEBUG (``LOG_LEVEL=DEBUG``), moves go through the machine itself, so its per-state lines show.

Why not ``add_model``/``remove_model`` per hop (the library's "one machine, many models"
recipe): ``add_model`` binds a convenience method per state onto the model, O(states)
per call, about 0.4 ms for this product's 150 nodes and under a lock shared by every
thread. ``Event.trigger(model)`` runs the same transition logic for any object that
carries the state attribute, without registering it, so nothing is shared or leaked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from transitions import Machine, MachineError

from menus.conditions import Condition, parse_condition
from menus.graph import edges, first_item_number, option_keys
from menus.loader import LoadedMenus
from menus.schema import FlowSpec, OptionSpec

__all__ = ["CompiledFlow", "FlowSet", "IllegalMove", "NumberedOption"]

_MACHINE_LOG = logging.getLogger("transitions")


class IllegalMove(RuntimeError):
    """The engine asked for a move the flow graph does not declare (a bug, not user input)."""


class _TargetIs:
    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, event: object) -> bool:
        return getattr(event, "kwargs", {}).get("to") == self.target


@dataclass(frozen=True, slots=True)
class NumberedOption:
    """A declared option and the number the customer types for it (a hidden option keeps its number)."""

    key: str
    option: OptionSpec


class _Hop:
    """The per-hop model: only the state the machine reads and writes."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass
class CompiledFlow:
    name: str
    version: str
    spec: FlowSpec
    shortcuts: dict[str, str]
    conditions: dict[str, Condition]
    machine: Machine = field(repr=False)
    moves: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    options: dict[str, tuple[NumberedOption, ...]] = field(default_factory=dict, repr=False)
    first_items: dict[str, int] = field(default_factory=dict, repr=False)
    # The main menu screen (``spec.root``), read on most hops: looked up once here.
    root: str = ""

    @classmethod
    def compile(cls, name: str, spec: FlowSpec, version: str) -> CompiledFlow:
        machine = Machine(model=None, states=list(spec.nodes), initial=spec.start,
                          auto_transitions=False, send_event=True)
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
        moves = {source: frozenset(str(t.dest) for t in found)
                 for source, found in machine.events["advance"].transitions.items()}
        options = {node_id: tuple(NumberedOption(key, option) for key, option
                                  in zip(option_keys(node.choices()), node.choices(), strict=True))
                   for node_id, node in spec.nodes.items()}
        first_items = {node_id: first_item_number(node.choices()) for node_id, node in spec.nodes.items()
                       if node.item_list() is not None}
        return cls(name, version, spec, shortcuts, conditions, machine, moves, options, first_items, spec.root)

    def move(self, current: str, target: str | None) -> str:
        """The node reached from ``current`` by ``advance`` to ``target`` (``home`` when None), as the
        machine declares it; ``IllegalMove`` when it declares no such move."""
        if _MACHINE_LOG.isEnabledFor(logging.DEBUG):
            return self.trigger(current, target)   # debugging: the machine's own lines
        if not target:
            return self.spec.home   # ``home`` goes there from any node
        if target in self.moves.get(current, ()):
            return target
        raise IllegalMove(f"{self.name}: no edge {current} -> {target}")

    def trigger(self, current: str, target: str | None) -> str:
        """Fire ``advance`` to ``target`` (or ``home`` when None) from ``current`` on the machine itself."""
        hop = _Hop(current)
        try:
            if target:
                moved = self.machine.events["advance"].trigger(hop, to=target)
            else:
                moved = self.machine.events["home"].trigger(hop)
        except MachineError as exc:
            raise IllegalMove(f"{self.name}: {current} -> {target}: {exc}") from exc
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
