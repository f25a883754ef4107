"""Bill simulator: a monthly kWh figure, or appliances and their hours of use a day, priced with
the tariff of ``deps.settings.tariffs_path`` (``dialogs.tariffs``). Its steps read only the tariff and
what was typed: they need no customer (``guests=True``), so a chat user who has not signed in may run them.

Context keys: ``sim_catalog`` (appliances offered), ``sim_appliances`` (those added so far:
``{appliance, watts, hours, kwh}``), ``sim_slot`` (where the appliance being picked goes in that list),
and the result ``sim_kwh``, ``sim_total`` and the
details ``sim_b1_amount`` ... that the result screens show.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from engine.steps import StepContext, StepResult

from .registry import Deps, step
from .tariffs import DETAIL_BANDS, Tariff, appliance_kwh, estimate, load_tariff

__all__ = ["MAX_APPLIANCES", "result_fields"]

MAX_APPLIANCES = 10


def _tariff(deps: Deps) -> Tariff:
    return load_tariff(deps.settings.tariffs_path)


def _plain(value: Decimal) -> str:
    """A Decimal as a plain string without exponent or useless zeros: ``150``, ``2.5``."""
    return format(value.normalize(), "f")


def result_fields(kwh: Decimal, tariff: Tariff) -> dict[str, Any]:
    """The context keys of the result and details screens for ``kwh`` a month."""
    bill = estimate(kwh, tariff)
    data: dict[str, Any] = {
        "sim_kwh": _plain(kwh), "sim_total": str(bill.total), "sim_fixed": str(bill.fixed_charge),
        "sim_vat": str(bill.vat), "sim_municipal": str(bill.municipal_tax),
        "sim_vat_rate": _plain(tariff.vat_rate * 100), "sim_municipal_rate": _plain(tariff.municipal_tax_rate * 100),
    }
    for number, line in enumerate(bill.lines[:DETAIL_BANDS], 1):
        data[f"sim_b{number}_amount"] = str(line.amount)
        data[f"sim_b{number}_kwh"] = _plain(line.kwh)
        data[f"sim_b{number}_from"] = _plain(line.from_kwh + 1) if line.from_kwh else "0"
        data[f"sim_b{number}_to"] = _plain(line.to_kwh) if line.to_kwh is not None else None
    return data


def _decimal(value: Any) -> Decimal | None:
    try:
        found = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return found if found.is_finite() and found >= 0 else None


@step("simulator.from_kwh", outcomes={"ok", "invalid"}, guests=True)
def from_kwh(ctx: StepContext, deps: Deps) -> StepResult:
    kwh = _decimal(ctx.data.get("sim_kwh_input"))
    if kwh is None:
        return StepResult("invalid")
    return StepResult("ok", result_fields(kwh, _tariff(deps)))


@step("simulator.start", outcomes={"ok"}, guests=True)
def start(ctx: StepContext, deps: Deps) -> StepResult:
    """Offer the appliances of the tariff file and start an empty list."""
    catalog = [{"appliance": a.code, "watts": a.watts} for a in _tariff(deps).appliances]
    return StepResult("ok", {"sim_catalog": catalog, "sim_appliances": [], "sim_count": 0,
                             "sim_total_kwh": "0", "sim_appliance": None, "sim_hours": None, "sim_slot": 0})


@step("simulator.next_slot", outcomes={"ok"}, guests=True)
def next_slot(ctx: StepContext, deps: Deps) -> StepResult:
    """"Add an appliance": the next one goes after those listed."""
    return StepResult("ok", {"sim_slot": len(ctx.data.get("sim_appliances") or [])})


@step("simulator.add_appliance", outcomes={"ok", "invalid"}, guests=True)
def add_appliance(ctx: StepContext, deps: Deps) -> StepResult:
    """Add the chosen appliance with its hours a day to the list (wattage from the tariff file)."""
    tariff = _tariff(deps)
    chosen = ctx.data.get("sim_appliance")
    code = chosen.get("appliance") if isinstance(chosen, dict) else None
    appliance = next((a for a in tariff.appliances if a.code == code), None)
    hours = _decimal(ctx.data.get("sim_hours"))
    # Only the appliances before this pick's slot: one this pick added before the customer went Back
    # to change the hours (or the appliance) is replaced, not counted twice.
    listed, slot = list(ctx.data.get("sim_appliances") or []), ctx.data.get("sim_slot")
    if slot is not None:
        listed = listed[:int(slot)]
    if appliance is None or hours is None or hours > 24 or len(listed) >= MAX_APPLIANCES:
        return StepResult("invalid")
    kwh = appliance_kwh(appliance.watts, hours, tariff.days_per_month)
    listed.append({"appliance": appliance.code, "watts": appliance.watts, "hours": _plain(hours),
                   "kwh": _plain(kwh)})
    total = sum((Decimal(item["kwh"]) for item in listed), Decimal(0))
    return StepResult("ok", {"sim_appliances": listed, "sim_count": len(listed), "sim_total_kwh": _plain(total),
                             "sim_last_appliance": appliance.code, "sim_last_kwh": _plain(kwh),
                             "sim_full": len(listed) >= MAX_APPLIANCES})


@step("simulator.from_appliances", outcomes={"ok", "empty"}, guests=True)
def from_appliances(ctx: StepContext, deps: Deps) -> StepResult:
    listed = ctx.data.get("sim_appliances") or []
    if not listed:
        return StepResult("empty")
    total = sum((Decimal(str(item["kwh"])) for item in listed), Decimal(0))
    return StepResult("ok", result_fields(total, _tariff(deps)))
