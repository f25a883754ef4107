"""The state of one conversation between hops, and its compact stored form.

A session is stored once per live conversation (hundreds of thousands at a peak), so its stored
form is small: MessagePack (``msgspec``) with one- or two-letter field names, fields at their
default value left out, the key (the store's key already) and a channel the key names left out,
and the replay record keeping the screen without its laid-out text (``Engine`` lays it out again).
Chosen by measurement (README "Benchmark"): for an idle session on the main menu, stdlib ``json``
790 bytes at ~17 us to encode and ~16 us to decode, ``orjson`` 790 bytes at ~1/~4 us, MessagePack
613 bytes at ~1/~3 us.

``encode``/``decode`` are that stored form; anything else (a session saved by an earlier release,
a corrupted value) raises ``UnreadableSession``, and the stores treat it as expired. ``to_json``
is a readable view of the same fields, for tests and debugging.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import Any, Final

import msgspec

__all__ = ["Session", "UnreadableSession"]

# Stored form version: a value without it (or with another) is not read.
_FORMAT: Final = 2


class UnreadableSession(ValueError):
    """A stored value that is not a session of this release's format."""


@dataclass(slots=True)
class Session:
    key: str
    channel: str
    user_id: str                      # the address the session belongs to (caller binding)
    flow: str
    version: str
    node: str
    language: str
    created_at: float
    updated_at: float
    data: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    # The page a screen in ``history`` was left from, when not its first: Back lands on it again
    # (an item picked on page 4 of a list). Empty, hence not stored, on most sessions.
    back_pages: dict[str, int] = field(default_factory=dict)
    visited: list[str] = field(default_factory=list)
    retries: int = 0
    page: int = 0
    hops: int = 0
    ended: bool = False
    outcome: str = ""
    resume_from: str | None = None    # offering to resume this dropped session of the same user
    # Where a resume must start again while a secret-gated stretch is open (see engine.resume),
    # and the context keys that steps wrote in hops carrying a secret (never carried by a resume).
    gate: str | None = None
    proofs: list[str] = field(default_factory=list)
    # Inputs dialled with the service code (``*123*1#``) that wait for the main menu: the
    # customer had to choose an account first; the shortcut follows once it is chosen.
    pending: list[str] = field(default_factory=list)
    # A keyword's node (``SOLDE`` -> balance) that waits for the main menu in the same way.
    pending_node: str | None = None
    # Who the customer is: a verified E.164 number, or None (see ``engine.types.Turn``).
    customer: str | None = None
    last_hop_id: str | None = None    # HMAC of caller and hop under the server key (engine.hop_digest)
    # The answer to the last hop: its Screen (``Screen.to_dict``) under "screen", the page shown under
    # "page" and "end"; its text is laid out again from them when a replay asks for it.
    last_reply: dict[str, Any] | None = None
    # On a channel whose hop carries the whole input history (``Turn.cumulative``, USSD): the length of
    # the text of the hop last answered, whose digest is ``last_hop_id``; the next hop's text must extend
    # it. ``None``: not such a channel (or a session saved before it was kept: its hops are read as before).
    seen: int | None = None
    # Measured during the current hop, never saved: when it started (on the performance counter, and
    # on the engine's clock: the "now" of its dialog steps), time spent in dialog steps, the node the
    # hop's last run of steps started from.
    hop_started: float = 0.0
    hop_now: datetime | None = None
    step_seconds: float = 0.0
    entered: str = ""

    def encode(self) -> bytes:
        """The stored form (see the module's docstring)."""
        out: dict[str, Any] = {"_": _FORMAT}
        for name, short, default in _STORED:
            value = getattr(self, name)
            if value != default:
                out[short] = value
        if self.key.startswith(self.channel + ":"):
            del out["c"]
        if self.customer == self.user_id:
            out.pop("cu", None)
        else:
            out.setdefault("cu", None)   # None differs from "the address": say it
        out["t0"] = round(self.created_at, 3)
        out["t"] = round(self.updated_at, 3)
        return _ENCODER.encode(out)

    @classmethod
    def decode(cls, raw: bytes | str, key: str) -> Session:
        """The session stored under ``key``; ``UnreadableSession`` when ``raw`` is not of this format."""
        try:
            stored = _DECODER.decode(raw.encode() if isinstance(raw, str) else raw)
        except msgspec.DecodeError as exc:
            raise UnreadableSession(str(exc)) from None
        if not isinstance(stored, dict) or stored.get("_") != _FORMAT:
            raise UnreadableSession("not a session of this format")
        values: dict[str, Any] = {"key": key}
        if "c" not in stored:   # the key names the channel
            stored["c"] = key.split(":", 1)[0]
        try:
            for name, short, default in _STORED:
                value = stored.get(short, _ABSENT)
                values[name] = _fresh(default) if value is _ABSENT else value
            values["customer"] = stored["cu"] if "cu" in stored else values["user_id"]
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise UnreadableSession(f"incomplete session: {exc}") from None

    def to_json(self) -> str:
        """Every stored field under its full name, as JSON (tests and debugging; not what is stored)."""
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, separators=(",", ":"),
                          ensure_ascii=False, default=str)


_ABSENT: Final = object()
_TRANSIENT = frozenset({"hop_started", "hop_now", "step_seconds", "entered"})
_FIELDS = tuple(f.name for f in fields(Session) if f.name not in _TRANSIENT)
# (field, stored name, default: left out when equal). Required fields have no default (never equal).
_SHORT: Final = {"channel": "c", "user_id": "u", "flow": "f", "version": "v", "node": "n", "language": "l",
                 "created_at": "t0", "updated_at": "t", "data": "d", "history": "h", "back_pages": "bp",
                 "visited": "vs",
                 "retries": "r", "page": "p", "hops": "o", "ended": "e", "outcome": "x", "resume_from": "rf",
                 "gate": "g", "proofs": "pf", "pending": "pd", "pending_node": "pn", "customer": "cu",
                 "last_hop_id": "lh", "last_reply": "lr", "seen": "sn"}
_REQUIRED: Final = object()   # no default: never equal to a value, so always stored


def _default(f: Any) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return _REQUIRED if f.default is MISSING else f.default


def _fresh(default: Any) -> Any:
    """A default to give a decoded session: a new list or dict each time, never a shared one."""
    if default is _REQUIRED:
        raise KeyError("a required field is missing")
    return type(default)() if isinstance(default, list | dict) else default


_STORED: Final = tuple((f.name, _SHORT[f.name], _default(f)) for f in fields(Session) if f.name in _SHORT)
# Values a step put in the context that MessagePack has no type for are stored as their text, as JSON did.
_ENCODER: Final = msgspec.msgpack.Encoder(enc_hook=str)
_DECODER: Final = msgspec.msgpack.Decoder()
