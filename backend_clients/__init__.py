"""Outbound HTTP clients of the utility's back ends (billing, metering, mobile money, incidents).

Each client satisfies one port of ``dialogs.backends`` structurally and raises only that
module's errors. They share ``HttpBackend``: timeouts, retries of idempotent calls, a circuit
breaker, ``X-Api-Key``, masked logging. Wiring (one ``ClientConfig`` per back end)::

    billing = BillingClient(ClientConfig("http://127.0.0.1:8081", api_key=key))
"""

from __future__ import annotations

from .billing import BillingClient
from .breaker import CircuitBreaker, CircuitOpen
from .config import ClientConfig
from .http import HttpBackend
from .incidents import IncidentClient
from .masking import mask
from .metering import MeteringClient
from .payment import PaymentClient

__all__ = [
    "BillingClient", "CircuitBreaker", "CircuitOpen", "ClientConfig", "HttpBackend", "IncidentClient",
    "MeteringClient", "PaymentClient", "mask",
]
