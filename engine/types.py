"""The channel-neutral values that cross the engine boundary: Turn in, Reply out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ChannelCapabilities", "Option", "Reply", "Screen", "Turn"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One hop of one conversation, as an adapter parsed it from its wire format.

    ``input`` is the new input of this hop only (``None`` when the user just opened the
    session). ``dialed`` carries inputs the user typed before the session existed, such as
    the ``1*2`` of ``*123*1*2#`` on a USSD first hop: the engine treats them as a shortcut.
    ``hop_id`` identifies the request for replay detection: an identical ``hop_id`` on the
    same session gets the identical answer without running anything again.
    """

    channel: str
    user_id: str
    session_key: str
    input: str | None
    hop_id: str
    dialed: tuple[str, ...] = ()
    entry: str = ""
    language_hint: str | None = None
    received_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Option:
    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Screen:
    """What to show, before any channel paging: text blocks, numbered options, navigation."""

    node: str
    language: str
    blocks: tuple[str, ...]
    options: tuple[Option, ...] = ()
    nav: tuple[Option, ...] = ()
    error: str | None = None
    end: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """The rendered answer for one hop: the page of text to send and whether the session ends."""

    text: str
    end: bool
    screen: Screen | None = None
    page: int = 0
    pages: int = 1


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    """What one channel can show. ``prefix_budget`` reserves room for wire prefixes such as ``CON ``."""

    name: str
    max_chars: int
    charset: Literal["gsm7", "ucs2", "unicode"] = "unicode"
    ucs2_max_chars: int = 0
    prefix_budget: int = 0
    numbered_options: bool = True
    paged: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def budget(self) -> int:
        limit = self.ucs2_max_chars if self.charset == "ucs2" and self.ucs2_max_chars else self.max_chars
        return limit - self.prefix_budget
