"""Settings of the reference back office, read once from the environment and frozen.

Operators copy stand-ins, so this one is closed by default: outside development mode
(``BACKOFFICE_DEV=1``, which ``make run`` sets) it refuses to start without an API key and a
callback secret, and it signs payment callbacks only to the hosts in ``BACKOFFICE_CALLBACK_HOSTS``
(default: the engine's ``PUBLIC_BASE_URL``). Its ``repr`` shows no secret.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlparse

__all__ = ["DEFAULT_DATABASE_URL", "BackofficeConfig", "database_url_from_env"]

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL: Final = "sqlite:///var/backoffice.db"

ApprovalMode = Literal["auto", "manual"]


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class BackofficeConfig:
    """Everything the service needs to run.

    ``payment_approval`` is ``auto`` (decided ``payment_delay`` seconds after initiation,
    failing when the msisdn's demo wallet is too small) or ``manual`` (the
    ``/approve`` and ``/decline`` endpoints decide). ``callback_backoff`` is the first
    retry delay of payment callbacks, doubled at each of the up to 5 tries.
    ``callback_hosts`` are the only ``host`` or ``host:port`` that receive signed callbacks.
    ``dev`` lets it run without an API key (and without a callback secret, then a random one).
    """

    database_url: str = DEFAULT_DATABASE_URL
    api_key: str | None = field(default=None, repr=False)
    callback_secret: str = field(default="", repr=False)
    payment_approval: ApprovalMode = "auto"
    payment_delay: float = 1.0
    mqtt_url: str | None = None
    seed_demo: bool = True
    callback_backoff: float = 0.5
    callback_hosts: tuple[str, ...] = ()
    dev: bool = False

    def __post_init__(self) -> None:
        if self.payment_approval not in ("auto", "manual"):
            raise ValueError(f"payment_approval must be 'auto' or 'manual', not {self.payment_approval!r}")
        if self.payment_delay < 0:
            raise ValueError("payment_delay must be >= 0")
        if not self.dev and not self.api_key:
            raise ValueError("BACKOFFICE_API_KEY must be set (or BACKOFFICE_DEV=1 for a development run)")
        if not self.callback_secret:
            if not self.dev:
                raise ValueError("PAYMENT_CALLBACK_SECRET must be set (or BACKOFFICE_DEV=1 for a development run)")
            # Development only, and still no shared constant: a secret nobody else can know.
            log.warning("PAYMENT_CALLBACK_SECRET is not set: callbacks are signed with a random secret "
                        "that no engine knows (make run shares one)")
            object.__setattr__(self, "callback_secret", secrets.token_hex(32))

    def allows_callback_to(self, url: str) -> bool:
        """Whether ``url`` is an http(s) URL on one of ``callback_hosts`` (``host`` or ``host:port``)."""
        try:
            parsed = urlparse(url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
        except ValueError:
            return False
        host = (parsed.hostname or "").lower()
        if parsed.scheme not in ("http", "https") or not host:
            return False
        return any(allowed.lower() in (host, f"{host}:{port}") for allowed in self.callback_hosts)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BackofficeConfig:
        """Read ``BACKOFFICE_*``, ``PAYMENT_CALLBACK_SECRET``, ``PUBLIC_BASE_URL`` and ``MQTT_URL``.

        Raises ``ValueError`` naming the variable when a value cannot be used.
        """
        env = dict(os.environ if environ is None else environ)
        approval = (env.get("BACKOFFICE_PAYMENT_APPROVAL") or "auto").strip().lower()
        if approval not in ("auto", "manual"):
            raise ValueError(f"BACKOFFICE_PAYMENT_APPROVAL must be 'auto' or 'manual', not {approval!r}")
        raw_delay = env.get("BACKOFFICE_PAYMENT_DELAY") or "1"
        try:
            delay = float(raw_delay)
        except ValueError:
            raise ValueError(f"BACKOFFICE_PAYMENT_DELAY must be a number of seconds, not {raw_delay!r}") from None
        hosts = [h.strip() for h in (env.get("BACKOFFICE_CALLBACK_HOSTS") or "").split(",") if h.strip()]
        if not hosts and env.get("PUBLIC_BASE_URL"):
            hosts = [urlparse(env["PUBLIC_BASE_URL"]).netloc]   # the engine this back office stands beside
        return cls(
            database_url=database_url_from_env(env),
            api_key=env.get("BACKOFFICE_API_KEY") or None,
            callback_secret=env.get("PAYMENT_CALLBACK_SECRET") or "",
            payment_approval=approval,  # type: ignore[arg-type]
            payment_delay=delay,
            mqtt_url=env.get("MQTT_URL") or None,
            seed_demo=_env_bool(env.get("BACKOFFICE_SEED_DEMO"), True),
            callback_hosts=tuple(hosts),
            dev=_env_bool(env.get("BACKOFFICE_DEV"), False),
        )


def database_url_from_env(environ: dict[str, str] | None = None) -> str:
    """``BACKOFFICE_DATABASE_URL`` or the default SQLite file (all ``seed`` needs: it serves nothing)."""
    env = os.environ if environ is None else environ
    return env.get("BACKOFFICE_DATABASE_URL") or DEFAULT_DATABASE_URL
