"""The USSD callback under bad input and failures: clear CON/END answers, never a trace or a 500."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from app.factory import create_app
from app.settings import Settings
from app.storage.models import SessionAuditRow

from ..support.ports import closed_port

FORM = {"sessionId": "ATUid_abc", "serviceCode": "*123#", "phoneNumber": "+221770000001", "text": "",
        "networkCode": "99999"}


POLITE_END = ("END Désolé, nous n'avons pas pu lire votre demande. Merci de recomposer le code. / "
              "Sorry, we could not read your request. Please dial the code again.")


def _urlencoded(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


# The gateway shows a network error for anything but 200 + CON/END: every row gets the polite END.
# (what the row tries, the body: form fields or raw bytes, its content type: None for a form)
HOSTILE_HOPS: list[tuple[str, dict[str, str] | bytes, str | None]] = [
    ("no fields at all", {}, None),
    ("no sessionId", {k: v for k, v in FORM.items() if k != "sessionId"}, None),
    ("no phoneNumber", {k: v for k, v in FORM.items() if k != "phoneNumber"}, None),
    ("no text", {k: v for k, v in FORM.items() if k != "text"}, None),
    ("empty sessionId", {**FORM, "sessionId": ""}, None),
    ("sessionId of 300 characters", {**FORM, "sessionId": "x" * 300}, None),
    ("markup in sessionId", {**FORM, "sessionId": "a b<script>"}, None),
    ("NUL byte in sessionId", {**FORM, "sessionId": "ATUid\x00x"}, None),
    ("phoneNumber not a number", {**FORM, "phoneNumber": "not-a-number"}, None),
    ("phoneNumber too short", {**FORM, "phoneNumber": "+1"}, None),
    ("SQL in serviceCode", {**FORM, "serviceCode": "DROP TABLE"}, None),
    ("NUL byte in text", {**FORM, "text": "1\x00"}, None),
    ("newline in text", {**FORM, "text": "1\n2"}, None),
    ("right-to-left override in text", {**FORM, "text": "\u202e1"}, None),
    ("10 KB of text", {**FORM, "text": "1" * 10_240}, None),
    ("*-bomb", {**FORM, "text": "*" * 3_000}, None),
    ("invalid UTF-8 in text", _urlencoded(FORM)[:-len("&networkCode=99999")].replace(b"text=", b"text=%FF%FE1")
     + b"&networkCode=99999", "application/x-www-form-urlencoded"),
    ("invalid UTF-8 in phoneNumber", b"sessionId=ATUid_abc&serviceCode=%2A123%23&phoneNumber=%FF%2B221770000001&text=",
     "application/x-www-form-urlencoded"),
    ("JSON body", json.dumps(FORM).encode(), "application/json"),
    ("broken JSON body", b"{]", "application/json"),
    ("form sent as text/plain", _urlencoded(FORM), "text/plain"),
    ("binary body", bytes(range(256)) * 8, "application/octet-stream"),
    ("body over the size limit", _urlencoded({**FORM, "pad": "x" * 40_000}), "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("body", "content_type"), [row[1:] for row in HOSTILE_HOPS],
                         ids=[row[0] for row in HOSTILE_HOPS])
def test_hostile_hop_gets_200_and_a_polite_end_in_both_languages(app, body, content_type):
    client = app.test_client()
    if content_type is None:
        response = client.post("/ussd/africastalking", data=body)
    else:
        response = client.post("/ussd/africastalking", data=body, content_type=content_type)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == POLITE_END


def test_the_reason_of_a_refused_hop_is_logged_masked(app, caplog):
    with caplog.at_level(logging.INFO, logger="channels.ussd"):
        app.test_client().post("/ussd/africastalking", data={**FORM, "text": "1\x00"})
    assert "rejected USSD callback: text holds characters no handset sends user=+2217*****001" in caplog.text
    assert "770000001" not in caplog.text


def test_wrong_method_keeps_405_with_allow(app):
    wrong = app.test_client().get("/ussd/africastalking")
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["Allow"]
    assert wrong.get_data(as_text=True) == POLITE_END


def test_handset_text_with_apostrophes_accents_and_punctuation_reaches_the_engine(phone):
    p = phone("+221770000001")
    p.dial()
    # Read as an answer (not one of the menu's choices), not refused by the adapter.
    assert p.answer("l'été!").startswith("CON Choix invalide.")
    assert p.last_status == 200
    assert p.answer("1, 2 ; ça va ? (oui)").startswith("CON Choix invalide.")


def test_a_long_session_history_is_accepted(phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("1")
    assert p.answer("1").startswith("CON Factures (choisissez):")
    for _ in range(80):  # paging back and forth: 160 more inputs in ``text``
        assert "99. Préc." in p.answer("98")
        assert p.answer("99").startswith("CON Factures (choisissez):")
    assert len("*".join(p.inputs)) > 400
    assert p.answer("0").startswith("CON Compte 1000001")


def test_national_format_phone_number_is_normalised(app):
    response = app.test_client().post("/ussd/africastalking", data={**FORM, "phoneNumber": "77 000 00 01"})
    assert response.get_data(as_text=True).startswith("CON ElecNet - 1000001")


def test_redis_unreachable_gives_a_polite_end_in_200(engine_db, backoffice_url, caplog):
    settings = Settings(database_url=engine_db, redis_url=f"redis://127.0.0.1:{closed_port()}/0",
                        backoffice_url=backoffice_url)
    app = create_app(settings)
    with caplog.at_level(logging.INFO):
        response = app.test_client().post("/ussd/africastalking", data=FORM)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == ("END Service momentanément indisponible. Merci de réessayer "
                                               "plus tard.")
    assert "+221770000001" not in caplog.text
    assert "+2217*****001" in caplog.text


def test_back_office_unreachable_gives_a_polite_end(engine_db, redis_url, caplog):
    settings = Settings(database_url=engine_db, redis_url=redis_url,
                        backoffice_url=f"http://127.0.0.1:{closed_port()}", backend_connect_timeout=0.2,
                        backend_read_timeout=0.5)
    app = create_app(settings)
    with caplog.at_level(logging.INFO):
        response = app.test_client().post("/ussd/africastalking", data=FORM)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == ("END Nos systèmes sont indisponibles. Merci de réessayer dans "
                                               "quelques minutes.")
    assert "+221770000001" not in caplog.text


def test_end_of_session_notification_completes_the_audit_record_idempotently(app, phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("1")
    events = {"sessionId": p.session_id, "serviceCode": "*123#", "networkCode": "99999",
              "phoneNumber": "+221770000001", "status": "Incomplete", "cost": "KES 0.00",
              "durationInMillis": "15000", "hopsCount": "2", "input": "1", "lastAppResponse": "CON ...",
              "errorMessage": "", "date": "2026-11-25 10:00:00"}
    client = app.test_client()
    for _ in range(3):  # the gateway retries
        response = client.post("/ussd/africastalking/events", data=events)
        assert response.status_code == 200
    sessions = app.extensions["parts"]["db"]
    with sessions() as db:
        rows = db.scalars(select(SessionAuditRow)).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.gateway_status == "Incomplete" and row.gateway_duration_ms == 15000
    assert row.user_masked == "+2217*****001"
    bad = client.post("/ussd/africastalking/events", data={**events, "status": "Exploded"})
    assert bad.status_code == 400
    # What the gateway reports goes to the audit row on one line, bounded.
    forged = client.post("/ussd/africastalking/events", data={
        **events, "status": "Failed", "errorMessage": "timeout\r\nFAKE LOG LINE\x00" + "x" * 5_000})
    assert forged.status_code == 200
    with sessions() as db:
        row = db.scalars(select(SessionAuditRow)).one()
    assert row.gateway_error is not None and row.gateway_error.startswith("timeout FAKE LOG LINE x")
    assert len(row.gateway_error) == 200 and "\n" not in row.gateway_error and "\x00" not in row.gateway_error


def test_finished_session_is_audited_with_its_path(app, phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("x")
    p.answer("x")
    assert p.answer("x").startswith("END Trop d'erreurs")
    with app.extensions["parts"]["db"]() as db:
        row = db.scalars(select(SessionAuditRow)).one()
    assert row.outcome == "too_many_errors" and row.nodes.startswith("identify main_menu")
    assert row.channel == "ussd" and row.hops == 4


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="0123456789*#", max_size=12), min_size=1, max_size=6))
def test_random_inputs_never_overflow_a_screen_nor_fail(app: Flask, inputs: list[str]) -> None:
    client = app.test_client()
    session = f"hyp{abs(hash(tuple(inputs)))}"
    history: list[str] = []
    for value in inputs:
        text = "*".join(history)
        response = client.post("/ussd/africastalking", data={**FORM, "sessionId": session, "text": text})
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        assert body.startswith(("CON ", "END "))
        assert len(body) <= 182
        if body.startswith("END"):
            break
        history.append(value)


def test_redial_after_a_drop_offers_to_continue(settings):
    from dataclasses import replace

    from ..support.engine import UssdPhone

    app = create_app(replace(settings, resume_window_seconds=120))
    client = app.test_client()
    first = UssdPhone(client, "+221770000001")
    first.dial()
    first.answer("3")
    assert first.answer("2").startswith("CON A payer: 12 500 FCFA\nMontant à régler (FCFA):")
    again = UssdPhone(client, "+221770000001")
    assert again.dial() == "CON Reprendre votre paiement ?\n1. Oui\n2. Non"
    assert again.answer("1").startswith("CON A payer: 12 500 FCFA\nMontant à régler (FCFA):")
    assert again.answer("0").startswith("CON Payer - compte 1000001\nA payer: 12 500 FCFA")


def test_hops_of_one_session_alternate_between_two_app_instances(settings):
    from ..support.engine import UssdPhone

    one, two = create_app(settings).test_client(), create_app(settings).test_client()
    phone = UssdPhone(one, "+221770000001")
    phone.dial()
    phone.client = two
    assert phone.answer("1").startswith("CON Compte 1000001\nA payer: 12 500 FCFA")
    phone.client = one
    assert phone.answer("1").startswith("CON Factures (choisissez):")
    phone.client = two
    assert "99. Préc." in phone.answer("98")
    phone.client = one
    assert phone.answer("0").startswith("CON Compte 1000001")


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_any_text_a_hop_can_carry_gets_200_and_a_screen(app, inputs):
    client = app.test_client()
    session = f"any{abs(hash(tuple(inputs)))}"
    for depth in range(len(inputs) + 1):
        text = "*".join(inputs[:depth])
        response = client.post("/ussd/africastalking", data={**FORM, "sessionId": session, "text": text})
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        assert body.startswith(("CON ", "END ")) and len(body) <= 182
        if body.startswith("END"):
            break
