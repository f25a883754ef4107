"""The scripted fakes speak the back office's contract: a canned reply off ``openapi.yaml`` is not served."""

from __future__ import annotations

import requests

from tests.support.contract import contract_problems
from tests.support.services import serve_wsgi

from .fakes import Reply, ScriptedBackend
from .test_failures import BALANCE, PAYMENT, TICKET

BALANCE_PATH = "/api/v1/accounts/1000001/balance"


def test_the_canned_bodies_of_the_client_tests_are_on_the_contract() -> None:
    assert contract_problems("GET", BALANCE_PATH, 200, BALANCE) == []
    assert contract_problems("POST", "/api/v1/payments", 202, PAYMENT) == []
    assert contract_problems("POST", "/api/v1/tickets", 201, TICKET) == []


def test_the_checker_names_what_breaks_the_contract() -> None:
    assert contract_problems("GET", BALANCE_PATH, 200, {**BALANCE, "amount": 12500}) == [
        "['amount']: 12500 is not of type \"string\""]
    assert contract_problems("GET", BALANCE_PATH, 404, {"error": "not_found"}) == [
        "[]: \"message\" is a required property"]
    assert contract_problems("GET", BALANCE_PATH, 418, {}) == [
        f"GET {BALANCE_PATH} does not document status 418"]
    assert contract_problems("GET", "/api/v1/nowhere", 200, {}) == ["GET /api/v1/nowhere is not in openapi.yaml"]


def test_a_fake_does_not_serve_an_answer_the_real_service_never_gives() -> None:
    backend = ScriptedBackend()
    with serve_wsgi(backend) as url:
        backend.reset(Reply(200, {**BALANCE, "amount": 12500}))
        refused = requests.get(url + BALANCE_PATH, timeout=5)
        assert refused.status_code == 500 and "off the contract" in refused.json()["message"]
        assert len(backend.violations) == 1
        backend.reset(Reply(200, {**BALANCE, "amount": 12500}, off_contract=True))   # said on purpose
        assert requests.get(url + BALANCE_PATH, timeout=5).json()["amount"] == 12500
        backend.reset(Reply(503))                                                    # a fault, not an answer
        assert requests.get(url + BALANCE_PATH, timeout=5).status_code == 503
        backend.assert_on_contract()
