"""The operator's brand comes from ``brand:`` in the menus file; the shipped default is neutral."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.formatting import TextFormatter
from menus import MenuError, load_menus

ROOT = Path(__file__).resolve().parents[2]
REAL_COMPANY = "senelec"   # a real distributor: the product must not carry its name


def _copy(tmp_path: Path, brand: str) -> Path:
    shutil.copytree(ROOT / "config" / "menus", tmp_path / "menus")
    text = (ROOT / "config" / "menus.yaml").read_text(encoding="utf-8")
    start = text.index("\nbrand:\n")
    end = text.index("\n\n", start + 1)
    path = tmp_path / "menus.yaml"
    path.write_text(text[:start] + "\n" + brand + text[end:], encoding="utf-8")
    return path


def _home(menus_path: Path, language: str) -> str:
    menus = load_menus(menus_path).menus
    main = menus.flows["main"]
    text = main.nodes[main.root].text[language]  # type: ignore[union-attr]
    return TextFormatter(language).fill(text, {"account_number": "1000001"})


def test_the_shipped_menus_use_the_neutral_demo_brand():
    assert _home(ROOT / "config" / "menus.yaml", "fr") == "ElecNet - 1000001"
    assert _home(ROOT / "config" / "menus.yaml", "en") == "ElecNet - 1000001"


@pytest.mark.parametrize("path", [ROOT / "README.md", ROOT / "config" / "menus.yaml",
                                  *sorted((ROOT / "config" / "menus").glob("*.yaml")),
                                  ROOT / "config" / "tariffs.yaml"], ids=lambda p: p.name)
def test_no_real_company_is_named(path: Path):
    assert REAL_COMPANY not in path.read_text(encoding="utf-8").lower()


def test_an_operator_sets_its_name_help_line_and_greeting(tmp_path: Path):
    path = _copy(tmp_path, 'brand:\n  name: "Kuran {Power}"\n  help_line: "12 34 56"\n'
                           '  greeting: {fr: "Bonjour de {brand}", en: "Hello from {brand}"}')
    loaded = load_menus(path).menus
    assert _home(path, "en") == "Kuran {Power} - 1000001"      # braces in a name stay literal
    locked = loaded.flows["main"].nodes["link_locked"].text     # type: ignore[union-attr]
    assert locked["en"].endswith("call customer service on 12 34 56.")
    offer = loaded.flows["main"].nodes["link_offer"].text      # type: ignore[union-attr]
    assert TextFormatter("fr").fill(offer["fr"], {}).startswith("Bonjour de Kuran {Power}. Ce numéro")
    assert "33 867" not in path.read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in (tmp_path / "menus").glob("*.yaml"))


def test_a_brand_name_too_long_for_a_screen_is_refused(tmp_path: Path):
    path = _copy(tmp_path, "brand:\n  name: " + "X" * 40)
    with pytest.raises(MenuError) as caught:
        load_menus(path)
    assert "name" in str(caught.value.problems[0])
