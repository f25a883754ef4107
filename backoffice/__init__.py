"""Reference back office: a stand-in for the utility's billing, metering, mobile-money and incident systems.

The product reaches it only over HTTP (see ``API.md`` and ``openapi.yaml``)::

    from backoffice import BackofficeConfig, create_app
    app = create_app(BackofficeConfig(database_url="sqlite:///var/backoffice.db", api_key=key, callback_secret=secret,
                                      callback_hosts=("engine.internal:8000",)))
"""

from __future__ import annotations

from .app import create_app
from .config import BackofficeConfig

__all__ = ["BackofficeConfig", "create_app"]
