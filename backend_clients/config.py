"""Settings of one outbound HTTP client: where the back end is and how patient to be with it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientConfig"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How one client reaches one back end.

    ``base_url`` is the service root (``http://billing.internal:8080``); the clients add the
    API paths (``/api/v1/...``) themselves, so pointing a client at the real system instead of
    the reference back office is a change of ``base_url`` only.

    The defaults fit a USSD hop, which the gateway abandons after a few seconds: short
    timeouts, few retries, and a breaker that stops hammering a back end that is down.
    """

    base_url: str
    api_key: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    retries: int = 2                    # extra attempts after the first, idempotent calls only
    breaker_failures: int = 5           # consecutive failed calls that open the circuit
    breaker_reset_seconds: float = 30   # how long it stays open before one trial call
    backoff_factor: float = 0.1         # urllib3 backoff between retries: 0 s, 0.2 s, 0.4 s ...

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.breaker_failures < 1:
            raise ValueError("breaker_failures must be >= 1")
        if self.breaker_reset_seconds < 0:
            raise ValueError("breaker_reset_seconds must be >= 0")
