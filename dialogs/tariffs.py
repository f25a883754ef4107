"""The electricity tariff (``config/tariffs.yaml``) and the bill estimate computed from it.

``estimate(kwh, tariff)`` is pure: it prices ``kwh`` band by band (the social band first),
adds the fixed charge and the taxes, and rounds every line to whole XOF; the total is the
sum of the rounded lines, so a customer adding up the details finds the total.

How the taxes are computed:

- VAT (``vat_rate``) on the energy of every band not marked ``vat_exempt`` (the social
  band) plus the fixed charge;
- municipal tax (``municipal_tax_rate``) on all the energy plus the fixed charge.

```yaml
currency: XOF
days_per_month: 30
billing_day: 20
fixed_charge: "1000"
vat_rate: "0.18"
municipal_tax_rate: "0.025"
bands:
  - {code: social, up_to_kwh: 150, price_per_kwh: "91.17", vat_exempt: true}
  - {code: middle, up_to_kwh: 250, price_per_kwh: "136.49"}
  - {code: top, up_to_kwh: null, price_per_kwh: "149.06"}
appliances:
  - {code: fridge, watts: 150}
```
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "DETAIL_BANDS",
    "Appliance",
    "Band",
    "BandLine",
    "BillEstimate",
    "ConfigError",
    "Tariff",
    "TariffError",
    "appliance_kwh",
    "estimate",
    "load_config",
    "load_tariff",
]

DETAIL_BANDS = 3
"""The details screen of the simulator has room for exactly this many bands."""

_XOF = Decimal(1)
Rate = Annotated[Decimal, Field(ge=0, lt=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Band(_Frozen):
    """Energy priced at ``price_per_kwh`` up to ``up_to_kwh`` of the month (``null``: no upper limit)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    up_to_kwh: Decimal | None = Field(default=None, gt=0)
    price_per_kwh: Decimal = Field(gt=0)
    vat_exempt: bool = False


class Appliance(_Frozen):
    """A household appliance of the simulator; its words live in ``labels:`` of the menus."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    watts: int = Field(gt=0, le=10_000)


class Tariff(_Frozen):
    currency: str = "XOF"
    days_per_month: int = Field(default=30, ge=28, le=31)
    billing_day: int = Field(default=20, ge=1, le=28)
    """Day of the month bills are issued: a bill covers the cycle from this day of the month before."""
    fixed_charge: Decimal = Field(ge=0)
    vat_rate: Rate
    municipal_tax_rate: Rate
    bands: tuple[Band, ...]
    appliances: tuple[Appliance, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Tariff:
        if len(self.bands) != DETAIL_BANDS:
            raise ValueError(f"bands: exactly {DETAIL_BANDS} bands are needed (the details screen shows "
                             f"{DETAIL_BANDS}), got {len(self.bands)}")
        limits = [b.up_to_kwh for b in self.bands]
        if limits[-1] is not None:
            raise ValueError("bands: the last band must be open (up_to_kwh: null)")
        closed = limits[:-1]
        if any(limit is None for limit in closed):
            raise ValueError("bands: only the last band may be open (up_to_kwh: null)")
        if any(b <= a for a, b in itertools.pairwise(closed)):  # type: ignore[operator]
            raise ValueError("bands: up_to_kwh must increase from one band to the next")
        codes = [b.code for b in self.bands]
        if len(set(codes)) != len(codes):
            raise ValueError("bands: codes must be unique")
        names = [a.code for a in self.appliances]
        if len(set(names)) != len(names):
            raise ValueError("appliances: codes must be unique")
        if len(names) > 9:
            raise ValueError("appliances: at most 9, so the list fits one USSD screen")
        return self


@dataclass(frozen=True, slots=True)
class BandLine:
    code: str
    from_kwh: Decimal          # exclusive lower limit (0 for the first band)
    to_kwh: Decimal | None     # inclusive upper limit, None for the open band
    kwh: Decimal               # the part of the consumption priced in this band
    price_per_kwh: Decimal
    amount: Decimal            # whole XOF


@dataclass(frozen=True, slots=True)
class BillEstimate:
    kwh: Decimal
    lines: tuple[BandLine, ...]
    fixed_charge: Decimal
    vat: Decimal
    municipal_tax: Decimal
    total: Decimal

    @property
    def energy(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def _xof(value: Decimal) -> Decimal:
    return value.quantize(_XOF, rounding=ROUND_HALF_UP)


def estimate(kwh: Decimal, tariff: Tariff) -> BillEstimate:
    """The bill of ``kwh`` in one month under ``tariff``; every amount in whole XOF."""
    if kwh < 0:
        raise ValueError("kwh must not be negative")
    lines: list[BandLine] = []
    lower = Decimal(0)
    for band in tariff.bands:
        upper = band.up_to_kwh
        used = max(Decimal(0), (kwh if upper is None else min(kwh, upper)) - lower)
        lines.append(BandLine(band.code, lower, upper, used, band.price_per_kwh, _xof(used * band.price_per_kwh)))
        if upper is not None:
            lower = upper
    fixed = _xof(tariff.fixed_charge)
    energy = sum((line.amount for line in lines), Decimal(0))
    taxable = sum((line.amount for line, band in zip(lines, tariff.bands) if not band.vat_exempt), Decimal(0))
    vat = _xof((taxable + fixed) * tariff.vat_rate)
    municipal = _xof((energy + fixed) * tariff.municipal_tax_rate)
    return BillEstimate(kwh, tuple(lines), fixed, vat, municipal, energy + fixed + vat + municipal)


def appliance_kwh(watts: int | Decimal, hours_per_day: Decimal, days: int) -> Decimal:
    """kWh a month of an appliance drawing ``watts`` for ``hours_per_day`` (to 0.1 kWh)."""
    return (Decimal(watts) * hours_per_day * days / 1000).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- loading
class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and the field."""


TariffError = ConfigError


M = TypeVar("M", bound=BaseModel)

_cache: dict[tuple[str, type[BaseModel]], BaseModel] = {}
_lock = threading.Lock()


def load_config(path: str | Path, model: type[M], what: str = "tariff") -> M:
    """``path`` read as YAML and validated by ``model``, once per path (later calls reuse it).

    Raises ``ConfigError`` naming the file and each invalid field.
    """
    key = (str(Path(path).resolve()), model)
    found = _cache.get(key)
    if found is None:
        with _lock:
            found = _cache.get(key)
            if found is None:
                found = _cache[key] = _read(Path(path), model, what)
    assert isinstance(found, model)
    return found


def load_tariff(path: str | Path) -> Tariff:
    """The validated tariff of ``path``, read once per path."""
    return load_config(path, Tariff, "tariff")


def _read(path: Path, model: type[M], what: str) -> M:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid {what}: {details}") from None
