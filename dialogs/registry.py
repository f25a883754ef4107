"""The registry of dialog steps: names the menus call, bound to the back ends at start-up.

A step is a function ``(ctx, deps) -> StepResult`` registered with ``@step(name, outcomes)``.
The registry maps the typed back-end errors to outcomes every menu can route:
``backend_down`` (unreachable, timed out, circuit open) and ``not_found``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from engine.masking import mask
from engine.security_audit import LoggingSecurityAudit, SecurityAudit
from engine.steps import StepContext, StepResult

from .backends import (
    BackendUnavailable,
    BillingBackend,
    IncidentBackend,
    MeteringBackend,
    NotFound,
    PaymentBackend,
)
from .stores import (AccountLinks, IdentityCache, Outbox, PaymentLedger, PendingTickets, PinVault, Preferences,
                     Subscriptions, Throttle)

__all__ = ["BACKEND_DOWN", "NOT_FOUND", "Deps", "DialogRegistry", "DialogSettings", "known_steps", "step"]

log = logging.getLogger("dialogs")

BACKEND_DOWN, NOT_FOUND = "backend_down", "not_found"


@dataclass(frozen=True)
class DialogSettings:
    """Settings dialogs need, handed over by the app factory."""

    payment_callback_url: str = "http://127.0.0.1:8000/payments/callback"
    arrangement_rules_path: str = "config/arrangements.yaml"
    tariffs_path: str = "config/tariffs.yaml"
    currency: str = "XOF"
    # Mobile-money operators offered to the customer, in order: (code sent to the provider, name shown).
    wallets: tuple[tuple[str, str], ...] = (("orange_money", "Orange Money"), ("wave", "Wave"),
                                            ("free_money", "Free Money"))


@dataclass(frozen=True)
class Deps:
    """Everything a step may use, as interfaces. Unused ones may be ``None`` in tests."""

    billing: BillingBackend
    links: AccountLinks
    preferences: Preferences
    metering: MeteringBackend | None = None
    payments: PaymentBackend | None = None
    incidents: IncidentBackend | None = None
    pins: PinVault | None = None
    subscriptions: Subscriptions | None = None
    outbox: Outbox | None = None
    ledger: PaymentLedger | None = None
    pending_tickets: PendingTickets | None = None
    throttle: Throttle | None = None
    identity: IdentityCache | None = None   # who a number is, cached (account.identify)
    security: SecurityAudit = LoggingSecurityAudit()
    settings: DialogSettings = DialogSettings()


StepFunction = Callable[[StepContext, Deps], StepResult]


@dataclass(frozen=True)
class _StepDef:
    name: str
    function: StepFunction
    outcomes: frozenset[str]


_STEPS: dict[str, _StepDef] = {}


def step(name: str, outcomes: set[str]) -> Callable[[StepFunction], StepFunction]:
    """Register a dialog step; ``outcomes`` are those it returns besides the common ones."""

    def register(function: StepFunction) -> StepFunction:
        if name in _STEPS:
            raise ValueError(f"dialog step '{name}' registered twice")
        _STEPS[name] = _StepDef(name, function, frozenset(outcomes | {BACKEND_DOWN, NOT_FOUND}))
        return function

    return register


def _guarded(definition: _StepDef, deps: Deps, ctx: StepContext) -> StepResult:
    try:
        return definition.function(ctx, deps)
    except BackendUnavailable as exc:
        log.warning("step %s: back end unavailable user=%s: %s", definition.name, mask(ctx.user_id), exc)
        return StepResult(BACKEND_DOWN)
    except NotFound:
        return StepResult(NOT_FOUND)


def _register_all() -> None:
    # Importing a dialog module registers its steps.
    from . import (  # noqa: F401
        account,
        arrangements,
        billing,
        consumption,
        incidents,
        payments,
        preferences,
        security,
        simulator,
    )


class DialogRegistry:
    """The ``engine.steps.StepRegistry`` of this product."""

    def __init__(self, deps: Deps) -> None:
        _register_all()
        self._bound = {name: partial(_guarded, d, deps) for name, d in _STEPS.items()}

    def get(self, name: str) -> Callable[[StepContext], StepResult] | None:
        return self._bound.get(name)

    def names(self) -> set[str]:
        return set(_STEPS)

    def outcomes(self, name: str) -> frozenset[str]:
        return _STEPS[name].outcomes


def known_steps() -> dict[str, frozenset[str]]:
    """Every registered step and its outcomes, without back ends (for the menu linter)."""
    _register_all()
    return {name: d.outcomes for name, d in _STEPS.items()}
