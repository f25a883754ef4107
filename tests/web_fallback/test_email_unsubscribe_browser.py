"""The unsubscribe link of a real e-mail, followed in a real headless Chromium: the worker e-mails Awa her
bill through the fake SMTP server, she opens the link under the text, reads the page, stops bill e-mails;
the page says it is done and the next bill comes by SMS. A link cut short (as a mail client may wrap it) or
forged opens a page saying the link is not valid, not a 500, and stops nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from app import worker
from app.factory import create_app
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp
from tests.support.ports import release_port, reserve_port
from tests.support.services import serve_wsgi

from .email_customer import ADDRESS, AWA, BILL_FR, publish_bill, subscribe_by_email


@pytest.fixture
def base_url() -> Iterator[str]:
    """Where the product is served: its public URL too, so the e-mail's link leads to it (held from now)."""
    port = reserve_port()
    yield f"http://127.0.0.1:{port}"
    release_port(port)


@pytest.fixture
def mail_settings(web_settings: Settings, mail: FakeSmtp, base_url: str) -> Settings:
    return replace(web_settings, smtp_url=mail.url, public_base_url=base_url)


@pytest.fixture
def served(mail_settings: Settings, base_url: str) -> Iterator[Flask]:
    app = create_app(mail_settings)
    with serve_wsgi(app, int(base_url.rsplit(":", 1)[1])):
        yield app


def shown(page: Page) -> str:
    """The page's text as Awa reads it, one line per paragraph or button."""
    return "\n".join(line.strip() for line in page.locator("body").inner_text().splitlines() if line.strip())


def bill_email_link(settings: Settings, backoffice_app: Flask, mail: FakeSmtp) -> str:
    """Awa gets her bill by e-mail (the worker, the fake SMTP server); the unsubscribe link under its text."""
    subscribe_by_email(settings)
    publish_bill(backoffice_app)
    worker.run_once(settings)
    [body] = mail.messages_to(ADDRESS)
    assert body.startswith(BILL_FR)
    [link] = re.findall(r"https?://\S+/web/unsubscribe/\S+", body)
    return link


def test_awa_stops_bill_emails_from_the_link_in_her_email_and_the_next_bill_comes_by_sms(
        page: Page, served: Flask, mail_settings: Settings, mail: FakeSmtp, provider: FakeAfricasTalking,
        backoffice_app: Flask) -> None:
    page.goto(bill_email_link(mail_settings, backoffice_app, mail))
    expect(page).to_have_title("ElecNet - Espace client")
    assert shown(page) == ("ElecNet\nSe désabonner des e-mails\n"
                           "Ne plus recevoir les e-mails sur les nouvelles factures à l'adresse a***@exemple.sn ?\n"
                           "Les messages concernés vous parviendront par SMS.\n"
                           "Ne plus recevoir ces e-mails Ne plus recevoir aucun e-mail\n"
                           "Service client : 800 00 00")
    assert ADDRESS not in page.content()
    page.get_by_role("button", name="Ne plus recevoir ces e-mails").click()
    expect(page.get_by_role("status")).to_have_text(
        "C'est fait : vous ne recevrez plus les e-mails sur les nouvelles factures à l'adresse a***@exemple.sn.")
    expect(page.get_by_text("Pour en recevoir à nouveau, confirmez votre adresse")).to_be_visible()
    expect(page.get_by_role("button")).to_have_count(0)         # nothing left to press
    page.reload()                                                # the browser posts again: the same answer
    expect(page.get_by_role("status")).to_contain_text("C'est fait")

    publish_bill(backoffice_app, amount="9000", due_date="2027-01-15")
    worker.run_once(mail_settings)
    assert len(mail.messages_to(ADDRESS)) == 1                   # no second bill e-mail
    [sms] = provider.messages_to(AWA)
    assert sms.startswith("ElecNet: nouvelle facture pour le compte 1000001: 9 000 FCFA")


@pytest.mark.parametrize("spoil", [lambda link: link[:-6], lambda link: link.rsplit("/", 1)[0] + "/forged.AAAA"],
                         ids=["cut short", "forged"])
def test_a_broken_link_opens_a_page_saying_so_and_stops_nothing(
        page: Page, served: Flask, mail_settings: Settings, mail: FakeSmtp, provider: FakeAfricasTalking,
        backoffice_app: Flask, spoil: Callable[[str], str]) -> None:
    response = page.goto(spoil(bill_email_link(mail_settings, backoffice_app, mail)))
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Lien non valide")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "Ce lien de désabonnement n'est pas valide. Utilisez le lien complet de l'e-mail reçu.")
    publish_bill(backoffice_app, amount="9000", due_date="2027-01-15")
    worker.run_once(mail_settings)
    assert len(mail.messages_to(ADDRESS)) == 2 and provider.messages_to(AWA) == []   # still by e-mail
