"""The running service's parts (config, database, payment decider, callback sender), shared by the blueprints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import BackofficeConfig

if TYPE_CHECKING:
    from .callbacks import CallbackSender
    from .payment_decisions import PaymentDecider

__all__ = ["EXTENSION_KEY", "Backoffice", "services", "wall_clock"]

EXTENSION_KEY = "backoffice"


def wall_clock() -> datetime:
    """The service's clock outside tests."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Backoffice:
    config: BackofficeConfig
    engine: Engine
    sessions: sessionmaker[Session]
    callbacks: CallbackSender
    payments: PaymentDecider
    # Now, aware, for the date rules of requests (arrangements' dates and schedules, consumption
    # windows): the wall clock, or the clock a test set through ``create_app(config, clock=...)``.
    clock: Callable[[], datetime] = wall_clock

    def now(self) -> datetime:
        """Now on this service's clock, naive UTC to the microsecond (as the database stores it)."""
        return self.clock().astimezone(UTC).replace(tzinfo=None)

    def close(self) -> None:
        """Cancel pending timers, stop callback retries and release database connections."""
        self.payments.close()
        self.callbacks.close()
        self.engine.dispose()


def services() -> Backoffice:
    """The ``Backoffice`` of the current Flask app."""
    found: Backoffice = current_app.extensions[EXTENSION_KEY]
    return found
