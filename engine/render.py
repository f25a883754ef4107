"""Lays a ``Screen`` out for one channel: numbered options, navigation, paging, character set.

A page never exceeds the channel's budget (``ChannelCapabilities.budget``, which already
reserves the wire prefix such as ``CON ``), text is split only between words, and an
option is never split across pages. GSM-7 channels get transliterated text and are
measured in septets (extension characters count two).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from menus.schema import NEXT_PAGE, PREVIOUS_PAGE

from .charset import gsm7_length, to_gsm7
from .types import ChannelCapabilities, Screen

__all__ = ["PageLabels", "measure", "render_pages", "single_page"]


@dataclass(frozen=True, slots=True)
class PageLabels:
    more: str      # "Suite" -> shown as "98. Suite"
    previous: str  # "Prec."  -> shown as "99. Prec."


def measure(caps: ChannelCapabilities) -> Callable[[str], int]:
    if caps.charset == "gsm7":
        return gsm7_length
    if caps.charset == "ucs2":
        return lambda text: len(text.encode("utf-16-le")) // 2
    return len


def _clean(caps: ChannelCapabilities, text: str) -> str:
    return to_gsm7(text) if caps.charset == "gsm7" else text


def _split_words(text: str, room: int, size: Callable[[str], int]) -> list[str]:
    """Cut a paragraph into pieces of at most ``room``, between words (a word longer than
    ``room`` on its own is the only thing ever cut)."""
    pieces: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if size(candidate) <= room:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while size(word) > room:
            pieces.append(word[:room])
            word = word[room:]
        current = word
    if current:
        pieces.append(current)
    return pieces


def _lines(screen: Screen) -> tuple[list[str], str]:
    """The screen's lines (error, text, options) and its navigation line, as written."""
    lines: list[str] = [screen.error] if screen.error else []
    for block in screen.blocks:
        lines.extend(line for line in block.split("\n") if line.strip() or line == "")
    lines.extend(f"{o.key}. {o.label}" for o in screen.options)
    return lines, " ".join(f"{o.key}. {o.label}" for o in screen.nav)


def _units(screen: Screen, caps: ChannelCapabilities) -> tuple[list[str], str]:
    """The screen's lines and its navigation line, in the channel's characters."""
    lines, nav = _lines(screen)
    return [_clean(caps, line) for line in lines], _clean(caps, nav)


def single_page(screen: Screen, caps: ChannelCapabilities) -> str:
    """The whole screen on one page, unpaged: what ``render_pages`` returns when it fits the budget.

    It depends on the channel only through its character set, so a caller measuring one screen for
    several channels (the menu linter) can lay it out once per character set. GSM-7 transliteration
    goes character by character (a newline stays a newline), so the page is cleaned as a whole
    rather than line by line: the same text."""
    lines, nav = _lines(screen)
    return _clean(caps, "\n".join([*lines, nav] if nav else lines))


def render_pages(screen: Screen, caps: ChannelCapabilities, labels: PageLabels) -> list[str]:
    """The screen as one or more pages of text, each within the channel's budget."""
    size = measure(caps)
    budget = caps.budget
    units, nav = _units(screen, caps)

    def joined(lines: list[str]) -> int:
        return size("\n".join(lines)) if lines else 0

    whole = units + ([nav] if nav else [])
    if joined(whole) <= budget or not caps.paged:
        return ["\n".join(whole)]

    more = _clean(caps, f"{NEXT_PAGE}. {labels.more}")
    previous = _clean(caps, f"{PREVIOUS_PAGE}. {labels.previous}")
    footer_worst = [nav] if nav else []
    footer_worst.append(f"{previous} {more}")
    room = budget - joined(footer_worst) - 1  # the newline before the footer
    bodies: list[list[str]] = [[]]
    for unit in units:
        for piece in ([unit] if size(unit) <= room else _split_words(unit, room, size)):
            if joined(bodies[-1] + [piece]) > room and bodies[-1]:
                bodies.append([])
            bodies[-1].append(piece)
    pages = []
    for index, body in enumerate(bodies):
        paging = [p for p, show in ((previous, index > 0), (more, index < len(bodies) - 1)) if show]
        footer = ([nav] if nav else []) + ([" ".join(paging)] if paging else [])
        pages.append("\n".join(body + footer))
    return pages
