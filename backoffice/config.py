"""Settings of the reference back office, read once from the environment and frozen."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["DEV_CALLBACK_SECRET", "BackofficeConfig"]

log = logging.getLogger(__name__)

DEV_CALLBACK_SECRET: Final = "dev-only-secret"
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
    """

    database_url: str = DEFAULT_DATABASE_URL
    api_key: str | None = None
    callback_secret: str = DEV_CALLBACK_SECRET
    payment_approval: ApprovalMode = "auto"
    payment_delay: float = 1.0
    mqtt_url: str | None = None
    seed_demo: bool = True
    callback_backoff: float = 0.5

    def __post_init__(self) -> None:
        if self.payment_approval not in ("auto", "manual"):
            raise ValueError(f"payment_approval must be 'auto' or 'manual', not {self.payment_approval!r}")
        if self.payment_delay < 0:
            raise ValueError("payment_delay must be >= 0")
        if not self.callback_secret:
            raise ValueError("callback_secret must not be empty")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BackofficeConfig:
        """Read ``BACKOFFICE_*``, ``PAYMENT_CALLBACK_SECRET`` and ``MQTT_URL``.

        Raises ``ValueError`` naming the variable when a value cannot be used.
        """
        env = dict(os.environ if environ is None else environ)
        secret = env.get("PAYMENT_CALLBACK_SECRET") or ""
        if not secret:
            log.warning("PAYMENT_CALLBACK_SECRET is not set: using the development secret %r", DEV_CALLBACK_SECRET)
            secret = DEV_CALLBACK_SECRET
        approval = (env.get("BACKOFFICE_PAYMENT_APPROVAL") or "auto").strip().lower()
        if approval not in ("auto", "manual"):
            raise ValueError(f"BACKOFFICE_PAYMENT_APPROVAL must be 'auto' or 'manual', not {approval!r}")
        raw_delay = env.get("BACKOFFICE_PAYMENT_DELAY") or "1"
        try:
            delay = float(raw_delay)
        except ValueError:
            raise ValueError(f"BACKOFFICE_PAYMENT_DELAY must be a number of seconds, not {raw_delay!r}") from None
        return cls(
            database_url=env.get("BACKOFFICE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            api_key=env.get("BACKOFFICE_API_KEY") or None,
            callback_secret=secret,
            payment_approval=approval,  # type: ignore[arg-type]
            payment_delay=delay,
            mqtt_url=env.get("MQTT_URL") or None,
            seed_demo=_env_bool(env.get("BACKOFFICE_SEED_DEMO"), True),
        )
