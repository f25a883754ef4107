"""The one settings object of the product, read from the environment (see the README's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["Settings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default).strip() or default


@dataclass(frozen=True)
class Settings:
    menus_path: str = "config/menus.yaml"
    database_url: str = "sqlite:///var/engine.db"
    redis_url: str | None = None
    backoffice_url: str = "http://127.0.0.1:8001"
    backoffice_api_key: str | None = field(default=None, repr=False)
    # Worst case of one back-end call, (connect + read) x (1 + retries), stays under the hop deadline:
    # the USSD gateway gives up after 10-15 s.
    backend_connect_timeout: float = 1.0
    backend_read_timeout: float = 3.0
    backend_retries: int = 1
    hop_deadline_seconds: float = 8.0
    session_ttl_seconds: int = 180
    resume_window_seconds: int = 120
    default_region: str = "SN"
    public_base_url: str = "http://127.0.0.1:8000"
    payment_callback_secret: str = field(default="", repr=False)
    # Server key for HMACs the product keeps (hop digests, pseudonymous ids in the security audit).
    secret_key: str = field(default="", repr=False)
    log_level: str = "INFO"
    # How often the worker applies the retention purge (app/storage/retention.py); 0 turns it off.
    purge_interval_seconds: int = 3600

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            menus_path=_env("MENUS_PATH", cls.menus_path),
            database_url=_env("DATABASE_URL", cls.database_url),
            redis_url=os.environ.get("REDIS_URL") or None,
            backoffice_url=_env("BACKOFFICE_URL", cls.backoffice_url).rstrip("/"),
            backoffice_api_key=os.environ.get("BACKOFFICE_API_KEY") or None,
            backend_connect_timeout=float(_env("BACKEND_CONNECT_TIMEOUT", str(cls.backend_connect_timeout))),
            backend_read_timeout=float(_env("BACKEND_READ_TIMEOUT", str(cls.backend_read_timeout))),
            backend_retries=int(_env("BACKEND_RETRIES", str(cls.backend_retries))),
            hop_deadline_seconds=float(_env("HOP_DEADLINE_SECONDS", str(cls.hop_deadline_seconds))),
            session_ttl_seconds=int(_env("SESSION_TTL_SECONDS", str(cls.session_ttl_seconds))),
            resume_window_seconds=int(_env("RESUME_WINDOW_SECONDS", str(cls.resume_window_seconds))),
            default_region=_env("DEFAULT_REGION", cls.default_region),
            public_base_url=_env("PUBLIC_BASE_URL", cls.public_base_url).rstrip("/"),
            payment_callback_secret=os.environ.get("PAYMENT_CALLBACK_SECRET", ""),
            secret_key=os.environ.get("SECRET_KEY", ""),
            log_level=_env("LOG_LEVEL", cls.log_level),
            purge_interval_seconds=int(_env("PURGE_INTERVAL_SECONDS", str(cls.purge_interval_seconds))),
        )
