"""The state of one conversation between hops, and its compact JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

__all__ = ["Session"]


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
    last_reply: dict[str, Any] | None = None   # the answer to the last hop, its Screen included
    # Measured during the current hop, never saved: when it started (on the performance counter, and
    # on the engine's clock: the "now" of its dialog steps), time spent in dialog steps, the node the
    # hop's last run of steps started from.
    hop_started: float = 0.0
    hop_now: datetime | None = None
    step_seconds: float = 0.0
    entered: str = ""

    def to_json(self) -> str:
        # A shallow mapping: dataclasses.asdict deep-copies the whole context first, for nothing.
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, separators=(",", ":"),
                          ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Session:
        data = json.loads(raw)
        if "customer" not in data:  # saved before sessions knew the customer apart from the address
            data["customer"] = data.get("user_id")
        return cls(**data)


_TRANSIENT = frozenset({"hop_started", "hop_now", "step_seconds", "entered"})
_FIELDS = tuple(f.name for f in fields(Session) if f.name not in _TRANSIENT)
