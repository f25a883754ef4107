"""The running service's parts (config, database, payment decider, callback sender), shared by the blueprints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import BackofficeConfig

if TYPE_CHECKING:
    from .callbacks import CallbackSender
    from .payment_decisions import PaymentDecider

__all__ = ["EXTENSION_KEY", "Backoffice", "services"]

EXTENSION_KEY = "backoffice"


@dataclass(frozen=True, slots=True)
class Backoffice:
    config: BackofficeConfig
    engine: Engine
    sessions: sessionmaker[Session]
    callbacks: CallbackSender
    payments: PaymentDecider

    def close(self) -> None:
        """Cancel pending timers, stop callback retries and release database connections."""
        self.payments.close()
        self.callbacks.close()
        self.engine.dispose()


def services() -> Backoffice:
    """The ``Backoffice`` of the current Flask app."""
    found: Backoffice = current_app.extensions[EXTENSION_KEY]
    return found
