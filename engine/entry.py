"""Where a new conversation starts: a channel's entry points read from the menus file.

USSD opens with a service code (and maybe a shortcut path dialled with it); a chat-style
channel (SMS, WhatsApp) opens with a message whose first word is a command keyword, maybe
followed by an argument (``PAYER 5000``). Keywords match case-, accent- and typo-tolerantly:
one letter off (a missing, extra, wrong or swapped letter) from five letters up, and only
when a single entry is that close; anything else is an unknown keyword. A keyword whose argument
is missing (when required) or wrong answers its declared usage line (``PAYER`` -> how to write
``PAYER 5000``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from menus.keywords import close, keyword_words, normalise_word
from menus.schema import ArgumentSpec, ChannelEntries, MenuSet

from .validators import InvalidInput, validate

__all__ = ["Start", "find_start"]


@dataclass(frozen=True, slots=True)
class Start:
    """How to open a session: the flow, the node to reach (``None``: the flow's start only),
    whether to go there directly, the language the keyword was written in, and the argument."""

    flow: str
    node: str | None = None
    direct: bool = False
    language: str | None = None
    store: str | None = None
    value: object = None
    keyword: str | None = None    # the entry that matched, if a keyword did
    # The keyword's usage line by language, when its argument was missing or wrong: the whole answer.
    usage: Mapping[str, str] | None = None


def _argument(spec: ArgumentSpec | None, rest: str) -> tuple[bool, object]:
    """Whether the argument is acceptable, and its value (``None`` when absent): a required one
    must be there, and one that is there must pass its validator."""
    if spec is None or not rest:
        return (spec is None or not spec.required), None
    try:
        return True, validate(spec.validator, rest)
    except InvalidInput:
        return False, None


def find_start(menus: MenuSet, channel: str, entry: str, text: str | None, intent: str | None = None) -> Start:
    """Where a new session of ``channel`` opens, given the entry (service code), the first input and
    the intent a chatbot recognised in it."""
    points = menus.entry_points.get(channel) or ChannelEntries()
    default_flow = points.codes.get(entry) or points.codes.get("*") or next(iter(menus.flows))
    if intent is not None:
        recognised = points.intents.get(intent)
        if recognised is not None:
            return Start(recognised.flow or default_flow, recognised.node, recognised.direct, keyword=intent)
        if points.unknown:
            return Start(default_flow, points.unknown, True)
        return Start(default_flow)
    words = (text or "").split(maxsplit=1)
    if not points.keywords or not words:
        return Start(default_flow)
    first, rest = normalise_word(words[0]), words[1].strip() if len(words) > 1 else ""
    exact = {(name, lang) for name, lang, known in keyword_words(points) if known == first}
    found = exact or {(name, lang) for name, lang, known in keyword_words(points) if close(first, known)}
    language: str | None
    if len({name for name, _ in found}) == 1:
        name, language = min(found)
        if len(found) > 1:
            # A word of several languages (EMAIL, STOP) says nothing of the writer's: the default one
            # until the customer's own is known, rather than whichever sorts first.
            language = None
        keyword = points.keywords[name]
        ok, value = _argument(keyword.argument, rest)
        if ok:
            return Start(keyword.flow or default_flow, keyword.node, keyword.direct, language,
                         keyword.argument.store if keyword.argument and value is not None else None, value, name)
        if keyword.argument is not None and keyword.argument.usage:
            # PAYER alone, CANAL fax: how to write that one command, not the list of them all.
            return Start(keyword.flow or default_flow, language=language, keyword=name,
                         usage=keyword.argument.usage)
        language_hint = language
    else:
        language_hint = None
    if points.unknown:
        return Start(default_flow, points.unknown, True, language_hint)
    return Start(default_flow, language=language_hint)
