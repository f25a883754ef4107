"""What an agent does to a customer's records, one function per action, shared by the command line
(``python -m app pin-unlock``) and the agents' console, so both take the same path."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import IdentityCache
from engine.security_audit import SecurityAudit, SecurityEvent

from .storage.alerts import SqlOutbox
from .storage.identity_cache import ForgetfulPinVault
from .storage.repositories import SqlPreferences

__all__ = ["unlock_pin"]


def unlock_pin(sessions: sessionmaker[Session], identity: IdentityCache, security: SecurityAudit,
               msisdn: str, by: str = "an agent") -> bool:
    """Lift the number's PIN lock (the only way out of a fourth lockout in a row): the cached identity is
    dropped, a ``pin_unlocked`` security event kept and an SMS queued. False when no PIN was locked."""
    # Through the vault that drops the number's cached identity, as every PIN change does.
    if not ForgetfulPinVault(sessions, identity).unlock(msisdn):
        return False
    security.record(SecurityEvent("pin_unlocked", "agent", msisdn, None, f"unlocked by {by}"[:200]))
    language = SqlPreferences(sessions).language(msisdn) or "fr"
    SqlOutbox(sessions).add(kind="pin_unlocked", msisdn=msisdn, language=language, payload={},
                            dedupe_key=f"pin_unlocked:{msisdn}:{time.time()}")
    return True
