"""Malformed input gets a JSON 4xx, never an HTML page or a trace."""

from __future__ import annotations

import requests

from backoffice import BackofficeConfig, create_app
from tests.support.services import serve_wsgi

PAYMENT: dict[str, object] = {"account_number": "1000001", "msisdn": "+221770000001", "amount": "1000", "purpose": "bill"}


def _is_json_error(answer: requests.Response, status: int) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    body: dict[str, str] = answer.json()
    assert set(body) == {"error", "message"}
    assert "Traceback" not in body["message"]
    return body


def test_malformed_json(api: str, http: requests.Session) -> None:
    answer = http.post(f"{api}/tickets", data=b"{not json", headers={"Content-Type": "application/json"})
    assert _is_json_error(answer, 400)["error"] == "bad_json"
    assert _is_json_error(http.post(f"{api}/tickets", json=[1, 2]), 400)["error"] == "bad_json"
    assert _is_json_error(http.post(f"{api}/outages"), 400)["error"] == "bad_json"


BAD_PAYMENT_FIELDS: list[dict[str, object]] = [
    {"amount": 12.5}, {"amount": "abc"}, {"amount": "-5"}, {"amount": True}, {"amount": "10.5"},
    {"amount": None}, {"msisdn": 221770000001}, {"msisdn": "hello"}, {"purpose": "gift"},
    {"account_number": ["1000001"]}, {"callback_url": "ftp://x"},
]


def test_wrong_types_in_a_payment(api: str, http: requests.Session) -> None:
    for number, change in enumerate(BAD_PAYMENT_FIELDS):
        answer = http.post(f"{api}/payments", json={**PAYMENT, **change}, headers={"Idempotency-Key": f"bad-{number}"})
        assert _is_json_error(answer, 422)["error"] == "invalid", change
    assert http.get(f"{api}/accounts/1000001/balance").json()["amount"] == "12500"


def test_missing_idempotency_key(api: str, http: requests.Session) -> None:
    answer = http.post(f"{api}/payments", json=PAYMENT)
    assert _is_json_error(answer, 400)["error"] == "idempotency_key_required"


def test_oversized_body(api: str, http: requests.Session) -> None:
    answer = http.post(f"{api}/readings", data=b"x" * (3 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert _is_json_error(answer, 413)["error"] == "too_large"


def test_unknown_path_and_wrong_method(backoffice_url: str, http: requests.Session) -> None:
    _is_json_error(http.get(backoffice_url + "/nowhere"), 404)
    _is_json_error(http.get(backoffice_url + "/"), 404)
    _is_json_error(http.delete(backoffice_url + "/api/v1/accounts/1000001"), 405)


def test_bad_query_parameter(api: str, http: requests.Session) -> None:
    _is_json_error(http.get(f"{api}/accounts/1000001/bills?limit=many"), 422)
    _is_json_error(http.get(f"{api}/meters/MTR-1000001/consumption?days=0"), 422)


def test_unexpected_failure_is_a_json_500_without_trace(backoffice_config: BackofficeConfig,
                                                        http: requests.Session) -> None:
    app = create_app(backoffice_config)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    try:
        with serve_wsgi(app) as base:
            answer = http.get(base + "/boom")
    finally:
        app.extensions["backoffice"].close()
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal", "message": "internal error"}
