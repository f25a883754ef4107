"""The channel-neutral values that cross the engine boundary: Turn in, Reply out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

__all__ = ["ChannelCapabilities", "Option", "Reply", "Screen", "Turn"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One hop of one conversation, as an adapter parsed it from its wire format.

    ``address`` is where to answer (an Africa's Talking phone number, ``whatsapp:+...``, a Meta
    ``wa_id``, a Rasa ``sender_id``, a web session): the session belongs to it. ``customer`` is who
    the customer is, a verified E.164 number, or ``None`` while nobody vouched for one; dialog
    steps see only the latter.

    ``input`` is the new input of this hop only (``None`` when the user just opened the
    session). On a new session it is a start: a keyword with its argument on a chat-style
    channel (``SOLDE 1000001``). ``dialed`` carries inputs the user typed before the session
    existed, such as the ``1*2`` of ``*123*1*2#`` on a USSD first hop: the engine treats them as
    a shortcut. A chatbot adapter passes the ``intent`` it recognised instead. ``hop_id`` identifies the request (the provider's message id) for replay
    detection: an identical ``hop_id`` on the same session gets the identical answer without
    running anything again.

    ``cumulative``: ``hop_id`` is the whole input history of the session, ``*``-joined, as
    Africa's Talking sends it. A hop then continues the session only when its text extends the
    text of the hop last answered, and its input is what it adds (a reply that itself holds a
    ``*`` included); a hop whose text does not (an older hop arriving after a newer one, a
    gateway sending two hops of a session at once) gets the session's last answer again and
    changes nothing.
    """

    channel: str
    address: str
    session_key: str
    input: str | None
    hop_id: str
    dialed: tuple[str, ...] = ()
    entry: str = ""
    language_hint: str | None = None
    customer: str | None = None
    intent: str | None = None     # a chatbot's reading of the message (Rasa), instead of a keyword
    # Served as a guest's (nobody vouched for the caller, ``customer`` is ``None``): such a hop opens
    # a session only in a flow the menus open to guests (``guests: true``).
    guest: bool = False
    cumulative: bool = False

    @property
    def user_id(self) -> str:
        """The address the session belongs to (kept for the caller binding and the logs)."""
        return self.address


class Option(NamedTuple):
    """A numbered choice on a screen. A named tuple rather than a frozen dataclass: screens are looked up
    in the engine's laid-out cache on every hop, and a tuple's hash and equality run in C where a
    dataclass's generated ``__hash__``/``__eq__`` are Python calls, one per option (measured with
    ``bench/profile_hop.py --profile nav``: about a tenth of a page turn's engine time)."""

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

    def to_dict(self) -> dict[str, object]:
        """A compact JSON-able form (a replayed hop answers the same screen)."""
        return {"node": self.node, "language": self.language, "blocks": list(self.blocks),
                "options": [[o.key, o.label] for o in self.options], "nav": [[o.key, o.label] for o in self.nav],
                "error": self.error, "end": self.end}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> Screen:
        options = raw.get("options") or []
        nav = raw.get("nav") or []
        blocks = raw.get("blocks") or []
        return cls(str(raw.get("node", "")), str(raw.get("language", "")),
                   tuple(str(b) for b in blocks) if isinstance(blocks, list) else (),
                   tuple(Option(str(k), str(v)) for k, v in options) if isinstance(options, list) else (),
                   tuple(Option(str(k), str(v)) for k, v in nav) if isinstance(nav, list) else (),
                   raw.get("error") if isinstance(raw.get("error"), str) else None,  # type: ignore[arg-type]
                   bool(raw.get("end")))


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one hop: the channel-neutral screen, the page of it shown now (laid out with the
    capabilities the adapter declared) and whether the session ends. ``replayed``: the same hop was
    answered before (a provider retry); an adapter that sends replies itself sends nothing again.
    ``transient``: the hop did not run, for a reason that passes (another hop of the session held it, the
    session store was unreachable); the reply is a polite closing, and an adapter whose provider sends a
    message again may ask for that instead (the hop then runs)."""

    text: str
    end: bool
    screen: Screen | None = None
    page: int = 0
    pages: int = 1
    replayed: bool = False
    transient: bool = False


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    """What one channel can show, declared by its adapter.

    ``max_chars`` per screen (USSD 182, SMS three segments, WhatsApp 4 096); ``charset``: GSM-7
    (transliterated and measured in septets), UCS-2 or plain unicode; ``prefix_budget`` reserves
    room for wire prefixes such as ``CON ``; ``max_options``: how many choices the channel can
    offer at once (buttons, list rows), ``None`` for numbered options without a limit;
    ``navigation_words``: words the channel's users type for the navigation keys (``menu`` -> ``00``).
    """

    name: str
    max_chars: int
    charset: Literal["gsm7", "ucs2", "unicode"] = "unicode"
    ucs2_max_chars: int = 0
    prefix_budget: int = 0
    max_options: int | None = None
    paged: bool = True
    navigation_words: dict[str, str] = field(default_factory=dict)
    # Whether screens list Back/Home (``0``/``00``): a channel whose customers send a new command
    # instead (SMS) keeps its messages short; the keys still work when typed.
    show_navigation: bool = True

    @property
    def budget(self) -> int:
        limit = self.ucs2_max_chars if self.charset == "ucs2" and self.ucs2_max_chars else self.max_chars
        return limit - self.prefix_budget
