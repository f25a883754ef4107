"""Unsubscribing from our e-mails: the worker sends a bill notice through a real SMTP server on loopback
with a one-click ``List-Unsubscribe`` link (RFC 8058) and the same link under the text, in the customer's
language; following it (the page, then the provider's one-click POST) stops the next bill e-mail, which
then comes by SMS; a forged or altered link is refused with a clear page; confirming the address again
brings e-mail back. Through the real worker, the real app and the fakes of the suite."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

import pytest
from flask import Flask

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import SqlConsent, make_sessions
from app.storage.models import SecurityEventRow
from backoffice.notices import publish
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp
from web_fallback.customer.unsubscribe_links import ALL_EMAIL, UnsubscribeLinks, derive_key, footer

from .email_customer import ADDRESS, AWA, BILL_FR, confirm, publish_bill, subscribe_by_email

BASE = "https://elecnet.example.org"



@pytest.fixture
def mail_settings(web_settings: Settings, provider: FakeAfricasTalking, mail: FakeSmtp) -> Settings:
    return replace(web_settings, smtp_url=mail.url, secret_key="test-secret-key-for-links", public_base_url=BASE,
                   quiet_hours="", at_username=provider.username)


@pytest.fixture
def mail_app(mail_settings: Settings) -> Flask:
    return create_app(mail_settings)


@pytest.fixture
def awa_by_email(mail_settings: Settings) -> SqlConsent:
    return subscribe_by_email(mail_settings)


def test_a_bill_email_carries_a_one_click_link_that_stops_the_next_one_which_comes_by_sms(
        mail_settings, mail_app, mail, provider, backoffice_app, awa_by_email):
    publish_bill(backoffice_app)
    worker.run_once(mail_settings)
    [(to, message)] = mail.received
    assert to == ADDRESS and provider.messages_to(AWA) == []
    [url] = re.findall(r"^<(.+)>$", message["List-Unsubscribe"])
    assert url.startswith(f"{BASE}/web/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = message.get_content()
    assert body.startswith(BILL_FR)
    assert f"Ne plus recevoir les e-mails sur les nouvelles factures (les SMS continuent) : {url}" in body

    client = mail_app.test_client()
    path = url.removeprefix(BASE)
    page = client.get(path)
    assert page.status_code == 200
    html = unescape(page.get_data(as_text=True))
    assert "Ne plus recevoir les e-mails sur les nouvelles factures à l'adresse a***@exemple.sn ?" in html
    assert ADDRESS not in html and "<script" not in html
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    # The mail provider's one-click POST: no cookie, no CSRF token, only the link.
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "vous ne recevrez plus les e-mails sur les nouvelles factures à l'adresse a***@exemple.sn" in unescape(done.get_data(as_text=True))
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200   # again: same answer

    with make_sessions(mail_settings.database_url)() as db:
        events = [e.kind for e in db.query(SecurityEventRow).all() if e.kind == "email_unsubscribed"]
    assert events == ["email_unsubscribed"]                                         # audited once
    history = [(c.action, c.topic, c.channel, c.source) for c in awa_by_email.history(AWA)]
    assert history[-1] == ("email_stop", "bill_issued", "email", "one-click")

    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        publish(session, "bill_issued", msisdn=AWA, account_number="1000001", amount="9000", due_date="2027-01-15")
    worker.run_once(mail_settings)
    assert len(mail.received) == 1                                                  # no second e-mail
    [sms] = provider.messages_to(AWA)
    assert sms.startswith("ElecNet: nouvelle facture pour le compte 1000001: 9 000 FCFA")


def test_stopping_all_email_from_the_page_then_confirming_the_address_again_brings_email_back(
        mail_settings, mail_app, mail, provider, backoffice_app, awa_by_email):
    publish_bill(backoffice_app)
    worker.run_once(mail_settings)
    [(_, message)] = mail.received
    path = re.findall(r"^<(.+)>$", message["List-Unsubscribe"])[0].removeprefix(BASE)
    client = mail_app.test_client()
    html = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    [everything] = re.findall(r'action="(/web/unsubscribe/[^"]+)"', html)[1:]
    assert client.post(everything, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert awa_by_email.history(AWA)[-1].topic == "all"
    # A PIN notice (transactional): not by e-mail any more, by SMS.
    deps = mail_app.extensions["parts"]["deps"]
    deps.outbox.add(kind="pin_changed", msisdn=AWA, language="fr", payload={}, dedupe_key="pin:1")
    worker.run_once(mail_settings)
    assert len(mail.received) == 1 and provider.messages_to(AWA)[-1].startswith("ElecNet: votre code PIN a été modifié")
    confirm(mail_settings)                       # proved again: the customer wants e-mail again
    deps.outbox.add(kind="pin_changed", msisdn=AWA, language="fr", payload={}, dedupe_key="pin:2")
    worker.run_once(mail_settings)
    assert len(mail.received) == 2 and mail.received[-1][0] == ADDRESS


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_forged_or_altered_link_gets_a_clear_page_and_stops_nothing(
        method, mail_settings, mail_app, mail, provider, backoffice_app, awa_by_email):
    publish_bill(backoffice_app)
    worker.run_once(mail_settings)
    [(_, message)] = mail.received
    path = re.findall(r"^<(.+)>$", message["List-Unsubscribe"])[0].removeprefix(BASE)
    body, _, signature = path.removeprefix("/web/unsubscribe/").partition(".")
    other = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    client = mail_app.test_client()
    for forged in (f"{other}.{signature}", f"{body}.{'A' * len(signature)}", "x", "a" * 700, f"{body}.{signature}%00"):
        answer = client.open(f"/web/unsubscribe/{forged}", method=method, data={"List-Unsubscribe": "One-Click"},
                             headers={"Accept-Language": "en"})
        assert answer.status_code == 404, forged
        assert "This unsubscribe link is not valid." in unescape(answer.get_data(as_text=True))
        assert answer.headers["Content-Type"].startswith("text/html")
    publish_bill_again = backoffice_app.extensions["backoffice"].sessions
    with publish_bill_again() as session, session.begin():
        publish(session, "bill_issued", msisdn=AWA, account_number="1000001", amount="9000", due_date="2027-01-15")
    worker.run_once(mail_settings)
    assert len(mail.received) == 2 and provider.messages_to(AWA) == []          # e-mail still goes


def test_clicks_are_throttled_per_client_address(mail_app):
    client = mail_app.test_client()
    answers = [client.post("/web/unsubscribe/not-a-token.AAAAAAAAAAAAAAAAAAAAAA").status_code for _ in range(31)]
    assert answers[:30] == [404] * 30 and answers[30] == 429


@pytest.mark.parametrize(("language", "footer_line", "question", "answer"), [
    ("fr", "Ne plus recevoir aucun de nos e-mails (les SMS continuent) : ",
     "Ne plus recevoir aucun de nos e-mails à l'adresse a***@exemple.sn ?",
     "C'est fait : vous ne recevrez plus aucun de nos e-mails à l'adresse a***@exemple.sn."),
    ("en", "To stop all our e-mails (SMS still come): ",
     "Stop all our e-mails to a***@exemple.sn?",
     "Done: all our e-mails to a***@exemple.sn are stopped."),
])
def test_a_receipts_link_stops_all_email_and_says_so_in_plain_words(mail_settings, mail_app, language, footer_line,
                                                                     question, answer):
    # A receipt (transactional) carries the "all e-mail" link: its line, page and answer read as sentences,
    # not "d'e-mails sur tous nos e-mails".
    links = UnsubscribeLinks(derive_key(mail_settings.secret_key), BASE)
    url = links.url(ADDRESS, ALL_EMAIL, language)
    assert footer(language, ALL_EMAIL, url) == footer_line + url
    client = mail_app.test_client()
    path = url.removeprefix(BASE)
    assert question in unescape(client.get(path).get_data(as_text=True))
    assert answer in unescape(client.post(path, data={"List-Unsubscribe": "One-Click"}).get_data(as_text=True))
