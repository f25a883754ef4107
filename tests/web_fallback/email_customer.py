"""Awa, a customer who confirmed her e-mail address and gets her bills by e-mail: what the unsubscribe
tests (Flask client and real browser) set up through the product's own stores and the back office."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from app.settings import Settings
from app.storage import SqlConsent, make_sessions
from app.storage.contacts import SqlContacts
from backoffice.notices import publish
from dialogs.codes import hash_code

__all__ = ["ADDRESS", "AWA", "BILL_FR", "confirm", "publish_bill", "subscribe_by_email"]

AWA = "+221770000001"
ADDRESS = "awa.diop@exemple.sn"
BILL_FR = "ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. Payez par *123#."


def confirm(settings: Settings, address: str = ADDRESS) -> None:
    """Awa proves the address with its code and makes e-mail her channel."""
    contacts = SqlContacts(make_sessions(settings.database_url))
    now = settings.clock()
    contacts.stage_email(AWA, address, hash_code("123456"), now + timedelta(minutes=30))
    assert contacts.confirm_email(AWA, "123456", now, via="ussd", source="menu") == "ok"
    contacts.set_channel(AWA, "email", via="ussd", source="menu")


def subscribe_by_email(settings: Settings) -> SqlConsent:
    """Awa by e-mail, subscribed to her bills; her consent history."""
    confirm(settings)
    consent = SqlConsent(make_sessions(settings.database_url))
    consent.opt_in(AWA, "bill_issued", "1000001", channel="ussd", source="menu")
    return consent


def publish_bill(backoffice_app: Flask, amount: str = "12500", due_date: str = "2026-12-15") -> None:
    """The billing system issues a bill for Awa's account (the back office's notice feed)."""
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        publish(session, "bill_issued", msisdn=AWA, account_number="1000001", amount=amount, due_date=due_date)
