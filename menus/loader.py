"""Reads ``config/menus.yaml`` and its included files into a validated ``MenuSet``.

YAML mappings keep the line they start on, so every schema error and every lint
problem can name ``file:line``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from .brand import Brand, fill_brand
from .problems import MenuError, Problem
from .reader import LineDict, read_yaml
from .schema import NODE_KINDS, IncludedNodes, MenuSet

__all__ = ["LoadedMenus", "Where", "load_menus"]


_LineDict = LineDict


class Where(NamedTuple):
    """A place in a menu file (a tuple: one is made for each of the ten thousand nodes of a large file)."""

    file: str
    line: int


@dataclass(frozen=True)
class LoadedMenus:
    """The validated menus plus where each flow and node was written and a content fingerprint."""

    menus: MenuSet
    path: str
    node_locations: dict[tuple[str, str], Where] = field(default_factory=dict)
    flow_locations: dict[str, Where] = field(default_factory=dict)
    fingerprint: str = ""
    # ``(channel, entry)`` -> where it is written; entry is a code, a keyword or an intent name.
    entry_locations: dict[tuple[str, str], Where] = field(default_factory=dict)

    def where_entry(self, channel: str, entry: str | None = None) -> Where:
        """Where an entry point (or a channel's entry points, with ``entry=None``) is written."""
        return self.entry_locations.get((channel, entry or ""), self.entry_locations.get((channel, ""),
                                                                                          Where(self.path, 1)))

    def where(self, flow: str, node: str | None = None) -> Where:
        if node is not None and (flow, node) in self.node_locations:
            return self.node_locations[(flow, node)]
        return self.flow_locations.get(flow, Where(self.path, 1))


def _read(path: Path, brand: Brand | None = None) -> tuple[Any, bytes]:
    """The file's data (with ``brand`` filled into its texts, when given) and its bytes."""
    raw = path.read_bytes()
    try:
        return read_yaml(raw, str(path), brand), raw
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise MenuError([Problem(str(path), line, f"YAML syntax: {exc.problem or exc}",
                                 "check indentation and quoting")]) from None
    except yaml.YAMLError as exc:
        raise MenuError([Problem(str(path), 1, f"YAML syntax: {exc}")]) from None


def _locate(data: Any, loc: tuple[Any, ...], default: Where) -> Where:
    """Walk a pydantic error location through the line-aware data to the nearest line."""
    where, node = default, data
    for part in loc:
        if isinstance(node, _LineDict) and part not in node and str(part) in NODE_KINDS:
            continue  # pydantic's union-member segment, not a key of the file
        if isinstance(node, _LineDict):
            where = Where(node.file, node.key_lines.get(str(part), node.line))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, _LineDict):
                where = Where(node.file, node.line)
        else:
            break
    return where


def _schema_problems(exc: ValidationError, data: Any, file: str) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = _locate(data, loc, Where(file, 1))
        message = err["msg"]
        hint = ""
        if err["type"] == "union_tag_invalid":
            kind = (err.get("input") or {}).get("kind") if isinstance(err.get("input"), dict) else None
            message = f"unknown kind '{kind}'"
            hint = "known kinds: " + ", ".join(NODE_KINDS)
        elif err["type"] == "union_tag_not_found":
            message = "node has no 'kind'"
            hint = "known kinds: " + ", ".join(NODE_KINDS)
        elif err["type"] == "extra_forbidden":
            message = f"unknown field '{loc[-1]}'"
            hint = "check the spelling against the node kind's fields"
        elif err["type"] == "missing":
            message = f"missing field '{loc[-1]}'"
        # Drop pydantic's union-member segment ("menu", "input" ...) from the shown path.
        path = ".".join(str(p) for p in loc if str(p) not in NODE_KINDS)
        problems.append(Problem(where.file, where.line, f"{path}: {message}", hint))
    return problems


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large tree of acyclic objects is built.

    Each automatic collection walks every object still alive, and a 10 000-node menu is a few hundred
    thousand of them: the collections the build triggers cost as much as the build (more for a
    second load in the same process). Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_menus(path: str | Path) -> LoadedMenus:
    """Load and validate a menu file and its includes. Raises ``MenuError`` listing every problem."""
    with gc_paused():
        return _load_menus(path)


def _load_menus(path: str | Path) -> LoadedMenus:
    main = Path(path)
    if not main.is_file():
        raise MenuError([Problem(str(main), 0, "menu file not found")])
    data, raw = _read(main)
    if not isinstance(data, _LineDict):
        raise MenuError([Problem(str(main), 1, "the menu file must be a mapping", "start with 'languages:'")])
    digest = hashlib.sha256(raw)
    problems: list[Problem] = []
    flows = data.get("flows")
    node_locations: dict[tuple[str, str], Where] = {}

    # The brand first: included texts are filled before their nodes are validated.
    try:
        brand = Brand.model_validate(data.get("brand") or {})
    except ValidationError as exc:
        raise MenuError(_schema_problems(exc, data, str(main))) from None
    for inc in data.get("include") or ():
        inc_path = (main.parent / str(inc)).resolve()
        where = Where(str(main), data.key_lines.get("include", 1))
        if not inc_path.is_file():
            problems.append(Problem(where.file, where.line, f"included file '{inc}' not found"))
            continue
        try:
            inc_data, inc_raw = _read(inc_path, brand)  # brand filled as it is read
        except MenuError as exc:
            problems.extend(exc.problems)
            continue
        digest.update(inc_raw)
        try:
            included = IncludedNodes.model_validate(inc_data)
        except ValidationError as exc:
            problems.extend(_schema_problems(exc, inc_data, str(inc_path)))
            continue
        for flow_name in (included.flow,) if isinstance(included.flow, str) else included.flow:
            if not isinstance(flows, dict) or flow_name not in flows:
                problems.append(Problem(str(inc_path), inc_data.line, f"flow '{flow_name}' is not declared",
                                        "declare it under 'flows:' in the main file"))
                continue
            target = flows[flow_name].setdefault("nodes", _LineDict.at(flows[flow_name].file, flows[flow_name].line))
            for node_id, node in inc_data["nodes"].items():
                if node_id in target:
                    first = node_locations.get((flow_name, node_id)) or Where(target[node_id].file,
                                                                             target[node_id].line)
                    problems.append(Problem(str(inc_path), node.line, f"node '{node_id}' is declared twice",
                                            f"first declared at {first.file}:{first.line}"))
                    continue
                # The node validated above goes in as it is (pydantic takes a model instance as valid):
                # validating every included node a second time with the whole set doubled the load's cost.
                target[node_id] = included.nodes[node_id]
                node_locations[(flow_name, node_id)] = Where(node.file, node.key_line or node.line)
    if problems:
        raise MenuError(problems)
    fill_brand({k: v for k, v in data.items() if k != "brand"}, brand)
    try:
        menus = MenuSet.model_validate(data)
    except ValidationError as exc:
        raise MenuError(_schema_problems(exc, data, str(main))) from None

    flow_locations = {}
    for flow_name, flow in data["flows"].items():
        flow_locations[flow_name] = Where(flow.file, flow.key_line or flow.line)
        for node_id, node in (flow.get("nodes") or {}).items():
            if isinstance(node, _LineDict):
                node_locations[(flow_name, node_id)] = Where(node.file, node.key_line or node.line)
    return LoadedMenus(menus, str(main), node_locations, flow_locations, digest.hexdigest()[:10],
                       _entry_locations(data, str(main)))


def _entry_locations(data: _LineDict, file: str) -> dict[tuple[str, str], Where]:
    found: dict[tuple[str, str], Where] = {}
    points = data.get("entry_points")
    if not isinstance(points, _LineDict):
        return found
    for channel, entries in points.items():
        found[(str(channel), "")] = Where(file, points.key_lines.get(str(channel), points.line))
        if not isinstance(entries, _LineDict):
            continue
        for key, line in entries.key_lines.items():
            found[(str(channel), key)] = Where(file, line)
        for group in ("codes", "keywords", "intents"):
            inner = entries.get(group)
            if isinstance(inner, _LineDict):
                for key, line in inner.key_lines.items():
                    found[(str(channel), key)] = Where(file, line)
    return found
