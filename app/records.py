"""Agents' commands on what the product keeps: ``python -m app purge`` and ``python -m app audit``.

``audit --account 2000001`` answers "who accessed account X" (subjects as pseudonyms);
``audit --number +221770000001`` lists one number's events by computing its pseudonym with the
server key (``SECRET_KEY``, or the one ``make run`` keeps in ``var/secret_key``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from .settings import Settings
from .storage import SqlSecurityAudit, make_sessions
from .storage.retention import PURGE_STATEMENT_TIMEOUT_SECONDS, purge, retention_rules

__all__ = ["audit_command", "purge_command"]

KEY_FILE = os.path.join("var", "secret_key")


def _settings() -> Settings:
    settings = Settings.from_env_or_refuse()
    if not settings.secret_key and os.path.exists(KEY_FILE):
        with open(KEY_FILE) as kept:
            settings = replace(settings, secret_key=kept.read().strip())
    return settings


def purge_command() -> int:
    """Apply every retention period once; print what was scrubbed or deleted per rule."""
    settings = _settings()
    counts = purge(make_sessions(settings.database_url, statement_timeout=PURGE_STATEMENT_TIMEOUT_SECONDS,
                                 lock_timeout=settings.database_lock_timeout_seconds),
                   rules=retention_rules(not_started_days=settings.payment_not_started_keep_days))
    for name, count in counts.items():
        print(f"{name:32} {count}")
    return 0


def audit_command(account: str | None, number: str | None) -> int:
    """Print the security events of an account or of a number, newest first, one per line."""
    if bool(account) == bool(number):
        print("give exactly one of --account or --number", file=sys.stderr)
        return 2
    settings = _settings()
    audit = SqlSecurityAudit(make_sessions(settings.database_url,
                                           statement_timeout=settings.database_statement_timeout_seconds,
                                           lock_timeout=settings.database_lock_timeout_seconds), settings.secret_key)
    events = audit.for_account(account) if account else audit.for_subject(number or "")
    for event in events:
        print(f"{event.occurred_at.isoformat(timespec='seconds')}  {event.kind:18} {event.channel:10} "
              f"subject={(event.subject_id or '-')[:16]}  account={event.account_number or '-'}  {event.detail}")
    if not events:
        print("no security events")
    return 0
