"""The same service on PostgreSQL, inside a throw-away schema so other tests sharing the database are untouched."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import create_engine, text

from backoffice import BackofficeConfig, create_app
from tests.support.services import POSTGRES_TEST_URL, need_service, serve_wsgi

from .conftest import CallbackReceiver


@pytest.fixture
def postgres_config(backoffice_config: BackofficeConfig) -> Iterator[BackofficeConfig]:
    need_service("PostgreSQL", POSTGRES_TEST_URL, 5432)
    schema = f"bo_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_TEST_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_TEST_URL else "?"
    try:
        yield dataclasses.replace(backoffice_config,
                                  database_url=f"{POSTGRES_TEST_URL}{separator}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_the_service_runs_on_postgresql(postgres_config: BackofficeConfig, receiver: CallbackReceiver) -> None:
    app = create_app(postgres_config)
    create_app(postgres_config).extensions["backoffice"].close()  # seeding again adds nothing
    try:
        with serve_wsgi(app) as base, requests.Session() as http:
            api = base + "/api/v1"
            assert http.get(f"{api}/accounts/1000001/balance").json()["amount"] == "12500"
            assert len(http.get(f"{api}/accounts/2000002/bills").json()["bills"]) == 12
            assert len(http.get(f"{api}/customers/by-phone/+221770000002").json()["accounts"]) == 3

            body = {"account_number": "1000001", "msisdn": "+221770000001", "amount": "7000", "purpose": "bill",
                    "callback_url": receiver.url}
            payment = http.post(f"{api}/payments", json=body, headers={"Idempotency-Key": "pg-1"})
            assert payment.status_code == 202
            assert http.post(f"{api}/payments", json=body, headers={"Idempotency-Key": "pg-1"}).status_code == 200
            payment_id = payment.json()["payment_id"]
            assert http.post(f"{api}/payments/{payment_id}/approve").json()["status"] == "succeeded"
            assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 409
            assert json.loads(receiver.next().body)["payment_id"] == payment_id
            assert http.get(f"{api}/accounts/1000001/balance").json()["amount"] == "5500"

            latest = http.get(f"{api}/meters/MTR-1000001/readings/latest").json()
            report = http.post(f"{api}/readings", json={"readings": [
                latest, {**latest, "meter_id": "MTR-0"}]}).json()
            assert report == {"accepted": 0, "rejected": [{"index": 0, "reason": "duplicate"},
                                                          {"index": 1, "reason": "unknown_meter"}]}
            assert float(http.get(f"{api}/meters/MTR-1000001/consumption?days=7").json()["kwh"]) > 0

            ticket = {"kind": "outage", "category": "outage", "account_number": "2000002", "client_reference": "pg"}
            created = http.post(f"{api}/tickets", json=ticket)
            assert created.status_code == 201
            assert http.post(f"{api}/tickets", json=ticket).json() == created.json()
            assert len(http.get(f"{api}/outages?zone=THIES-NORD").json()["outages"]) == 1
    finally:
        app.extensions["backoffice"].close()
