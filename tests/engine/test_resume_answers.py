"""The answers at the "Resume?" offer (yes, no, anything else, too many mistakes) and the polite closing
screens, in the customer's language."""

from __future__ import annotations

from pathlib import Path

from engine import Engine, EngineLimits, FlowSet, Reply, SessionStore, Turn
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps, RecordingAudit
from .resume_steps import ResumeSteps

FLOW = Path(__file__).parent / "flows" / "resume.yaml"
HOME = "Accueil\n1. Horaires\n2. Commander\n3. Commander 1\n4. Changer le secret\n5. Panne\n6. Virement"
OFFER = "Reprendre ?\n1. Oui\n2. Non"


class EnglishHandset(Handset):
    def hop(self, text: str) -> Reply:
        segments = tuple(text.split("*")) if text else ()
        return self.engine.handle(Turn(self.channel, self.msisdn, f"{self.channel}:{self.session}",
                                       segments[-1] if segments else None, text, segments, language_hint="en"))


def _dropped(engine: Engine, phone: type[Handset] = Handset) -> None:
    first = phone(engine, session="first")
    first.dial()
    first.answer("2")          # a quantity is asked: mid-task, offered back on a redial


def test_no_at_the_offer_starts_afresh_and_two_mistakes_are_forgiven_a_third_ends(store: SessionStore):
    engine = Engine(FlowSet(load_menus(FLOW)), store, ResumeSteps(), hop_key=b"k")
    _dropped(engine)
    again = Handset(engine, session="again")
    assert again.dial().text == OFFER
    for _ in range(2):
        wrong = again.answer("9")
        assert wrong.text == "Choix invalide.\n" + OFFER and not wrong.end
    ended = again.answer("9")
    assert (ended.text, ended.end) == ("Trop d'erreurs.", True)
    _dropped(engine)
    fresh = Handset(engine, session="fresh")
    assert fresh.dial().text == OFFER
    assert fresh.answer("2").text == HOME
    assert fresh.answer("2").text.startswith("Quantité:")


def test_the_offer_and_its_error_line_are_in_the_customers_language(store: SessionStore):
    audit = RecordingAudit()
    engine = Engine(FlowSet(load_menus(FLOW)), store, ResumeSteps(), hop_key=b"k", audit=audit)
    _dropped(engine, EnglishHandset)
    again = EnglishHandset(engine, session="again")
    offer = again.dial()
    assert offer.text.startswith("Resume?") and offer.screen is not None and offer.screen.language == "en"
    assert again.answer("7").text.startswith("Invalid choice.\nResume?")
    for _ in range(2):
        last = again.answer("7")
    assert (last.text, last.end) == ("Too many errors.", True)
    assert [r.outcome for r in audit.records] == ["too_many_errors"]   # as the agents' session audit shows it


def test_the_busy_answer_is_in_the_customers_language_and_ends_the_hop(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), limits=EngineLimits(lock_wait_seconds=0.05),
                    hop_key=b"k")
    with store.lock("ussd:s1"):
        reply = EnglishHandset(engine).dial()
    assert (reply.text, reply.end) == ("Busy.", True)
    assert reply.screen is not None and reply.screen.end and reply.screen.language == "en"
    assert reply.screen.blocks == ("Busy.",)


def test_mistakes_are_told_in_english_and_the_third_ends_the_session_for_good(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=b"k")
    phone = EnglishHandset(engine)
    assert phone.dial().text.startswith("Hello Awa\n1. List")
    assert phone.answer("2").text.startswith("Amount (100 to 5000):")
    assert phone.answer("50").text.startswith("Invalid entry.\nAmount (100 to 5000):")
    assert phone.answer("x").text.startswith("Invalid entry.\nAmount")
    ended = phone.answer("y")
    assert (ended.text, ended.end) == ("Too many errors. Goodbye.", True)
    assert ended.screen is not None and ended.screen.language == "en" and ended.screen.node == "ask_amount"
    # The session is over: the same session key starts afresh instead of asking the amount again.
    assert EnglishHandset(engine).dial().text.startswith("Hello Awa\n1. List")


def test_an_input_with_its_own_error_text_shows_it_filled(store: SessionStore, tmp_path):
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8").replace(
        "        validator: {type: amount, min: 100, max: 5000}\n",
        "        validator: {type: amount, min: 100, max: 5000}\n"
        "        error: {fr: \"{name}, de 100 à 5000.\", en: \"{name}, 100 to 5000.\"}\n"), encoding="utf-8")
    engine = Engine(FlowSet(load_menus(path)), store, CountingSteps(), hop_key=b"k")
    phone = Handset(engine)
    phone.dial()
    phone.answer("2")
    assert phone.answer("50").text.startswith("Awa, de 100 à 5000.\nMontant (100 à 5000):")


def test_a_shortcut_of_several_keys_dialled_with_the_code_jumps_to_its_screen(store: SessionStore, tmp_path):
    path = tmp_path / "menus.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8").replace('shortcut: "5"', 'shortcut: "9*5"'), encoding="utf-8")
    engine = Engine(FlowSet(load_menus(path)), store, CountingSteps(), hop_key=b"k")
    assert Handset(engine).dial("9", "5").text == "Choisissez:\n0. Retour 00. Accueil"


def test_yes_to_resume_a_screen_the_new_menus_removed_starts_afresh(store: SessionStore, tmp_path):
    path = tmp_path / "menus.yaml"
    path.write_text(FLOW.read_text(encoding="utf-8").replace("order_qty", "quantity"), encoding="utf-8")
    before = Engine(FlowSet(load_menus(FLOW)), store, ResumeSteps(), hop_key=b"k")
    after = Engine(FlowSet(load_menus(path)), store, ResumeSteps(), hop_key=b"k")
    _dropped(before)
    again = Handset(before, session="again")
    assert again.dial().text == OFFER
    again.engine = after                 # the answer reaches a worker with the new menus
    assert again.answer("1").text == HOME


def test_a_replayed_final_hop_still_ends_the_session(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=b"k")
    phone = Handset(engine)
    phone.dial()
    first = phone.answer("4")
    replayed = phone.hop("4")            # the gateway retries the same hop
    assert (replayed.text, replayed.end, replayed.replayed) == (first.text, True, True)
