"""Navigation rules of the engine on the demo flow: paging ends, hidden options, the root,
and a menu reload that removes the screen a live session is on."""

from __future__ import annotations

from pathlib import Path

from engine import Engine, FlowSet, SessionStore
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps

HOME = "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"


def test_98_past_the_last_page_stays_and_99_then_goes_back_one_page(handset):
    phone = handset()
    phone.dial()
    first = phone.answer("1")
    assert phone.answer("99").text == first.text          # before the first page: stays, no error
    pages = [first]
    while (page := phone.answer("98")).page != pages[-1].page:
        pages.append(page)
    assert len(pages) == first.pages >= 3
    assert phone.answer("98").text == pages[-1].text      # past the last page: stays
    assert phone.answer("99").text == pages[-2].text      # one page back from the last
    # Paging never counted as an error: two real mistakes still leave the session open.
    assert phone.answer("abc").text.startswith("Choix invalide.\nChoisissez:")
    assert not phone.answer("xyz").end
    assert phone.answer("3").text.startswith("Choisi: Article 3")


def test_back_leaves_the_mistakes_made_on_the_screen_it_leaves_behind(handset):
    phone = handset()
    phone.dial()
    phone.answer("1")
    assert phone.answer("abc").text.startswith("Choix invalide.\nChoisissez:")
    assert not phone.answer("xyz").end                    # two mistakes on the list: one more would end it
    assert phone.answer("0").text == HOME                 # Back: a fresh start on the main menu
    assert phone.answer("abc").text == "Choix invalide.\n" + HOME
    assert phone.answer("xyz").text == "Choix invalide.\n" + HOME
    assert phone.answer("1").text.startswith("Choisissez:")


def test_nav_keys_on_the_root_stay_without_an_error(handset):
    phone = handset()
    assert phone.dial().text == HOME
    for key in ("0", "00", "98", "99", "0"):
        assert phone.answer(key).text == HOME
    assert phone.answer("1").text.startswith("Choisissez:")


def test_a_hidden_option_is_reachable_neither_by_number_nor_by_shortcut(store):
    plain = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    assert Handset(plain, session="a").dial("7").text == "Choix invalide.\n" + HOME
    typed = Handset(plain, session="b", msisdn="+221770000002")
    typed.dial()
    assert typed.answer("7").text == "Choix invalide.\n" + HOME
    vip = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(vip=True))
    shown = Handset(vip, session="c", msisdn="+221770000003")
    # A first screen before the main menu: the shortcut waits for it, then follows.
    assert shown.dial("7").text == "Bonjour cher Awa\n1. Continuer"
    assert shown.answer("1").text.startswith("Réservé\n0. Retour 00. Accueil")


def _menus_without_the_picked_screen(tmp_path: Path) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    path = tmp_path / "menus.yaml"
    path.write_text(text.replace("target: picked}", "target: chosen}").replace("      picked:\n", "      chosen:\n"),
                    encoding="utf-8")
    return path


def test_a_reload_in_this_process_keeps_the_live_session_on_its_version(tmp_path, store, steps):
    flows = FlowSet(load_menus(DEMO))
    engine = Engine(flows, store, steps)
    phone = Handset(engine)
    phone.dial()
    phone.answer("1")
    assert phone.answer("2").text.startswith("Choisi: Article 2")
    flows.load(load_menus(_menus_without_the_picked_screen(tmp_path)))
    assert phone.answer("0").text.startswith("Choisissez:\n1. Article 1")


def test_a_process_without_the_sessions_version_lands_on_the_main_menu_with_a_notice(tmp_path, store: SessionStore,
                                                                                      steps):
    before = Engine(FlowSet(load_menus(DEMO)), store, steps)
    after = Engine(FlowSet(load_menus(_menus_without_the_picked_screen(tmp_path))), store, steps)
    phone = Handset(before)
    phone.dial()
    phone.answer("1")
    assert phone.answer("2").text.startswith("Choisi: Article 2")
    phone.engine = after                 # the next hop reaches a worker that loaded the new menus
    moved = phone.answer("4")            # "4" is "Fin" on the main menu: it must not be applied
    assert moved.text == "Menu mis à jour.\n" + HOME
    assert not moved.end
    assert phone.answer("1").text.startswith("Choisissez:")


def test_a_process_with_the_screen_in_a_newer_version_shows_it_again_before_taking_input(store, steps, tmp_path):
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8").replace("Choisissez:", "Votre choix:"), encoding="utf-8")
    before = Engine(FlowSet(load_menus(DEMO)), store, steps)
    after = Engine(FlowSet(load_menus(path)), store, steps)
    phone = Handset(before)
    phone.dial()
    phone.answer("1")
    phone.engine = after
    again = phone.answer("2")
    assert again.text.startswith("Menu mis à jour.\nVotre choix:\n1. Article 1")
    assert phone.answer("2").text.startswith("Choisi: Article 2")
    assert phone.answer("0").text.startswith("Votre choix:")


def _home_behind_a_router(tmp_path: Path) -> Path:
    """The demo menus with the main menu renamed behind a router of its old name (``home:`` a router,
    ``main_menu:`` the menu), as the product's menus did for callers with no account."""
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8")
                    .replace("    home: home\n", "    home: home\n    main_menu: main_menu\n")
                    .replace("      home:\n        kind: menu\n",
                             "      home:\n        kind: router\n        routes: []\n        default: main_menu\n"
                             "      main_menu:\n        kind: menu\n"), encoding="utf-8")
    return path


def test_a_session_on_a_screen_that_became_a_router_is_shown_where_the_router_leads(store, steps, tmp_path):
    # A session left on the old main menu, or with it in its history, sees the main menu again, not a
    # screen of the router.
    before = Engine(FlowSet(load_menus(DEMO)), store, steps)
    after = Engine(FlowSet(load_menus(_home_behind_a_router(tmp_path))), store, steps)
    idle, deeper = Handset(before), Handset(before, session="s2")
    idle.dial()
    deeper.dial()
    deeper.answer("1")
    idle.engine = deeper.engine = after
    assert idle.answer("1").text == "Menu mis à jour.\n" + HOME
    assert idle.answer("1").text.startswith("Choisissez:\n1. Article 1")
    assert deeper.answer("3").text.startswith("Menu mis à jour.\nChoisissez:")
    assert deeper.answer("0").text == HOME


def test_a_session_resumed_after_the_main_menu_became_a_router_goes_back_to_the_main_menu(store, steps, tmp_path):
    before = Engine(FlowSet(load_menus(DEMO)), store, steps, hop_key=b"test-key")
    after = Engine(FlowSet(load_menus(_home_behind_a_router(tmp_path))), store, steps, hop_key=b"test-key")
    dropped = Handset(before)
    dropped.dial()
    assert dropped.answer("2").text.startswith("Montant (100 à 5000):")
    again = Handset(after, session="s2")
    again.dial()
    assert again.answer("1").text.startswith("Montant (100 à 5000):")
    assert again.answer("0").text == HOME


def test_the_menus_changed_notice_is_said_once_the_next_page_comes_without_it(store, steps, tmp_path):
    # A page turn lays out the screen last shown again (its replay record): not the notice that came with it.
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8").replace("Choisissez:", "Votre choix:"), encoding="utf-8")
    before = Engine(FlowSet(load_menus(DEMO)), store, steps)
    after = Engine(FlowSet(load_menus(path)), store, steps)
    phone, witness = Handset(before), Handset(after, session="s2")
    phone.dial()
    phone.answer("1")
    phone.engine = after
    assert phone.answer("98").text.startswith("Menu mis à jour.\nVotre choix:\n1. Article 1")
    witness.dial()
    first = witness.answer("1")
    assert phone.answer("98").text == witness.answer("98").text
    assert phone.answer("99").text == first.text and first.text.startswith("Votre choix:\n1. Article 1")


def test_after_a_wrong_input_the_first_page_keeps_its_error_line_through_page_turns(handset):
    phone = handset()
    phone.dial()
    first = phone.answer("1")
    wrong = phone.answer("abc")
    assert wrong.text.startswith("Choix invalide.\nChoisissez:")
    second = phone.answer("98")
    assert second.page == 1 and second.text.startswith("5. Article 5")
    # The page keeps the conversation's language for what the channel adds to it (an SMS reply's outbox row).
    assert second.screen is not None and second.screen.language == wrong.screen.language == "fr"
    assert phone.answer("99").text == wrong.text
    assert phone.answer("3").text.startswith("Choisi: Article 3")
    assert phone.answer("0").text == first.text          # Back: the list as first shown, no error line


def test_an_option_under_the_items_takes_the_number_after_the_last_item(store, tmp_path):
    """``after_items``: a Cancel under a list keeps the items at 1, 2, 3 and follows them, on the last page."""
    path = tmp_path / "menus.yaml"
    items = "        items: {from: items, label:"
    cancel = '        options: [{label: {fr: Annuler, en: Cancel}, target: home, after_items: true}]\n'
    path.write_text(DEMO.read_text(encoding="utf-8").replace(items, cancel + items, 1), encoding="utf-8")
    phone = Handset(Engine(FlowSet(load_menus(path)), store, CountingSteps(items=3)))
    phone.dial()
    assert phone.answer("1").text == ("Choisissez:\n1. Article 1 1 000 FCFA\n2. Article 2 2 000 FCFA\n"
                                      "3. Article 3 3 000 FCFA\n4. Annuler\n0. Retour 00. Accueil")
    assert phone.answer("4").text == HOME
    many = Handset(Engine(FlowSet(load_menus(path)), store, CountingSteps(items=30)), session="s2")
    many.dial()
    first = many.answer("1")
    assert "Annuler" not in first.text and first.text.startswith("Choisissez:\n1. Article 1")
    last = first
    while (page := many.answer("98")).page != last.page:
        last = page
    assert "31. Annuler" in last.text.splitlines()
    assert many.answer("31").text == HOME
