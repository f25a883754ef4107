"""What a customer reads when the menu file lacks a translation (a file loaded without ``menus lint``,
or a language added before its texts): the default language's text, the text's key when there is
none at all, and a blank line, rather than a placeholder, where a screen has no text in either language."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine, FlowSet, MemorySessionStore, Reply, Turn
from menus import load_menus

from .fakes import CountingSteps

# "home" has no English text; "back" is missing altogether; the main menu's text is French only and
# the "ask" prompt's English only.
MENUS = """\
languages: [fr, en]
default_language: fr
channels:
  ussd: {max_chars: 182, charset: gsm7, prefix_budget: 4}
entry_points:
  ussd: {"*": main}
system_texts:
  home: {fr: Accueil}
  more: {fr: Suite, en: More}
  previous: {fr: Préc., en: Prev.}
  invalid_choice: {fr: "Choix invalide.", en: "Invalid choice."}
  invalid_input: {fr: "Saisie invalide.", en: "Invalid entry."}
  too_many_errors: {fr: "Trop d'erreurs.", en: "Too many errors."}
  error: {fr: "Service indisponible.", en: "Service unavailable."}
flows:
  main:
    version: "1"
    start: home
    home: home
    nodes:
      home:
        kind: menu
        text: {fr: "Accueil"}
        options:
          - {label: {fr: "Code", en: "Code"}, target: ask}
      ask:
        kind: input
        text: {en: "Code:"}
        validator: {type: pin}
        store: code
        next: done
      done:
        kind: end
        text: {fr: "Merci.", en: "Thanks."}
"""


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    path = tmp_path / "menus.yaml"
    path.write_text(MENUS, encoding="utf-8")
    return Engine(FlowSet(load_menus(path)), MemorySessionStore(), CountingSteps())


def hop(engine: Engine, text: str, language: str) -> Reply:
    segments = tuple(text.split("*")) if text else ()
    return engine.handle(Turn("ussd", "+221770000001", f"ussd:{language}", segments[-1] if segments else None,
                              text, segments, language_hint=language))


def test_an_english_customer_reads_the_french_home_label_when_it_has_no_english_text(engine):
    hop(engine, "", "en")
    assert hop(engine, "1", "en").text == "Code:\n0. back 00. Accueil"


def test_an_english_customer_reads_the_french_text_of_a_screen_that_has_no_english_text(engine):
    assert hop(engine, "", "en").text == "Accueil\n1. Code"


def test_a_system_text_missing_from_the_file_shows_its_key_rather_than_failing(engine):
    hop(engine, "", "fr")
    assert "0. back" in hop(engine, "1", "fr").text


def test_a_screen_with_no_text_in_the_customers_language_nor_the_default_shows_a_blank_line_not_a_placeholder(engine):
    hop(engine, "", "fr")
    assert hop(engine, "1", "fr").text == "\n0. back 00. Accueil"
