"""A deployment whose sessions are shared (``REDIS_URL``) starts only with a server key: ``SECRET_KEY``.

With Redis any process may serve any hop of a conversation. The one-time codes a conversation sends (account
link, link undo, first PIN, e-mail) are derived from their message under a key from ``SECRET_KEY``, and so are
the replay records of hops and the audit's pseudonyms. Without it each process would use a random key of its
own: a code sent by one worker would be "wrong" whenever the customer's next hop reached another, silently and
now and then. So the WSGI entry point and the action server stop at start with a clear message instead.

The worker is always a process of its own: it opens the codes the engine sealed in the outbox and writes the
security audit's pseudonyms under keys derived from the same ``SECRET_KEY``. Without it, whatever the session
store, it would fail every message holding a code; so it refuses to start too.

Why refuse rather than keep a generated key somewhere every process reads (Redis)? The key must outlive Redis
(pseudonyms in the security audit, unsubscribe links), and a secret kept beside the data it protects is read by
whoever reads that data. ``python -m app serve`` keeps one in ``var/secret_key`` for a single machine; the
embedded default (no ``REDIS_URL``: one process, sessions in its memory) keeps its random key per process.
"""

from __future__ import annotations

import sys
from typing import Final

from .settings import SETTING_REFUSED, Settings

__all__ = ["SecretKeyRefused", "refuse_shared_sessions_without_secret_key", "refuse_worker_without_secret_key"]

MESSAGE = ("SECRET_KEY is not set while REDIS_URL is: every process serving these sessions must derive one-time "
           "codes, replayed hops and pseudonyms under the same key, or a code sent by one worker is refused by "
           "another. Not served. Set SECRET_KEY to the same random value in every process, e.g. "
           "python -c 'import secrets; print(secrets.token_hex(32))'.")

WORKER_MESSAGE = ("SECRET_KEY is not set: the worker opens the one-time codes the engine sealed in the outbox, and "
                  "writes the security audit's pseudonyms, under keys derived from the engine's SECRET_KEY; without "
                  "it every message holding a code would fail. Not started. Set SECRET_KEY to the engine's value.")


# The status gunicorn's master reads as "a worker could not boot": it then stops, where after any other it
# would start the worker again, forever, each one printing the message.
BOOT_REFUSED: Final = SETTING_REFUSED


class SecretKeyRefused(SystemExit):
    """Shared sessions without ``SECRET_KEY``: the process stops with the message (exit status 3)."""


def refuse_shared_sessions_without_secret_key(settings: Settings) -> None:
    """Print why and raise ``SecretKeyRefused`` when ``settings`` share sessions (Redis) without a server key."""
    if settings.redis_url and not settings.secret_key:
        print(MESSAGE, file=sys.stderr, flush=True)
        raise SecretKeyRefused(BOOT_REFUSED)


def refuse_worker_without_secret_key(settings: Settings) -> None:
    """Print why and raise ``SecretKeyRefused`` when the worker has no server key (it never shares a process
    with the engine, so a random key of its own could open nothing the engine sealed)."""
    if not settings.secret_key:
        print(WORKER_MESSAGE, file=sys.stderr, flush=True)
        raise SecretKeyRefused(BOOT_REFUSED)
