"""How a session is kept between hops: every field comes back as it was saved, a replayed hop on
a later page gets that page again, and a redial is pointed only at a session it could resume."""

from __future__ import annotations

import pytest

from engine import Engine, FlowSet, Session, SessionStore
from engine.session import UnreadableSession
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps


def _every_field_set(key: str = "ussd:ATUid_1", customer: str | None = "+221770000009") -> Session:
    return Session(key=key, channel="ussd", user_id="+221770000001", flow="main", version="1-abc", node="pin",
                   language="en", created_at=1_795_706_905.123, updated_at=1_795_706_960.5,
                   data={"amount": "1500", "accounts": [{"account_number": "1000001"}], "prepaid": False},
                   history=["home", "pay"], back_pages={"home": 1}, visited=["greet", "home", "pay", "pin"], retries=2, page=1, hops=4,
                   ended=True, outcome="paid", resume_from="ussd:old", gate="pay", proofs=["pin_ok"],
                   pending=["1", "2"], pending_node="list", customer=customer, last_hop_id="ab" * 16,
                   last_reply={"s": {"n": "pin", "b": ["PIN:"]}, "p": 1})


@pytest.mark.parametrize("customer", ["+221770000009", "+221770000001", None],
                         ids=["another-customer", "the-address", "nobody-yet"])
def test_every_saved_field_comes_back(customer):
    saved = _every_field_set(customer=customer)
    assert Session.decode(saved.encode(), saved.key) == saved


def test_a_session_at_its_defaults_comes_back_with_fresh_lists():
    saved = Session("whatsapp:+221770000001", "whatsapp", "+221770000001", "main", "1", "home", "fr", 1.0, 1.0)
    one, two = (Session.decode(saved.encode(), saved.key) for _ in range(2))
    assert one == saved
    one.history.append("home")
    assert two.history == []            # nothing shared between two loads


def test_a_channel_the_key_does_not_name_is_kept():
    saved = _every_field_set(key="custom-key")
    assert Session.decode(saved.encode(), "custom-key").channel == "ussd"


@pytest.mark.parametrize("raw", [b"", b"{}", b'{"key": "ussd:s1"}', b"\x81\xa1_\x02", b"\xc1"])
def test_what_is_not_a_session_of_this_format_is_refused(raw):
    with pytest.raises(UnreadableSession):
        Session.decode(raw, "ussd:s1")


def test_a_replayed_hop_on_a_later_page_gets_that_page_again(store: SessionStore):
    steps = CountingSteps()
    phone = Handset(Engine(FlowSet(load_menus(DEMO)), store, steps, hop_key=b"k"))
    phone.dial()
    phone.answer("1")
    second = phone.answer("98")
    assert second.page == 1 and second.pages >= 3
    again = phone.hop("*".join(phone.inputs))          # the gateway sends the same request again
    assert again.replayed
    assert (again.text, again.page, again.pages, again.end) == (second.text, 1, second.pages, False)
    assert again.screen == second.screen


def test_a_redial_is_pointed_only_at_a_session_it_could_resume(store: SessionStore):
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), hop_key=b"k")
    phone = Handset(engine)
    phone.dial()
    assert store.latest("ussd", phone.msisdn) is None  # on the main menu: nothing to resume
    assert phone.answer("2").text.startswith("Montant")
    assert store.latest("ussd", phone.msisdn) == "ussd:s1"   # an amount asked: resumable
    phone.answer("0")
    assert store.latest("ussd", phone.msisdn) is None


def test_menus_reloaded_with_new_paging_words_show_them_on_the_next_hop(store: SessionStore, tmp_path):
    flows = FlowSet(load_menus(DEMO))
    engine = Engine(flows, store, CountingSteps(), hop_key=b"k")
    phone = Handset(engine)
    phone.dial()
    assert "98. Suite" in phone.answer("1").text       # a list laid out once, kept laid out
    edited = tmp_path / "demo.yaml"
    edited.write_text(DEMO.read_text(encoding="utf-8").replace("more: {fr: Suite,", "more: {fr: Plus,"),
                      encoding="utf-8")
    flows.load(load_menus(edited))
    other = Handset(engine, session="s2")
    other.dial()
    assert "98. Plus" in other.answer("1").text
