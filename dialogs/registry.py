"""The registry of dialog steps: names the menus call, bound to the back ends at start-up.

A step is a function ``(ctx, deps) -> StepResult`` marked with ``@step(name, outcomes)``; the
decorator only marks it. A step that needs no customer (``ctx.customer`` may be ``None``: it reads and
changes no one's data, as the bill simulator) says so with ``guests=True``; only such steps may be
called in a flow open to guests (``guests: true`` in the menus), which ``python -m menus lint`` checks
with ``guest_steps()``. A ``DialogRegistry`` is an instance built from the modules it is given
(``DIALOG_MODULES`` for the product, as the app factory does) or from a handful of step
functions (a test), so nothing registers by being imported and a forgotten module fails loudly
(the linter reports the steps the menus name that no module gives). The registry maps the typed
back-end errors to outcomes every menu can route: ``backend_down`` (unreachable, timed out,
circuit open) and ``not_found``.
"""

from __future__ import annotations

import importlib
import logging
import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType

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
from .stores import (
    AccountLinks,
    Consent,
    Contacts,
    IdentityCache,
    Outbox,
    PaymentLedger,
    PendingTickets,
    PinVault,
    Preferences,
    Subscriptions,
    Throttle,
)

__all__ = ["BACKEND_DOWN", "DIALOG_MODULES", "NOT_FOUND", "Deps", "DialogRegistry", "DialogSettings",
           "collect_steps", "guest_steps", "known_steps", "step"]

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
    # How long a conversation may stay idle, by the channel it is on (the adapters' session policy), and on
    # any other: a one-time code typed back in the conversation that asked for it works as long.
    session_seconds: Mapping[str, int] = field(default_factory=dict)
    default_session_seconds: int = 180
    # First-PIN codes by SMS to one number in a day, across its sessions (each session sends 3 at most).
    pin_codes_per_day: int = 6
    # A token owed on a prepaid purchase settled by hand, the vending system unreachable: asked again after the
    # first wait, the waits doubling up to the longest (VEND_FIRST_WAIT_SECONDS, VEND_MAX_WAIT_SECONDS).
    vend_first_wait_seconds: int = 30
    vend_max_wait_seconds: int = 3600
    # What a code a conversation sends by SMS is derived under (``dialogs.codes.issue_code``): every process
    # must share it (the app derives it from SECRET_KEY); by default one of this instance's own.
    code_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def code_minutes(self, channel: str) -> int:
        """The whole minutes (rounded up) a code asked in a conversation on ``channel`` stays usable: the
        conversation's idle time, since the code's hash lives in it."""
        return math.ceil(self.session_seconds.get(channel, self.default_session_seconds) / 60)


@dataclass(frozen=True)
class Deps:
    """Everything a step may use, as interfaces. Unused ones may be ``None`` in tests, except ``throttle``.

    ``throttle`` is required, and checked at construction: the guessing limits (the last bill's amount,
    codes by SMS and e-mail, undo codes) count on it, and a wiring that forgot it must fail at start-up
    rather than let a proof be guessed without a cap."""

    billing: BillingBackend
    links: AccountLinks
    preferences: Preferences
    throttle: Throttle
    metering: MeteringBackend | None = None
    payments: PaymentBackend | None = None
    incidents: IncidentBackend | None = None
    pins: PinVault | None = None
    subscriptions: Subscriptions | None = None
    outbox: Outbox | None = None
    ledger: PaymentLedger | None = None
    pending_tickets: PendingTickets | None = None
    consent: Consent | None = None
    identity: IdentityCache | None = None   # who a number is, cached (account.identify)
    contacts: Contacts | None = None        # where notifications go: channel, confirmed e-mail
    security: SecurityAudit = field(default_factory=LoggingSecurityAudit)
    settings: DialogSettings = DialogSettings()

    def __post_init__(self) -> None:
        if not isinstance(self.throttle, Throttle):
            raise TypeError(f"Deps.throttle must be a Throttle (the guessing limits count on it), "
                            f"not {type(self.throttle).__name__}")


StepFunction = Callable[[StepContext, Deps], StepResult]


@dataclass(frozen=True)
class _StepDef:
    name: str
    function: StepFunction
    outcomes: frozenset[str]
    guests: bool = False


# The product's dialog modules, in the order the registry collects them.
DIALOG_MODULES = ("dialogs.account", "dialogs.arrangements", "dialogs.billing", "dialogs.consumption",
                  "dialogs.incidents", "dialogs.keywords", "dialogs.payments", "dialogs.preferences",
                  "dialogs.security", "dialogs.simulator")
_MARK = "__dialog_step__"


def step(name: str, outcomes: set[str], *, guests: bool = False) -> Callable[[StepFunction], StepFunction]:
    """Mark a function as the dialog step ``name``; ``outcomes`` are those it returns besides the
    common ones. ``guests``: the step works without a customer (a guest's hop: ``ctx.customer`` is
    ``None``) and reads or changes no customer's data. Collecting it is the registry builder's job
    (``collect_steps``)."""

    def mark(function: StepFunction) -> StepFunction:
        setattr(function, _MARK, _StepDef(name, function, frozenset(outcomes | {BACKEND_DOWN, NOT_FOUND}), guests))
        return function

    return mark


def collect_steps(sources: Iterable[str | ModuleType | StepFunction]) -> dict[str, _StepDef]:
    """The steps of the named modules (or modules, or marked functions); ``ValueError`` when a name
    is given twice or a function is not a step."""
    found: dict[str, _StepDef] = {}
    for source in sources:
        if isinstance(source, str):
            source = importlib.import_module(source)
        if isinstance(source, ModuleType):
            definitions = [d for d in (getattr(v, _MARK, None) for v in vars(source).values())
                           if isinstance(d, _StepDef) and getattr(d.function, "__module__", "") == source.__name__]
        else:
            definition = getattr(source, _MARK, None)
            if not isinstance(definition, _StepDef):
                raise ValueError(  # noqa: TRY004 - a wiring mistake, reported as the registry's others
                    f"{getattr(source, '__name__', source)!r} is not marked with @step")
            definitions = [definition]
        for definition in definitions:
            if definition.name in found and found[definition.name] is not definition:
                raise ValueError(f"dialog step '{definition.name}' is given twice")
            found[definition.name] = definition
    return found


def _guarded(definition: _StepDef, deps: Deps, ctx: StepContext) -> StepResult:
    try:
        return definition.function(ctx, deps)
    except BackendUnavailable as exc:
        log.warning("step %s: back end unavailable user=%s: %s", definition.name, mask(ctx.user_id), exc)
        return StepResult(BACKEND_DOWN)
    except NotFound:
        return StepResult(NOT_FOUND)


class DialogRegistry:
    """The ``engine.steps.StepRegistry`` of this product: the steps of ``sources`` (module names,
    modules or step functions; the product's modules by default), bound to ``deps``."""

    def __init__(self, deps: Deps, sources: Iterable[str | ModuleType | StepFunction] = DIALOG_MODULES) -> None:
        self._steps = collect_steps(sources)
        self._bound = {name: partial(_guarded, d, deps) for name, d in self._steps.items()}

    def get(self, name: str) -> Callable[[StepContext], StepResult] | None:
        return self._bound.get(name)

    def names(self) -> set[str]:
        return set(self._steps)

    def outcomes(self, name: str) -> frozenset[str]:
        return self._steps[name].outcomes

    def for_guests(self, name: str) -> bool:
        """Whether the step ``name`` works without a customer (``@step(..., guests=True)``)."""
        return self._steps[name].guests


def known_steps(sources: Iterable[str | ModuleType | StepFunction] = DIALOG_MODULES) -> dict[str, frozenset[str]]:
    """Every step of ``sources`` and its outcomes, without back ends (for the menu linter)."""
    return {name: d.outcomes for name, d in collect_steps(sources).items()}


def guest_steps(sources: Iterable[str | ModuleType | StepFunction] = DIALOG_MODULES) -> frozenset[str]:
    """The steps of ``sources`` that work without a customer (for the menu linter: a flow open to guests
    calls only these)."""
    return frozenset(name for name, d in collect_steps(sources).items() if d.guests)
