"""Checks of a loaded menu set beyond its schema: graph, translations, steps, placeholders, screen size.

``lint(loaded, steps=..., guest_steps=..., screen_check=..., accepts=...)`` returns every problem with its file
and line. The set of dialog steps (and which of them work without a customer), the screen measure and the
input validators are passed in, so this package depends on neither the dialogs nor the engine.
"""

from __future__ import annotations

import string
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from .conditions import ConditionError, parse_condition
from .graph import edges, option_keys
from .keywords import close, keyword_words
from .loader import LoadedMenus, gc_paused
from .problems import Problem
from .schema import (
    FORMAT_SPECS,
    NAVIGATION_KEYS,
    SYSTEM_TEXT_KEYS,
    ActionNode,
    FlowSpec,
    InputNode,
    MenuNode,
    RouterNode,
)
from .secrets import hidden_secret

__all__ = ["ScreenCheck", "lint"]

_FORMAT_PARSER = string.Formatter()

Accepts = Callable[[Any, str], bool]
"""``(validator spec, text) -> whether the validator takes text as a value``: the engine's validators."""

ScreenCheck = Callable[[LoadedMenus, str, str, str, Any], list[str]]
"""``(loaded, flow, node_id, language, channel) -> problems`` for one rendered screen; ``channel`` is
what the caller passed in ``channels`` (an adapter's capabilities), or a channel name of the file."""


def _placeholder_names(text: str) -> list[tuple[str, str]]:
    return [(n, s or "") for _, n, s, _ in _FORMAT_PARSER.parse(text) if n is not None]


def _lint_placeholders(flow_name: str, node_id: str, node: Any, what: str, text: str, samples: Mapping[str, Any],
                       parsed: dict[str, list[tuple[str, str]] | ValueError], add: Callable[..., None]) -> None:
    """The braces of one text: well formed, known format specs, a sample value for each placeholder."""
    names = parsed.get(text)
    if names is None:
        try:
            names = parsed[text] = _placeholder_names(text)
        except ValueError as exc:
            names = parsed[text] = exc
    if isinstance(names, ValueError):
        add(flow_name, node_id, f"{what}: bad braces: {names}", "write {name} or {{ }}")
        return
    for name, spec in names:
        if spec not in FORMAT_SPECS:
            add(flow_name, node_id, f"{what}: unknown format '{{{name}:{spec}}}'",
                "known: " + ", ".join(sorted(s for s in FORMAT_SPECS if s)))
        root, last = name.split(".")[0], name.split(".")[-1]
        hidden = hidden_secret(name)
        if hidden is not None:
            add(flow_name, node_id, f"{what}: '{{{name}}}' shows a {hidden.rsplit('_', 1)[-1]} under the name "
                f"'{root}', which the secret rule does not read as one",
                f"show it from a field named *_token or *_code ({{{root}_{hidden}}}, set by a step): a screen "
                "showing a secret is kept on WhatsApp only the hour of a code and never sent again by SMS after it, "
                "one read as plain is kept a day and sent again (menus/secrets.py)")
        if not any(n in samples or n in node.samples for n in (root, last)):
            add(flow_name, node_id, f"{what}: placeholder '{{{name}}}' has no sample value",
                f"add '{last}: ...' under samples: so its screen can be measured")


def lint(loaded: LoadedMenus, steps: Mapping[str, frozenset[str]] | None = None,
         screen_check: ScreenCheck | None = None, channels: Sequence[Any] | None = None,
         guest_steps: Collection[str] | None = None, accepts: Accepts | None = None) -> list[Problem]:
    """Every problem of the menus. ``channels``: what each channel can show (the adapters'
    capabilities), handed to ``screen_check``; by default the channels the file declares.
    ``guest_steps``: the steps (of ``steps``) that work without a customer; with it, a flow open to
    guests (``guests: true``) that calls any other step is an error at that node. ``accepts``: the
    validators; with it, a choice of an input screen whose key the field would take as a value is an error."""
    with gc_paused():  # tens of thousands of screens measured: see gc_paused
        return _lint(loaded, steps, screen_check, channels, guest_steps, accepts)


def _lint(loaded: LoadedMenus, steps: Mapping[str, frozenset[str]] | None,
          screen_check: ScreenCheck | None, channels: Sequence[Any] | None,
          guest_steps: Collection[str] | None = None, accepts: Accepts | None = None) -> list[Problem]:
    menus = loaded.menus
    problems: list[Problem] = []

    def add(flow: str, node: str | None, message: str, hint: str = "", severity: str = "error") -> None:
        where = loaded.where(flow, node)
        prefix = f"node '{node}': " if node else f"flow '{flow}': "
        problems.append(Problem(where.file, where.line, prefix + message, hint, severity))

    languages = menus.languages
    if menus.default_language not in languages:
        problems.append(Problem(loaded.path, 1, f"default_language '{menus.default_language}' is not in languages"))
    for key in SYSTEM_TEXT_KEYS:
        texts = menus.system_texts.get(key)
        for lang in languages:
            if not texts or not texts.get(lang):
                problems.append(Problem(loaded.path, 1, f"system_texts.{key}: no '{lang}' text",
                                        f"add {key}: {{{lang}: ...}} under system_texts"))
    for code, words in menus.labels.items():
        for lang in languages:
            if lang not in words:
                problems.append(Problem(loaded.path, 1, f"labels.{code}: no '{lang}' text"))
    problems.extend(_lint_entry_points(loaded))
    measured = list(channels) if channels is not None else list(menus.channels)
    for flow_name, flow in menus.flows.items():
        _lint_flow(loaded, flow_name, flow, steps, screen_check, add, measured, accepts)
        if flow.guests and steps is not None and guest_steps is not None:
            _lint_guest_flow(flow_name, flow, steps, guest_steps, add)
    return problems


def entry_nodes(loaded: LoadedMenus, flow_name: str) -> dict[str, str]:
    """``{node: "entry point sms 'balance'"}``: the nodes a channel's entry points start at in a flow."""
    menus = loaded.menus
    found: dict[str, str] = {}
    for channel, points in menus.entry_points.items():
        default = points.codes.get("*") or next(iter(menus.flows), "")
        named = [*((f"keyword '{n}'", e.flow, e.node) for n, e in points.keywords.items()),
                 *((f"intent '{n}'", e.flow, e.node) for n, e in points.intents.items())]
        if points.unknown:
            named.append(("unknown", None, points.unknown))
        for what, flow, node in named:
            if (flow or default) == flow_name:
                found.setdefault(node, f"entry point {channel} {what}")
    return found


def _lint_entry_points(loaded: LoadedMenus) -> list[Problem]:
    """Each entry leads to a flow and node that exist, and no keyword can be read as another."""
    menus = loaded.menus
    problems: list[Problem] = []
    for channel, points in menus.entry_points.items():
        default = points.codes.get("*") or next(iter(menus.flows), "")

        def add(entry: str | None, message: str, hint: str = "", _channel: str = channel) -> None:
            where = loaded.where_entry(_channel, entry)
            problems.append(Problem(where.file, where.line, f"entry point {_channel}: {message}", hint))

        for code, flow_name in points.codes.items():
            if flow_name not in menus.flows:
                add(code, f"'{code}' names unknown flow '{flow_name}'", _close_match(flow_name, menus.flows))
        named = [*((n, f"keyword '{n}'", e.flow, e.node) for n, e in points.keywords.items()),
                 *((n, f"intent '{n}'", e.flow, e.node) for n, e in points.intents.items())]
        if points.unknown:
            named.append(("unknown", "unknown", None, points.unknown))
        for entry, what, flow, node in named:
            flow_name = flow or default
            if flow_name not in menus.flows:
                add(entry, f"{what} names unknown flow '{flow_name}'", _close_match(flow_name, menus.flows))
            elif node not in menus.flows[flow_name].nodes:
                add(entry, f"{what} starts at unknown node '{node}'",
                    _close_match(node, menus.flows[flow_name].nodes))
        for name, entry_spec in points.keywords.items():
            if not any(entry_spec.words.values()):
                add(name, f"keyword '{name}' has no words", "words: {fr: [MOT], en: [WORD]}")
            for language in entry_spec.words:
                if language not in menus.languages:
                    add(name, f"keyword '{name}': unknown language '{language}'",
                        "known: " + ", ".join(menus.languages))
            if entry_spec.argument is not None:
                # Written without its argument, or with a wrong one, a command answers how to write it.
                usage = entry_spec.argument.usage
                for language in menus.languages:
                    if not usage.get(language):
                        add(name, f"keyword '{name}' takes an argument but has no '{language}' usage line",
                            f'usage: {{{language}: "Send {name.upper()} and ..., e.g. ..."}} under argument:')
                for language in usage:
                    if language not in menus.languages:
                        add(name, f"keyword '{name}': usage in unknown language '{language}'",
                            "known: " + ", ".join(menus.languages))
        words = list(keyword_words(points))
        reported: set[tuple[str, str]] = set()
        for index, (name, _, word) in enumerate(words):
            for other, _, other_word in words[:index]:
                if other != name and close(word, other_word) and (other, name) not in reported:
                    reported.add((other, name))
                    add(name, f"keyword '{name}' is ambiguous: '{word}' can be read as '{other_word}' of "
                              f"'{other}'", "give each entry words at least two letters apart")
    return problems


def _lint_flow(loaded: LoadedMenus, flow_name: str, flow: FlowSpec, steps: Mapping[str, frozenset[str]] | None,
               screen_check: ScreenCheck | None, add: Callable[..., None], channels: Sequence[Any],
               accepts: Accepts | None = None) -> None:
    menus = loaded.menus
    nodes = flow.nodes
    named = [("start", flow.start), ("home", flow.home)] + ([("main_menu", flow.main_menu)] if flow.main_menu else [])
    for label, node_id in named:
        if node_id not in nodes:
            add(flow_name, None, f"{label} node '{node_id}' does not exist")
    if flow.root in nodes and not isinstance(nodes[flow.root], MenuNode):
        add(flow_name, flow.root, f"the {'main_menu' if flow.main_menu else 'home'} node must be a menu",
            "point 'home:' (or 'main_menu:' when home is a router) at the main menu")
    if flow.main_menu and flow.home in nodes and not isinstance(nodes[flow.home], RouterNode):
        add(flow_name, flow.home, "with 'main_menu:', the home node must be a router",
            "route each caller to the main menu or to what they can do instead")
    shortcuts: dict[str, str] = {}
    # The edges of every node, listed once: the checks below, the reachability and the commit walks share them.
    out = {node_id: edges(node) for node_id, node in nodes.items()}
    languages, samples = menus.languages, menus.samples
    parsed: dict[str, list[tuple[str, str]] | ValueError] = {}  # each distinct text's placeholders, parsed once
    for node_id, node in nodes.items():
        choices = node.choices()
        action = node if isinstance(node, ActionNode) else None
        for label, target in out[node_id]:
            if target not in nodes:
                add(flow_name, node_id, f"{label}: target '{target}' does not exist",
                    _close_match(target, nodes))
        if node.shortcut:
            if node.shortcut in shortcuts:
                add(flow_name, node_id, f"shortcut '{node.shortcut}' is also used by '{shortcuts[node.shortcut]}'")
            shortcuts[node.shortcut] = node_id
        for what, texts in node.texts():
            for lang in languages:
                if not texts.get(lang):
                    add(flow_name, node_id, f"{what}: no '{lang}' translation", f"add {lang}: ... to {what}")
            for lang, text in texts.items():
                if "{" in text or "}" in text:  # most labels: no placeholder and no brace to get wrong
                    _lint_placeholders(flow_name, node_id, node, f"{what} ({lang})", text, samples, parsed, add)
        conditions = [o.when for o in choices if o.when]
        if isinstance(node, RouterNode):
            conditions.extend(r.when for r in node.routes)
        for when in conditions:
            try:
                parse_condition(when)
            except ConditionError as exc:
                add(flow_name, node_id, f"condition '{when}': {exc}")
        if action is not None and steps is not None:
            if action.step not in steps:
                add(flow_name, node_id, f"unknown dialog step '{action.step}'", _close_match(action.step, steps))
            else:
                returned = steps[action.step]
                for outcome in action.outcomes:
                    if outcome not in returned:
                        add(flow_name, node_id, f"step '{action.step}' never returns outcome '{outcome}'",
                            "its outcomes: " + ", ".join(sorted(returned)))
                for outcome in sorted(returned - action.outcomes.keys() - {"backend_down", "not_found"}):
                    add(flow_name, node_id, f"outcome '{outcome}' of '{action.step}' is not routed",
                        "it would end the session with the generic error text", "warning")
        if node.resume and node.ends:  # an ended session is never offered back: the name would never show
            add(flow_name, node_id, "resume: an end node is never resumed",
                "declare it on the input or confirmation of the task")
        if isinstance(node, MenuNode) and not node.options and not node.items:
            add(flow_name, node_id, "dead end: a menu with no options and no items",
                "add options, or make it a 'message' or an 'end' node")
        if len(choices) > 9 and node.item_list() is None:
            add(flow_name, node_id, "more than 9 options", "split the menu", "warning")
        if choices:
            _lint_option_keys(flow_name, node_id, choices, add)
            _lint_after_items(flow_name, node_id, node, choices, add)
        if choices and isinstance(node, InputNode) and accepts is not None:
            for position, key in enumerate(option_keys(choices), 1):
                if accepts(node.validator, key):
                    add(flow_name, node_id, f"option {position}: key '{key}' is also a value the field takes",
                        "pick a key the validator refuses (a code of 6 digits never is '1')")
        if action is not None and isinstance(action.commit, tuple):
            for outcome in action.commit:
                if outcome not in action.outcomes:
                    add(flow_name, node_id, f"commit: outcome '{outcome}' is not one of its outcomes",
                        "its outcomes: " + ", ".join(sorted(action.outcomes)))
    _lint_reachability(flow_name, flow, {**shortcuts, **{f"entry {n}": n for n in entry_nodes(loaded, flow_name)}},
                       out, add)
    _lint_commits(flow_name, flow, out, add)
    if screen_check is not None:
        for node_id, node in nodes.items():
            if not node.shows and not node.resume:   # a gate's action names its task on the redial offer
                continue
            for channel in channels:
                for lang in menus.languages:
                    for message in screen_check(loaded, flow_name, node_id, lang, channel):
                        add(flow_name, node_id, message, "shorten the text or the labels")


def _lint_guest_flow(flow_name: str, flow: FlowSpec, steps: Mapping[str, frozenset[str]],
                     guest_steps: Collection[str], add: Callable[..., None]) -> None:
    """A flow open to guests (nobody vouched for them) calls only steps that work without a customer: any
    other would act for a customer the hop does not have (the engine runs the flow for any guest)."""
    for node_id, node in flow.nodes.items():
        if isinstance(node, ActionNode) and node.step in steps and node.step not in guest_steps:
            add(flow_name, node_id, f"step '{node.step}' needs a customer, and flow '{flow_name}' is open to "
                                    "guests (guests: true)",
                "a guest has no account: call only steps marked @step(..., guests=True), or move this journey "
                "to a flow for customers")


def _lint_reachability(flow_name: str, flow: FlowSpec, shortcuts: Mapping[str, str],
                       out: Mapping[str, list[tuple[str, str]]], add: Callable[..., None]) -> None:
    nodes = flow.nodes
    seen: set[str] = set()
    queue = deque(n for n in (flow.start, flow.home, flow.root, *shortcuts.values()) if n in nodes)
    while queue:
        node_id = queue.popleft()
        if node_id in seen:
            continue
        seen.add(node_id)
        queue.extend(t for _, t in out[node_id] if t in nodes and t not in seen)
    for node_id in nodes:
        if node_id not in seen:
            add(flow_name, node_id, "unreachable: no path from the start, home, a shortcut or an entry point "
                                    "leads here")
    if not any(n.ends for n in nodes.values()):
        add(flow_name, None, "dead end: the flow has no 'end' node", "add an end node the home menu leads to")


def _lint_after_items(flow_name: str, node_id: str, node: Any, options: Sequence[Any],
                      add: Callable[..., None]) -> None:
    """An option numbered after the items needs items to follow, and comes after the options numbered
    before them (declared in the order the screen shows them)."""
    for position, option in enumerate(options, 1):
        if not option.after_items:
            continue
        if node.item_list() is None:
            add(flow_name, node_id, f"option {position}: after_items on a screen without items",
                "drop after_items: the option takes its place among the others")
        elif any(not later.after_items for later in options[position:]):
            add(flow_name, node_id, f"option {position}: after_items must come after the other options",
                "declare the options shown under the items last")


def _lint_option_keys(flow_name: str, node_id: str, options: Sequence[Any], add: Callable[..., None]) -> None:
    """Each number means one choice: no navigation key, and a shared key only between options
    whose conditions differ (the "on" and "off" labels of one toggle)."""
    first: dict[str, tuple[int, Any]] = {}
    for position, (key, option) in enumerate(zip(option_keys(options), options, strict=True), 1):
        if not key:   # after_items: numbered after the list's items, never one of these keys
            continue
        if key in NAVIGATION_KEYS:
            add(flow_name, node_id, f"option {position}: key '{key}' is a navigation key",
                "0, 00, 98 and 99 are Back, Home, More and Previous on every screen")
        if key in first:
            other, earlier = first[key]
            if not (option.when and earlier.when and option.when != earlier.when):
                add(flow_name, node_id, f"options {other} and {position} share the key '{key}'",
                    "give each its own key, or conditions that exclude each other")
        else:
            first[key] = (position, option)


def _lint_commits(flow_name: str, flow: FlowSpec, out: Mapping[str, list[tuple[str, str]]],
                  add: Callable[..., None]) -> None:
    """No Back path reaches a confirmation after its commit.

    Once a commit point ran, the engine keeps only the main menu behind the customer: the history
    that Back walks is made of the screens reached from the commit's outcomes (up to the main
    menu, which is the root). So a confirmation screen of the commit (a screen whose choice or
    input leads into it through actions and routers only) must not be among them."""
    nodes = flow.nodes
    incoming = _incoming(out)  # once per flow: per commit it made the check quadratic in the nodes
    for node_id, node in nodes.items():
        if not isinstance(node, ActionNode) or not node.commit:
            continue
        confirmations = _screens_leading_to(flow, node_id, incoming)
        after = _reachable(flow, [t for o, t in node.outcomes.items() if node.commits(o) and t in nodes], out)
        for screen in sorted(confirmations & after):
            add(flow_name, node_id, f"after the commit, a Back path can reach its confirmation '{screen}'",
                f"lead '{screen}' elsewhere after the commit, or list in commit: only the outcomes that commit")


def _shows(node: Any) -> bool:
    return bool(node.shows)


def _incoming(out: Mapping[str, list[tuple[str, str]]]) -> dict[str, list[str]]:
    """``{node: [the nodes with an edge to it]}``."""
    incoming: dict[str, list[str]] = {}
    for node_id, node_edges in out.items():
        for _, edge_target in node_edges:
            incoming.setdefault(edge_target, []).append(node_id)
    return incoming


def _screens_leading_to(flow: FlowSpec, target: str, incoming: Mapping[str, list[str]]) -> set[str]:
    """The screens from which ``target`` is reached through action and router nodes only."""
    screens: set[str] = set()
    seen = {target}
    queue = deque([target])
    while queue:
        for source in incoming.get(queue.popleft(), []):
            if source in seen:
                continue
            seen.add(source)
            if _shows(flow.nodes[source]):
                screens.add(source)
            else:
                queue.append(source)
    return screens


def _reachable(flow: FlowSpec, starts: list[str], out: Mapping[str, list[tuple[str, str]]]) -> set[str]:
    """Every node reached from ``starts`` without passing the main menu (the root of the history)."""
    seen: set[str] = set()
    queue = deque(starts)
    while queue:
        node_id = queue.popleft()
        if node_id in seen or node_id in (flow.home, flow.root):
            continue
        seen.add(node_id)
        queue.extend(t for _, t in out[node_id] if t in flow.nodes)
    return seen


def _close_match(name: str, known: Mapping[str, Any] | Any) -> str:
    import difflib

    matches = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean '{matches[0]}'?" if matches else ""
