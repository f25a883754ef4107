"""``estimate``: band boundaries, zero, taxes, rounding; loading and validating the tariff file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dialogs.tariffs import Tariff, TariffError, appliance_kwh, estimate, load_tariff

D = Decimal

# Round figures so the expected amounts can be checked by hand.
TARIFF = Tariff.model_validate({
    "fixed_charge": "1000", "vat_rate": "0.18", "municipal_tax_rate": "0.025",
    "bands": [
        {"code": "social", "up_to_kwh": 150, "price_per_kwh": "100", "vat_exempt": True},
        {"code": "middle", "up_to_kwh": 250, "price_per_kwh": "130"},
        {"code": "top", "up_to_kwh": None, "price_per_kwh": "150"},
    ],
})


def amounts(kwh: str) -> list[Decimal]:
    return [line.amount for line in estimate(D(kwh), TARIFF).lines]


def kwh_per_band(kwh: str) -> list[Decimal]:
    return [line.kwh for line in estimate(D(kwh), TARIFF).lines]


@pytest.mark.parametrize(("kwh", "bands"), [
    ("0", ["0", "0", "0"]),
    ("150", ["150", "0", "0"]),
    ("151", ["150", "1", "0"]),
    ("250", ["150", "100", "0"]),
    ("251", ["150", "100", "1"]),
    ("150.5", ["150", "0.5", "0"]),
])
def test_the_social_band_is_filled_first_then_each_band_up_to_its_limit(kwh, bands):
    assert kwh_per_band(kwh) == [D(b) for b in bands]


def test_zero_kwh_costs_the_fixed_charge_and_its_taxes():
    bill = estimate(D(0), TARIFF)
    assert amounts("0") == [0, 0, 0]
    assert (bill.fixed_charge, bill.vat, bill.municipal_tax, bill.total) == (D(1000), D(180), D(25), D(1205))


def test_vat_is_not_charged_on_the_social_band():
    bill = estimate(D(150), TARIFF)
    assert amounts("150") == [D(15000), 0, 0]
    assert bill.vat == D(180)                      # 18% of the fixed charge only
    assert bill.municipal_tax == D(400)            # 2.5% of 15 000 + 1 000
    assert bill.total == D(15000 + 1000 + 180 + 400)


def test_one_kwh_over_the_social_band_is_taxed():
    bill = estimate(D(151), TARIFF)
    assert amounts("151") == [D(15000), D(130), 0]
    assert bill.vat == D("203")                    # 18% of (130 + 1 000) = 203.4
    assert bill.municipal_tax == D("403")          # 2.5% of 16 130 = 403.25
    assert bill.total == D(15000 + 130 + 1000 + 203 + 403)


def test_boundaries_250_and_251():
    assert amounts("250") == [D(15000), D(13000), 0]
    assert amounts("251") == [D(15000), D(13000), D(150)]
    bill = estimate(D(251), TARIFF)
    assert bill.vat == D("2547")                   # 18% of (13 000 + 150 + 1 000) = 2 547
    assert bill.municipal_tax == D("729")          # 2.5% of 29 150 = 728.75
    assert bill.total == bill.energy + bill.fixed_charge + bill.vat + bill.municipal_tax


def test_every_amount_is_whole_xof_rounded_half_up_and_the_total_adds_up():
    tariff = TARIFF.model_copy(update={"bands": (
        TARIFF.bands[0].model_copy(update={"price_per_kwh": D("91.17")}), *TARIFF.bands[1:])})
    bill = estimate(D("10.5"), tariff)              # 957.285 -> 957
    assert bill.lines[0].amount == D(957)
    for value in (*[line.amount for line in bill.lines], bill.vat, bill.municipal_tax, bill.total):
        assert value == value.to_integral_value()
    assert bill.total == sum(line.amount for line in bill.lines) + bill.fixed_charge + bill.vat + bill.municipal_tax


def test_negative_kwh_is_refused():
    with pytest.raises(ValueError):
        estimate(D(-1), TARIFF)


def test_appliance_kwh_per_month():
    assert appliance_kwh(150, D(10), 30) == D("45.0")   # 150 W x 10 h x 30 days
    assert appliance_kwh(60, D("2.5"), 30) == D("4.5")


def test_the_shipped_tariff_loads_once_per_path():
    tariff = load_tariff("config/tariffs.yaml")
    assert tariff.bands[0].code == "social" and tariff.bands[0].vat_exempt
    assert tariff.bands[0].up_to_kwh == 150 and tariff.bands[1].up_to_kwh == 250
    assert tariff.vat_rate == D("0.18") and tariff.municipal_tax_rate == D("0.025")
    assert {a.code for a in tariff.appliances} >= {"fridge", "tv", "fan", "lights", "iron", "air_conditioner"}
    assert load_tariff("config/tariffs.yaml") is tariff



def tariff_yaml(vat: str = "0.1", limits: tuple[str, str, str] = ("1", "2", "null")) -> str:
    bands = "".join(f"  - {{code: {c}, up_to_kwh: {u}, price_per_kwh: '1'}}\n" for c, u in zip("abc", limits))
    return f"fixed_charge: '1'\nvat_rate: '{vat}'\nmunicipal_tax_rate: '0'\nbands:\n{bands}"

@pytest.mark.parametrize(("body", "message"), [
    ("bands: []\nfixed_charge: '1'\nvat_rate: '0.18'\nmunicipal_tax_rate: '0'\n", "exactly 3 bands"),
    (tariff_yaml(vat="1.5"), "vat_rate"),
    (tariff_yaml(limits=("5", "2", "null")), "must increase"),
    (tariff_yaml(limits=("1", "2", "3")), "last band must be open"),
    (tariff_yaml() + "prices: 3\n", "prices"),
])
def test_an_invalid_tariff_file_is_refused_with_the_file_and_the_reason(tmp_path: Path, body, message):
    path = tmp_path / "tariffs.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(TariffError) as error:
        load_tariff(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_missing_tariff_file_is_reported(tmp_path: Path):
    with pytest.raises(TariffError, match="cannot read"):
        load_tariff(tmp_path / "nowhere.yaml")
