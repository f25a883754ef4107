"""The channel-agnostic conversation engine: flows, sessions, rendering."""

from .audit import AuditSink, NullAuditSink, SessionRecord
from .engine import Engine, EngineLimits, HopObserver
from .flow import CompiledFlow, FlowSet
from .security_audit import LoggingSecurityAudit, SecurityAudit, SecurityEvent
from .session import Session
from .steps import StepContext, StepRegistry, StepResult
from .store import MemorySessionStore, RedisSessionStore, SessionBusy, SessionStore, StoreUnavailable
from .types import ChannelCapabilities, Option, Reply, Screen, Turn

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
