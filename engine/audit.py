"""The record of a finished conversation, and the port that keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["AuditSink", "NullAuditSink", "SessionRecord"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_key: str
    channel: str
    user_masked: str
    flow: str
    version: str
    nodes: tuple[str, ...]
    outcome: str           # end node id, "timeout", "error", or the gateway's status
    started_at: float
    ended_at: float
    hops: int
    gateway_status: str | None = None
    gateway_duration_ms: int | None = None
    gateway_error: str | None = None


class AuditSink(Protocol):
    def record(self, record: SessionRecord) -> None:
        """Insert or complete the record of ``record.session_key``; calling twice is harmless."""

    def complete(self, session_key: str, *, channel: str, user_masked: str, status: str,
                 duration_ms: int | None, error: str | None, hops: int | None) -> None:
        """The gateway's end-of-session report: complete the record, or create it if the
        engine never saw the end (a dropped session). Idempotent."""


class NullAuditSink:
    def record(self, record: SessionRecord) -> None:
        return None

    def complete(self, session_key: str, *, channel: str, user_masked: str, status: str,
                 duration_ms: int | None, error: str | None, hops: int | None) -> None:
        return None
