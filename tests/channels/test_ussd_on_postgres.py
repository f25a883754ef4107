"""The product's database on PostgreSQL (as in production), migrated by Alembic: a customer links an
account, sets a PIN and changes the language; everything is kept in PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import create_engine, text

from app.factory import create_app
from app.storage import migrate

from ..support.engine import UssdPhone


def test_linking_pin_and_language_on_postgres(settings, postgres_url):
    migrate(postgres_url)
    app = create_app(replace(settings, database_url=postgres_url))
    client = app.test_client()
    p = UssdPhone(client, "+221770005555")
    p.dial()
    p.answer("1")
    p.answer("1000001")
    assert p.answer("5500").startswith("CON Un code a été envoyé par SMS au numéro du titulaire du compte")
    [sent] = [e for e in app.extensions["parts"]["deps"].outbox.pending() if e["kind"] == "link_code"]
    assert p.answer(sent["payload"]["code"]).startswith("CON Compte 1000001 lié à votre numéro.")
    p.answer("1")
    p.answer("8")
    p.answer("1")
    assert p.answer("2").startswith("CON Language saved: English.")
    q = UssdPhone(client, "+221770005555")
    assert q.dial().startswith("CON ElecNet - 1000001\n1. Balance and bills")
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        links = conn.execute(text("select account_number, source from account_links where msisdn = :m"),
                             {"m": "+221770005555"}).all()
        language = conn.execute(text("select language from preferences where msisdn = :m"),
                                {"m": "+221770005555"}).scalar_one()
    engine.dispose()
    assert links == [("1000001", "self-service")] and language == "en"
