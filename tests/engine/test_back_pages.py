"""Back after paging: a customer who picks an item on page 4 of a list and presses Back lands on
page 4 again, however deep they went from there, and only while that list is behind them.

The demo flow, with the picked item's screen leading on: 1 another item (the list again),
2 a quantity to type (a task a redial can resume), 3 a detail screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from engine import Engine, FlowSet, Reply, Session, SessionStore
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps

HOME = "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"
PICKED = ("      picked:\n"
          "        kind: message\n"
          "        text: {fr: \"Choisi: {picked.label}\", en: \"Picked: {picked.label}\"}\n")
PICKED_LEADING_ON = ("      picked:\n"
                     "        kind: menu\n"
                     "        text: {fr: \"Choisi: {picked.label}\", en: \"Picked: {picked.label}\"}\n"
                     "        options:\n"
                     "          - {label: {fr: \"Autre article\", en: \"Another item\"}, target: list}\n"
                     "          - {label: {fr: \"Quantité\", en: \"Quantity\"}, target: ask_qty}\n"
                     "          - {label: {fr: \"Détail\", en: \"Detail\"}, target: detail}\n"
                     "      ask_qty:\n"
                     "        kind: input\n"
                     "        text: {fr: \"Quantité:\", en: \"Quantity:\"}\n"
                     "        validator: {type: digits, min_len: 1, max_len: 2}\n"
                     "        store: qty\n"
                     "        next: detail\n"
                     "      detail:\n"
                     "        kind: message\n"
                     "        text: {fr: \"Détail de {picked.label}\", en: \"Detail of {picked.label}\"}\n")


@pytest.fixture
def engine(tmp_path: Path, store: SessionStore) -> Engine:
    text = DEMO.read_text(encoding="utf-8")
    assert PICKED in text
    path = tmp_path / "menus.yaml"
    path.write_text(text.replace(PICKED, PICKED_LEADING_ON), encoding="utf-8")
    return Engine(FlowSet(load_menus(path)), store, CountingSteps(), hop_key=b"test-key")


@pytest.fixture
def phone(engine: Engine) -> Callable[..., Handset]:
    return lambda **kw: Handset(engine, **kw)


def _stored(store: SessionStore) -> Session:
    """The handset's session as the store keeps it between hops."""
    session = store.load("ussd:s1")
    assert session is not None
    return session


def _to_page(handset: Handset, number: int) -> Reply:
    """The list, then ``98`` until its page ``number`` (1 is the first)."""
    shown = handset.answer("1")
    for _ in range(number - 1):
        shown = handset.answer("98")
    assert shown.page == number - 1
    return shown


def _first_item(page: Reply) -> str:
    """The number of the first item a page lists (``12. Article 12 ...`` -> ``12``)."""
    body = page.text.removeprefix("Choisissez:\n")
    return body.split(".", 1)[0]


def test_back_after_an_item_picked_on_page_4_lands_on_page_4(phone):
    p = phone()
    p.dial()
    fourth = _to_page(p, 4)
    item = _first_item(fourth)
    assert p.answer(item).text.startswith(f"Choisi: Article {item}\n")
    assert p.answer("0").text == fourth.text
    # The customer is on page 4 indeed: 99 shows page 3, and Back from the list is the main menu.
    third = p.answer("99")
    assert third.page == 2 and third.text != fourth.text
    assert p.answer("0").text == HOME


def test_back_twice_from_deeper_screens_still_lands_on_the_page_picked_from(phone):
    p = phone()
    p.dial()
    third = _to_page(p, 3)
    item = _first_item(third)
    picked = p.answer(item)
    assert p.answer("3").text.startswith(f"Détail de Article {item}")
    assert p.answer("0").text == picked.text
    assert p.answer("0").text == third.text


def test_back_after_an_item_picked_on_the_first_page_lands_on_the_first_page(phone, store: SessionStore):
    p = phone()
    p.dial()
    first = _to_page(p, 1)
    assert p.answer("2").text.startswith("Choisi: Article 2\n")
    # Nothing to remember for a first page: the stored session stays as small as before.
    assert _stored(store).back_pages == {}
    assert p.answer("0").text == first.text


def test_a_list_reached_again_through_the_flow_forgets_the_page_it_was_left_from(phone):
    p = phone()
    p.dial()
    third = _to_page(p, 3)
    p.answer(_first_item(third))
    again = p.answer("1")                   # "Another item": the list again, from its first page
    assert again.page == 0 and again.text.startswith("Choisissez:\n1. Article 1 ")
    assert p.answer("2").text.startswith("Choisi: Article 2\n")
    assert p.answer("0").text == again.text     # the first page, where item 2 was picked: not page 3
    assert p.answer("0").text == HOME


def test_home_forgets_the_page_a_list_was_left_from(phone, store: SessionStore):
    p = phone()
    p.dial()
    third = _to_page(p, 3)
    p.answer(_first_item(third))
    assert p.answer("00").text == HOME
    assert _stored(store).back_pages == {}
    assert p.answer("1").page == 0


def test_a_resumed_session_keeps_the_page_back_leads_to(phone):
    first = phone(session="dropped")
    first.dial()
    third = _to_page(first, 3)
    item = _first_item(third)
    picked = first.answer(item)
    assert first.answer("2").text.startswith("Quantité:")   # the network drops the call here
    again = phone(session="again")
    assert again.dial().text == "Reprendre ?\n1. Oui\n2. Non"
    assert again.answer("1").text.startswith("Quantité:")
    assert again.answer("0").text == picked.text
    assert again.answer("0").text == third.text


def test_the_remembered_page_costs_a_few_bytes_and_an_idle_session_nothing(phone, store: SessionStore):
    p = phone()
    p.dial()
    idle = _stored(store)
    assert idle.back_pages == {} and len(idle.encode()) < 1024
    fourth = _to_page(p, 4)
    p.answer(_first_item(fourth))
    deep = _stored(store)
    assert deep.back_pages == {"list": 3}
    assert len(deep.encode()) - len(replace(deep, back_pages={}).encode()) <= 12   # "bp", the name, the page
