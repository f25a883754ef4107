"""The USSD callback under bad input and failures: clear CON/END answers, never a trace or a 500."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from app.factory import create_app
from app.settings import Settings
from app.storage.models import SessionAuditRow

from ..support.services import free_port

FORM = {"sessionId": "ATUid_abc", "serviceCode": "*123#", "phoneNumber": "+221770000001", "text": "",
        "networkCode": "99999"}


@pytest.mark.parametrize(("field", "value"), [
    ("sessionId", ""), ("sessionId", "x" * 300), ("sessionId", "a b<script>"),
    ("phoneNumber", ""), ("phoneNumber", "not-a-number"), ("phoneNumber", "+1"),
    ("serviceCode", ""), ("serviceCode", "DROP TABLE"), ("text", "1" * 1000), ("text", "<b>"),
])
def test_malformed_fields_get_a_400_with_an_end_message(app, field, value):
    response = app.test_client().post("/ussd/africastalking", data={**FORM, field: value})
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "END Requête invalide. / Invalid request."


def test_missing_fields_oversized_body_and_wrong_method(app):
    client = app.test_client()
    missing = client.post("/ussd/africastalking", data={"sessionId": "x"})
    assert missing.status_code == 400 and missing.get_data(as_text=True).startswith("END ")
    huge = client.post("/ussd/africastalking", data={**FORM, "pad": "x" * 40_000})
    assert huge.status_code == 413 and huge.get_data(as_text=True).startswith("END ")
    wrong = client.get("/ussd/africastalking")
    assert wrong.status_code == 405 and wrong.get_data(as_text=True).startswith("END ")
    json_body = client.post("/ussd/africastalking", data="{]", content_type="application/json")
    assert json_body.status_code == 400 and json_body.get_data(as_text=True).startswith("END ")


def test_national_format_phone_number_is_normalised(app):
    response = app.test_client().post("/ussd/africastalking", data={**FORM, "phoneNumber": "77 000 00 01"})
    assert response.get_data(as_text=True).startswith("CON ElecNet - 1000001")


def test_redis_unreachable_gives_a_polite_end_in_200(engine_db, backoffice_url, caplog):
    settings = Settings(database_url=engine_db, redis_url=f"redis://127.0.0.1:{free_port()}/0",
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
                        backoffice_url=f"http://127.0.0.1:{free_port()}", backend_connect_timeout=0.2,
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


def test_finished_session_is_audited_with_its_path(app, phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("x")
    p.answer("x")
    assert p.answer("x").startswith("END Trop d'erreurs")
    with app.extensions["parts"]["db"]() as db:
        row = db.scalars(select(SessionAuditRow)).one()
    assert row.outcome == "too_many_errors" and row.nodes.startswith("identify home")
    assert row.channel == "ussd" and row.hops == 4


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="0123456789*#", max_size=12), min_size=1, max_size=6))
def test_random_inputs_never_overflow_a_screen_nor_fail(app, inputs):
    client = app.test_client()
    session = f"hyp{abs(hash(tuple(inputs)))}"
    history: list[str] = []
    for value in inputs:
        text = "*".join(history)
        response = client.post("/ussd/africastalking", data={**FORM, "sessionId": session, "text": text})
        body = response.get_data(as_text=True)
        assert response.status_code in (200, 400)
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
    first.answer("1")
    assert first.answer("1").startswith("CON Factures (choisissez):")
    again = UssdPhone(client, "+221770000001")
    assert again.dial() == "CON Reprendre où vous étiez ?\n1. Oui\n2. Non"
    assert again.answer("1").startswith("CON Factures (choisissez):\n1. novembre 2026 5 500 FCFA")
    assert again.answer("0").startswith("CON Compte 1000001\nA payer: 12 500 FCFA")


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
