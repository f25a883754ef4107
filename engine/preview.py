"""Renders a menu node with sample values, as a channel would show it: the linter's measure.

Lives in the engine because only the engine knows how a node becomes a screen; the
menu linter receives it as a plain function from the ``python -m menus`` entry point.
"""

from __future__ import annotations

import re
from typing import Any

from menus.conditions import parse_condition
from menus.graph import first_item_number, option_keys
from menus.loader import LoadedMenus
from menus.schema import BACK, HOME

from .formatting import TextFormatter
from .render import PageLabels, measure, render_pages, single_page
from .types import ChannelCapabilities, Option, Screen

__all__ = ["screen_problems"]


def _caps(loaded: LoadedMenus, channel: str | ChannelCapabilities) -> ChannelCapabilities:
    if isinstance(channel, ChannelCapabilities):
        return channel
    spec = loaded.menus.channels[channel]
    return ChannelCapabilities(channel, spec.max_chars, spec.charset, spec.ucs2_max_chars, spec.prefix_budget)


def _text(texts: dict[str, str], language: str, fmt: TextFormatter, context: dict[str, Any]) -> str:
    return fmt.fill(texts.get(language, ""), context)


def screen_problems(loaded: LoadedMenus, flow: str, node_id: str, language: str,
                    channel: str | ChannelCapabilities) -> list[str]:
    """Why the node's screen, or the redial offer naming its task (``resume:``), does not fit the channel
    with sample values (empty when both fit). ``channel``: an adapter's capabilities, or the name of a
    channel the menu file declares."""
    return (_node_problems(loaded, flow, node_id, language, channel)
            + _resume_problems(loaded, flow, node_id, language, channel))


def _resume_problems(loaded: LoadedMenus, flow: str, node_id: str, language: str,
                     channel: str | ChannelCapabilities) -> list[str]:
    """The offer a redial gets ("Resume your payment of ...?", Yes, No) must fit on one page."""
    menus = loaded.menus
    node = menus.flows[flow].nodes[node_id]
    if not node.resume:
        return []
    facts = _facts(menus)
    caps = _caps(loaded, channel)
    _, context = facts.context(node.samples)
    system = menus.system_texts
    offer = Screen("resume", language, (_text(node.resume, language, facts.formatter(language), context),),
                   (Option("1", system.get("yes", {}).get(language, "")),
                    Option("2", system.get("no", {}).get(language, ""))))
    size = measure(caps)(single_page(offer, caps))
    if size > caps.budget:
        return [f"{caps.name}/{language}: resume offer is {size} characters; the channel allows {caps.budget}"]
    return []


def _node_problems(loaded: LoadedMenus, flow: str, node_id: str, language: str,
                   channel: str | ChannelCapabilities) -> list[str]:
    menus = loaded.menus
    facts = _facts(menus)
    # What the node shows does not depend on the channel: filled once per language, measured per channel.
    key = (flow, node_id, language)
    laid = facts.screens.get(key)
    if laid is None:
        node = menus.flows[flow].nodes[node_id]
        if not node.shows:
            return []
        laid = facts.screens[key] = _screen(menus, flow, node_id, node, language, facts)
    caps = _caps(loaded, channel)
    channel = caps.name
    size = measure(caps)
    budget = caps.budget
    fixed, options, item_lines, labels = laid
    problems = []
    # The screen on one page, laid out once per character set: when it fits the budget (most screens),
    # render_pages would return just that page, so only a screen over the budget is paged to find out.
    page_key = (flow, node_id, language, caps.charset)
    whole = facts.pages.get(page_key)
    if whole is None:
        whole = facts.pages[page_key] = single_page(fixed, caps)
    if caps.paged and size(whole) > budget and len(render_pages(fixed, caps, labels)) > 1:
        problems.append(f"{channel}/{language}: screen is {size(whole)} characters with its options and "
                        f"navigation; the channel allows {budget}")
    if caps.max_options is not None and len(options) > caps.max_options:
        problems.append(f"{channel}/{language}: {len(options)} options, the channel offers at most "
                        f"{caps.max_options} at once")
    for option in item_lines:
        line = f"{option.key}. {option.label}"
        if size(line) > budget // 2:
            problems.append(f"{channel}/{language}: list line '{line}' is too long to page well")
            break
    return problems


def _screen(menus: Any, flow: str, node_id: str, node: Any, language: str,
            facts: _SetFacts) -> tuple[Screen, list[Option], list[Option], PageLabels]:
    """The node's screen with sample values in ``language``, its options and list lines, the paging words."""
    samples, context = facts.context(node.samples)
    # Dotted placeholders such as {bill.amount} read the sample of their last part.
    dotted = facts.dotted_roots(flow, node_id, node)
    if dotted:
        context = dict(context)  # the shared context is only read
        for key in dotted:
            context.setdefault(key, dict(samples))
    fmt = facts.formatter(language)
    declared = node.choices()
    # Options whose condition fails on the samples are hidden, as they would be at run time.
    shown = [(key, o) for key, o in zip(option_keys(declared), declared, strict=True)
             if not o.when or parse_condition(o.when).holds(context)]
    options = [Option(key, _text(o.label, language, fmt, context)) for key, o in shown if key]
    item_lines: list[Option] = []
    listed = node.item_list()
    if listed is not None:
        items = context.get(listed.source) or []
        items = items if isinstance(items, list) else []
        base = first_item_number(declared)
        item_lines = [Option(str(base + i), _text(listed.label, language, fmt, {**context, **item}))
                      for i, item in enumerate(items)]
        # Options under the items (``after_items``) stay on the screen with its text: measured with it,
        # under the numbers they take after the sample list.
        options += [Option(str(base + len(items) + i), _text(o.label, language, fmt, context))
                    for i, (_, o) in enumerate((key, o) for key, o in shown if not key)]
    end = node.ends
    nav, labels = facts.chrome(language)
    # The worst case the engine can show: Back and Home everywhere but on the home menu (the root).
    if end or node_id == menus.flows[flow].root:
        nav = ()
    body = _text(node.body(), language, fmt, context)
    fixed = Screen(node_id, language, (body,), tuple(options), nav, end=end)
    return fixed, options, item_lines, labels


class _SetFacts:
    """What the screens of one menu set share: the list sources, the sample context, the system texts.

    The linter measures every screen of a set in turn (each node, language and channel): working
    these out per screen had made linting quadratic in the nodes (the list sources walk every node)."""

    def __init__(self, menus: Any) -> None:
        self.menus = menus
        self.sources = frozenset(items.source for f in menus.flows.values() for n in f.nodes.values()
                                 if (items := n.item_list()) is not None)
        self.shared = self._expand(dict(menus.samples))
        self.chromes: dict[str, tuple[tuple[Option, ...], PageLabels]] = {}
        self.formatters: dict[str, TextFormatter] = {}
        self.screens: dict[tuple[str, str, str], tuple[Screen, list[Option], list[Option], PageLabels]] = {}
        self.pages: dict[tuple[str, str, str, str], str] = {}
        self.dotted: dict[tuple[str, str], set[str]] = {}

    def dotted_roots(self, flow: str, node_id: str, node: Any) -> set[str]:
        """The roots of the node's dotted placeholders, worked out once for all its languages."""
        roots = self.dotted.get((flow, node_id))
        if roots is None:
            roots = self.dotted[(flow, node_id)] = _dotted_roots(node)
        return roots

    def context(self, node_samples: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The samples and the context of a screen (shared when the node has no samples of its own:
        read it, do not change it)."""
        return self._expand({**self.menus.samples, **node_samples}) if node_samples else self.shared

    def formatter(self, language: str) -> TextFormatter:
        """One formatter per language for the whole set: it remembers the sample values it formatted."""
        if language not in self.formatters:
            self.formatters[language] = TextFormatter(language, self.menus.labels)
        return self.formatters[language]

    def chrome(self, language: str) -> tuple[tuple[Option, ...], PageLabels]:
        """The Back and Home options and the paging words in ``language``: the same on every screen."""
        if language not in self.chromes:
            system = {k: v.get(language, "") for k, v in self.menus.system_texts.items()}
            self.chromes[language] = ((Option(BACK, system.get("back", "")), Option(HOME, system.get("home", ""))),
                                      PageLabels(system.get("more", ""), system.get("previous", "")))
        return self.chromes[language]

    def _expand(self, samples: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """List sources given as counts in the samples become lists of that many sample items."""
        context = dict(samples)
        for key, value in samples.items():
            if isinstance(value, int) and not isinstance(value, bool) and key in self.sources:
                context[key] = [dict(samples) for _ in range(value)]
        return samples, context


_last_facts: _SetFacts | None = None
_MAY_BE_DOTTED = re.compile(r"\{[^{}]*\.")


def _facts(menus: Any) -> _SetFacts:
    """The facts of ``menus``, kept while the linter works on the same (frozen) set."""
    global _last_facts
    if _last_facts is None or _last_facts.menus is not menus:
        _last_facts = _SetFacts(menus)
    return _last_facts


def _dotted_roots(node: Any) -> set[str]:
    from .formatting import placeholders

    roots = set()
    for text in getattr(node, "text", {}).values():
        if _MAY_BE_DOTTED.search(text) is None:  # no "{" with a "." after it: no dotted name, skip the parse
            continue
        try:
            names = placeholders(text)
        except ValueError:
            continue  # bad braces: the linter reports them; the screen shows the text as it is
        for name, _ in names:
            if "." in name:
                roots.add(name.split(".")[0])
    return roots
