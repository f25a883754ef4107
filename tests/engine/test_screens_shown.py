"""What the engine shows on a screen, hop by hop: error lines kept on a gateway retry, ``98`` read as
an answer or as paging, Back after a commit or on the main menu, labels in the customer's language,
pages that leave the gateway its prefix, and the outcome the audit trail keeps of a refused step.

Flows: the demo flow (``flows/demo.yaml``) and ``flows/screens.yaml`` (a prompt taking 1 to 99, a
payment that commits, a balance read before a PIN prompt, a channel whose gateway prefix is long).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine import ChannelCapabilities, Engine, FlowSet, Reply, SessionStore, Turn
from engine.steps import StepContext, StepResult
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps, RecordingAudit

SCREENS = Path(__file__).parent / "flows" / "screens.yaml"
DEMO_HOME = "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"
HOME = "Accueil\n1. Cartes\n2. Payer\n3. Virer\n4. Relevé\n5. Panne\n6. Mois"
PIN = "1234"


class ScreensSteps(CountingSteps):
    """The dialog steps of ``flows/screens.yaml``: a payment, a balance the back end may change
    between two sessions, a PIN check, and a step whose answer the flow does not expect."""

    def __init__(self) -> None:
        super().__init__()
        self.balance = "5000"
        self.payments = 0
        self.months = ["Janvier", "Février"]
        self._steps = {
            "screens.pay": self._pay,
            "screens.balance": lambda ctx: StepResult("ok", {"balance": self.balance}),
            "screens.check_pin": lambda ctx: StepResult("ok" if ctx.secrets.get("pin") == PIN else "wrong"),
            "screens.refused": lambda ctx: StepResult("refused"),
            "screens.months": lambda ctx: StepResult("ok", {"months": self.months}),
        }

    def _pay(self, ctx: StepContext) -> StepResult:
        if int(ctx.data["amount"]) > 4000:
            return StepResult("declined")
        self.payments += 1
        return StepResult("ok")

    def outcomes(self, name: str) -> frozenset[str]:
        return frozenset({"ok", "wrong", "refused", "declined"})



class EnglishHandset(Handset):
    """A handset whose gateway says the customer reads English."""

    def hop(self, text: str) -> Reply:
        segments = tuple(text.split("*")) if text else ()
        return self.engine.handle(Turn(self.channel, self.msisdn, f"{self.channel}:{self.session}",
                                       segments[-1] if segments else None, text, segments, language_hint="en"))


@pytest.fixture
def screens_steps() -> ScreensSteps:
    return ScreensSteps()


@pytest.fixture
def screens(store: SessionStore, screens_steps: ScreensSteps) -> Engine:
    return Engine(FlowSet(load_menus(SCREENS)), store, screens_steps, hop_key=b"test-key")


# ------------------------------------------------------------ a gateway retry


def test_a_gateway_retry_of_a_wrong_choice_shows_the_error_line_again(handset):
    phone = handset()
    phone.dial()
    first = phone.answer("9")
    assert first.text == "Choix invalide.\n" + DEMO_HOME
    retried = phone.hop("*".join(phone.inputs))   # the same hop again: the gateway did not get the answer
    assert retried.replayed
    assert retried.text == "Choix invalide.\n" + DEMO_HOME


def test_a_gateway_retry_of_a_right_choice_shows_no_error_line(handset):
    phone = handset()
    phone.dial()
    first = phone.answer("2")
    retried = phone.hop("*".join(phone.inputs))
    assert retried.replayed
    assert retried.text == first.text == "Montant (100 à 5000):\n0. Retour 00. Accueil"


# ------------------------------------------------------------ 98 and 99 on a prompt


@pytest.mark.parametrize("key", ["98", "99"])
def test_98_or_99_on_a_prompt_that_refuses_them_is_paging_not_a_wrong_entry(handset, key):
    phone = handset()
    phone.dial()
    asked = phone.answer("2")
    assert asked.text == "Montant (100 à 5000):\n0. Retour 00. Accueil"
    again = phone.answer(key)
    assert again.text == asked.text   # no "Saisie invalide.": the customer only tried to turn a page
    assert not again.end
    assert phone.answer("500").text == "PIN:\n0. Retour 00. Accueil"


@pytest.mark.parametrize("key", ["98", "99"])
def test_98_or_99_on_a_prompt_that_takes_them_is_the_answer(screens, key):
    phone = Handset(screens)
    assert phone.dial().text == HOME
    assert phone.answer("1").text.startswith("Nombre de cartes (1 à 99):")
    assert phone.answer(key).text.startswith(f"{key} cartes commandées.")


# ------------------------------------------------------------ Back and Home


def test_after_a_payment_back_leads_to_the_main_menu_not_to_the_amount_prompt(screens, screens_steps):
    phone = Handset(screens)
    phone.dial()
    phone.answer("2")
    paid = phone.answer("500")
    assert paid.text.startswith("Payé 500.")
    assert phone.answer("0").text == HOME
    assert screens_steps.payments == 1


def test_after_a_declined_payment_back_leads_to_the_amount_prompt_again(screens, screens_steps):
    phone = Handset(screens)
    phone.dial()
    phone.answer("2")
    assert phone.answer("4500").text.startswith("Paiement refusé.")
    assert phone.answer("0").text == "Montant:\n0. Retour 00. Accueil"
    assert screens_steps.payments == 0


def test_home_leads_to_the_main_menu_while_an_operator_has_the_state_machine_log_on(handset, caplog):
    caplog.set_level(logging.DEBUG, logger="transitions")
    phone = handset()
    phone.dial()
    phone.answer("1")
    assert phone.answer("00").text == DEMO_HOME


def test_a_vip_greeting_continued_to_the_main_menu_offers_no_back(store):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(vip=True))
    phone = Handset(engine)
    assert phone.dial().text.startswith("Bonjour cher Awa\n1. Continuer")
    home = phone.answer("1")
    # The main menu is the root: nothing to go back to, so no "0. Retour" (and 0 stays there).
    assert home.text == DEMO_HOME + "\n7. Secret"
    assert phone.answer("0").text == DEMO_HOME + "\n7. Secret"


def test_a_channel_that_lists_no_navigation_shows_no_back_or_home_but_takes_them(store):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    engine.declare(ChannelCapabilities("ussd", 182, "gsm7", 80, 4, show_navigation=False))
    phone = Handset(engine)
    phone.dial()
    assert phone.answer("2").text == "Montant (100 à 5000):"
    assert phone.answer("0").text == DEMO_HOME


def test_on_a_channel_that_lists_no_navigation_99_after_98_past_the_last_page_shows_the_page_before(store):
    # Eleven items take two pages without the Back/Home line, three with it.
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(items=11))
    engine.declare(ChannelCapabilities("ussd", 182, "gsm7", 80, 4, show_navigation=False))
    phone = Handset(engine)
    phone.dial()
    first = phone.answer("1")
    assert first.pages == 2 and first.text.endswith("6. Article 6 6 000 FCFA\n98. Suite")
    last = phone.answer("98")
    assert last.text.startswith("7. Article 7") and last.text.endswith("11. Article 11 11 000 FCFA\n99. Préc.")
    assert phone.answer("98").text == last.text
    assert phone.answer("99").text == first.text


def test_an_english_customer_reads_back_and_home_in_english(store):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    phone = EnglishHandset(engine)
    assert phone.dial().text == "Hello Awa\n1. List\n2. Amount\n3. Broken\n4. End"
    assert phone.answer("2").text == "Amount (100 to 5000):\n0. Back 00. Home"


def test_an_english_customers_last_screen_is_marked_english_for_the_channel(store):
    # The web page and the WhatsApp list read the screen's language to label what they add.
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    phone = EnglishHandset(engine)
    phone.dial()
    bye = phone.answer("4")
    assert bye.end and bye.text == "Goodbye."
    assert bye.screen is not None and bye.screen.language == "en"
    retried = phone.hop("*".join(phone.inputs))
    assert retried.replayed and retried.text == "Goodbye."
    assert retried.screen is not None and retried.screen.language == "en"


# ------------------------------------------------------------ inputs held until the main menu


def test_inputs_dialled_with_the_code_wait_past_every_screen_before_the_main_menu(screens):
    phone = Handset(screens, channel="onboard")
    assert phone.dial("1").text == "Conditions\n1. Accepter"
    # Accepting leads to a second screen before the main menu: the dialled 1 still waits.
    assert phone.answer("1").text == "Votre prénom:\n0. Retour 00. Accueil"
    assert phone.answer("Awa").text.startswith("Solde 5000")


def test_a_chat_keyword_sent_before_a_vip_greeting_opens_its_screen_once_the_main_menu_is_reached(store):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(vip=True))

    def send(text: str, message_id: str) -> Reply:
        return engine.handle(Turn("chat", "+221770000001", "chat:+221770000001", text, message_id,
                                  customer="+221770000001"))

    assert send("LISTE", "m1").text.startswith("Bonjour cher Awa\n1. Continuer")
    assert send("1", "m2").text.startswith("Choisissez:\n1. Article 1 1 000 FCFA")


# ------------------------------------------------------------ options hidden by their condition


def test_an_option_hidden_by_its_condition_hides_none_of_the_options_after_it(screens):
    phone = Handset(screens, channel="onboard")
    phone.dial()
    phone.answer("1")
    assert phone.answer("Awa").text == "Bienvenue Awa\n1. Solde\n3. Aide"
    assert phone.answer("3").text.startswith("Appelez le 800")


def test_a_list_of_plain_names_shows_each_name_as_a_choice(screens):
    phone = Handset(screens)
    phone.dial()
    assert phone.answer("6").text == "Quel mois ?\n1. Janvier\n2. Février\n0. Retour 00. Accueil"
    assert phone.answer("2").text.startswith("Relevé de Février")


def test_a_list_whose_back_end_answered_one_object_instead_of_a_list_shows_no_items(store):
    steps = CountingSteps()
    steps._steps["demo.items"] = lambda ctx: StepResult("ok", {"items": {"label": "Article 1", "amount": "1000"}})
    phone = Handset(Engine(FlowSet(load_menus(DEMO)), store, steps))
    phone.dial()
    assert phone.answer("1").text == "Choisissez:\n0. Retour 00. Accueil"


def test_the_option_shows_for_the_customer_its_condition_names(screens):
    phone = Handset(screens, channel="onboard")
    phone.dial()
    phone.answer("1")
    assert phone.answer("Chef").text == "Bienvenue Chef\n1. Solde\n2. Équipe\n3. Aide"


def test_a_session_started_before_a_menu_reload_keeps_its_options_conditions(store, tmp_path):
    flows = FlowSet(load_menus(DEMO))
    engine = Engine(flows, store, CountingSteps(vip=True))
    phone = Handset(engine)
    phone.dial()
    assert phone.answer("1").text == DEMO_HOME + "\n7. Secret"
    # The menus are reloaded: the secret option is now for everyone but VIPs.
    reloaded = tmp_path / "menus.yaml"
    reloaded.write_text(DEMO.read_text(encoding="utf-8").replace('when: "vip"', 'when: "not vip"'), encoding="utf-8")
    flows.load(load_menus(reloaded))
    # The session goes on in the menus it started with, until it ends.
    assert phone.answer("9").text == "Choix invalide.\n" + DEMO_HOME + "\n7. Secret"
    assert phone.answer("7").text.startswith("Réservé")
    assert Handset(engine, session="new").dial().text == "Bonjour Awa, etre à Thiès\n1. Liste\n2. Montant\n3. Panne\n4. Fin"


# ------------------------------------------------------------ pages and the gateway's prefix


def test_pages_leave_room_for_a_long_gateway_prefix(screens):
    phone = Handset(screens, channel="narrow")
    statement = Handset(screens, channel="narrow", session="s2")
    statement.dial()
    first = statement.answer("4")
    assert first.pages > 1
    assert all(len(page) + 120 <= 182 for page in [first.text, statement.answer("98").text])
    assert len(phone.dial().text) + 120 <= 182


@pytest.mark.parametrize(("length", "pages"), [(4096, 1), (4097, 2)])
def test_a_channel_nobody_declared_shows_up_to_4096_characters_a_page(screens, screens_steps, length, pages):
    # "Quel mois ?\n1. {a}\n2. {b}\n0. Retour 00. Accueil" is 41 characters and the two names.
    screens_steps.months = ["x" * 2028, "y" * (length - 41 - 2028)]
    phone = Handset(screens, channel="kiosk")
    phone.dial()
    shown = phone.answer("6")
    assert shown.pages == pages
    if pages == 1:
        assert len(shown.text) == length


def test_the_same_statement_fits_one_page_where_the_prefix_is_short(screens):
    phone = Handset(screens)
    phone.dial()
    statement = phone.answer("4")
    assert statement.pages == 1
    assert statement.text.startswith("Relevé du mois: 12 achats")


# ------------------------------------------------------------ the audit trail


def test_a_step_answer_the_flow_does_not_expect_ends_politely_and_the_audit_keeps_it(store):
    audit = RecordingAudit()
    engine = Engine(FlowSet(load_menus(SCREENS)), store, ScreensSteps(), audit=audit)
    phone = Handset(engine)
    phone.dial()
    ended = phone.answer("5")
    assert ended.end and ended.text == "Service indisponible."
    assert [(r.outcome, r.nodes[-1]) for r in audit.records] == [("refused", "broken")]


def test_three_wrong_choices_end_politely_and_the_audit_says_too_many_errors(store):
    audit = RecordingAudit()
    engine = Engine(FlowSet(load_menus(SCREENS)), store, ScreensSteps(), audit=audit)
    phone = Handset(engine)
    phone.dial()
    phone.answer("9")
    phone.answer("8")
    ended = phone.answer("7")
    assert ended.end and ended.text == "Trop d'erreurs."
    assert [r.outcome for r in audit.records] == ["too_many_errors"]


# ------------------------------------------------------------ resuming behind a PIN prompt


def test_a_transfer_resumed_behind_the_pin_prompt_reads_the_balance_again(screens, screens_steps):
    first = Handset(screens, session="first")
    first.dial()
    assert first.answer("3").text.startswith("PIN:")
    assert first.answer(PIN).text.startswith("Solde 5000. Virer ?")
    # The network drops the session; meanwhile the balance changes at the back end.
    screens_steps.balance = "1200"
    again = Handset(screens, session="again")
    assert again.dial().text.startswith("Reprendre ?")
    assert again.answer("1").text.startswith("PIN:")
    assert again.answer(PIN).text.startswith("Solde 1200. Virer ?")
