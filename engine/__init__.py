"""The channel-agnostic conversation engine: flows, sessions, rendering.

The names below are imported on first use (PEP 562): a tool that needs one light part of the
engine (the menu linter reads ``engine.preview`` and ``engine.types``) does not load the state
machine, the session stores and their Redis client with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .audit import AuditSink, NullAuditSink, SessionRecord
    from .engine import Engine, EngineLimits, HopObserver
    from .flow import CompiledFlow, FlowSet
    from .security_audit import LoggingSecurityAudit, SecurityAudit, SecurityEvent
    from .session import Session
    from .steps import StepContext, StepRegistry, StepResult
    from .store import MemorySessionStore, RedisSessionStore, SessionBusy, SessionStore, StoreUnavailable
    from .types import ChannelCapabilities, Option, Reply, Screen, Turn

_HOMES = {
    ".audit": ("AuditSink", "NullAuditSink", "SessionRecord"),
    ".engine": ("Engine", "EngineLimits", "HopObserver"),
    ".flow": ("CompiledFlow", "FlowSet"),
    ".security_audit": ("LoggingSecurityAudit", "SecurityAudit", "SecurityEvent"),
    ".session": ("Session",),
    ".steps": ("StepContext", "StepRegistry", "StepResult"),
    ".store": ("MemorySessionStore", "RedisSessionStore", "SessionBusy", "SessionStore", "StoreUnavailable"),
    ".types": ("ChannelCapabilities", "Option", "Reply", "Screen", "Turn"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AuditSink",
    "ChannelCapabilities",
    "CompiledFlow",
    "Engine",
    "EngineLimits",
    "FlowSet",
    "HopObserver",
    "LoggingSecurityAudit",
    "MemorySessionStore",
    "NullAuditSink",
    "Option",
    "RedisSessionStore",
    "Reply",
    "Screen",
    "SecurityAudit",
    "SecurityEvent",
    "Session",
    "SessionBusy",
    "SessionRecord",
    "SessionStore",
    "StepContext",
    "StepRegistry",
    "StepResult",
    "StoreUnavailable",
    "Turn",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later look-ups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
