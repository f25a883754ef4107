"""Paging and character sets: no page over the budget, no word cut, GSM-7 transliteration."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.charset import gsm7_length, is_gsm7, to_gsm7
from engine.render import PageLabels, render_pages
from engine.types import ChannelCapabilities, Option, Screen

USSD = ChannelCapabilities("ussd", 182, "gsm7", 80, 4)
LABELS = PageLabels("Suite", "Préc.")
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèêçàôûÀ€[]{}", min_size=1, max_size=14)
paragraph = st.lists(words, min_size=1, max_size=60).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(paragraph, min_size=1, max_size=4), st.lists(paragraph, max_size=25), st.booleans())
def test_every_page_fits_and_keeps_every_word(blocks, labels, with_error):
    screen = Screen("n", "fr", tuple(blocks), tuple(Option(str(i), l) for i, l in enumerate(labels, 1)),
                    (Option("0", "Retour"), Option("00", "Accueil")), "Choix invalide." if with_error else None)
    pages = render_pages(screen, USSD, LABELS)
    for page in pages:
        assert gsm7_length(page) <= USSD.budget
        assert is_gsm7(page)
    shown = " ".join(" ".join(p.split("\n")) for p in pages).split(" ")
    for block in blocks:
        for word in to_gsm7(block).split(" "):
            assert word in shown


def test_short_screen_is_one_page_with_numbered_options():
    screen = Screen("n", "fr", ("Menu",), (Option("1", "Solde"),), (Option("00", "Accueil"),))
    assert render_pages(screen, USSD, LABELS) == ["Menu\n1. Solde\n00. Accueil"]


def test_transliteration_of_french_text():
    assert to_gsm7("Échéance à régler, reçu n° «A» : côté île où") == 'Échéance à régler, recu no "A" : coté ile où'
    assert gsm7_length("{€}") == 6
