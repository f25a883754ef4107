"""Failure behaviour of the shared HTTP layer against small scripted servers on loopback.

Retries only where repeating is harmless, timeouts, unreachable ports, garbage answers, the
status -> error mapping, the circuit breaker, and logs free of personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from backend_clients import BillingClient, ClientConfig, IncidentClient, MeteringClient, PaymentClient
from dialogs.backends import BackendUnavailable, Conflict, NotFound, NotSent, Rejected
from tests.support.ports import closed_port
from tests.support.services import serve_wsgi

from .fakes import Reply, ScriptedBackend


@dataclass
class Seconds:
    """The breaker's monotonic clock, moved by the test: no sleeping, no race with a loaded machine."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

BALANCE = {"account_number": "1000001", "amount": "12500", "currency": "XOF", "unpaid_bills": 2,
           "oldest_due_on": "2026-11-04"}
ARRANGEMENT = {"arrangement_id": "ARR-1", "account_number": "1000001", "kind": "deferral", "created_on": "2026-11-20",
               "status": "active", "months": 1, "schedule": [{"due_on": "2026-12-20", "amount": "12500"}]}
PAYMENT = {"payment_id": "PAY-1", "status": "pending", "amount": "5500", "currency": "XOF", "purpose": "bill",
           "account_number": "1000001", "reference": None, "token": None, "failure_reason": None}
TICKET = {"reference": "INC-7K3Q", "kind": "outage", "category": "outage", "status": "open",
          "account_number": "1000001", "created_at": "2026-11-25T08:00:00Z", "history": []}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedBackend, str]]:
    backend = ScriptedBackend()
    with serve_wsgi(backend) as url:
        yield backend, url


@pytest.fixture
def backend(server: tuple[ScriptedBackend, str]) -> Iterator[ScriptedBackend]:
    server[0].reset()
    yield server[0]
    server[0].assert_on_contract()


def config(server: tuple[ScriptedBackend, str], **overrides: object) -> ClientConfig:
    """Small timeouts and no backoff: the behaviour is the same, the tests are fast."""
    settings: dict[str, object] = {"connect_timeout": 0.5, "read_timeout": 0.5, "retries": 2, "backoff_factor": 0.0}
    settings.update(overrides)
    return ClientConfig(server[1], **settings)  # type: ignore[arg-type]


# ---------------------------------------------------------------- retries
def test_get_is_retried_on_503_and_succeeds(backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(503), Reply(503), Reply(200, BALANCE))
    with BillingClient(config(server, retries=2)) as billing:
        assert billing.balance("1000001").amount == Decimal(12500)
    assert len(backend.hits) == 3
    assert {h.path for h in backend.hits} == {"/api/v1/accounts/1000001/balance"}


def test_get_gives_up_after_the_configured_retries(backend: ScriptedBackend,
                                                   server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(503))
    with BillingClient(config(server, retries=1)) as billing, pytest.raises(BackendUnavailable):
        billing.balance("1000001")
    assert len(backend.hits) == 2


def test_post_without_idempotency_key_is_not_retried(backend: ScriptedBackend,
                                                     server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(503), Reply(200, {"verified": True}))
    with BillingClient(config(server, retries=2)) as billing, pytest.raises(BackendUnavailable):
        billing.verify_last_bill("1000001", Decimal(5500))
    assert len(backend.hits) == 1
    assert "Idempotency-Key" not in backend.hits[0].headers


def test_post_with_idempotency_key_is_retried_with_the_same_key(backend: ScriptedBackend,
                                                                server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(503), Reply(202, PAYMENT))
    with PaymentClient(config(server)) as payments:
        intent = payments.initiate(account_number="1000001", msisdn="+221770000001", amount=Decimal(5500),
                                   purpose="bill", idempotency_key="key-1", callback_url="http://127.0.0.1:9/cb")
    assert intent.payment_id == "PAY-1"
    assert [h.headers.get("Idempotency-Key") for h in backend.hits] == ["key-1", "key-1"]
    assert backend.hits[0].body == backend.hits[1].body
    assert b'"amount": "5500"' in backend.hits[0].body          # a decimal string, not a float


def test_ticket_creation_is_retried_because_it_is_idempotent_by_client_reference(
        backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(502), Reply(201, TICKET))
    with IncidentClient(config(server)) as incidents:
        ticket = incidents.open_ticket(kind="outage", category="outage", account_number="1000001",
                                       msisdn="+221770000001", description="dark", client_reference="ref-1")
    assert ticket.reference == "INC-7K3Q"
    assert len(backend.hits) == 2


# ---------------------------------------------------------------- unreachable, slow, garbage
def test_an_answer_slower_than_the_read_timeout_is_given_up_on(backend: ScriptedBackend,
                                                                server: tuple[ScriptedBackend, str]) -> None:
    # The balance does come, 1.5 s later: a client that waited for it would return it, not raise.
    backend.reset(Reply(200, BALANCE, delay=1.5))
    with BillingClient(config(server, read_timeout=0.2, retries=0)) as billing, pytest.raises(BackendUnavailable):
        billing.balance("1000001")
    assert len(backend.hits) == 1


def test_closed_port_is_unavailable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"     # nothing listens there
    with (BillingClient(ClientConfig(url, connect_timeout=0.5, retries=1, backoff_factor=0.0)) as billing,
          pytest.raises(BackendUnavailable)):
        billing.balance("1000001")


def _start_payment(payments: PaymentClient) -> None:
    payments.initiate(account_number="1000001", msisdn="+221770000001", amount=Decimal(5500), purpose="bill",
                      idempotency_key="key-1", callback_url="http://127.0.0.1:9/cb")


def test_a_payment_no_try_could_send_is_known_not_sent() -> None:
    # Nothing listens: no try got a connection, so the provider cannot have started it.
    url = f"http://127.0.0.1:{closed_port()}"
    with (PaymentClient(ClientConfig(url, connect_timeout=0.5, retries=2, backoff_factor=0.0)) as payments,
          pytest.raises(NotSent, match="NewConnectionError")):
        _start_payment(payments)


@pytest.mark.parametrize("replies", [(Reply(202, PAYMENT, delay=1.5),), (Reply(503),), (Reply(502), Reply(504))])
def test_a_payment_sent_but_not_answered_may_have_started(backend: ScriptedBackend,
                                                          server: tuple[ScriptedBackend, str],
                                                          replies: tuple[Reply, ...]) -> None:
    backend.reset(*replies)
    with (PaymentClient(config(server, read_timeout=0.2, retries=len(replies) - 1)) as payments,
          pytest.raises(BackendUnavailable) as raised):
        _start_payment(payments)
    assert not isinstance(raised.value, NotSent) and len(backend.hits) == len(replies)


def test_non_json_200_is_unavailable(backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(200, "<html>maintenance</html>", content_type="text/html", off_contract=True))
    with BillingClient(config(server)) as billing, pytest.raises(BackendUnavailable, match="not JSON"):
        billing.balance("1000001")
    assert len(backend.hits) == 1               # a 200 is an answer: no retry


def test_json_of_the_wrong_shape_is_unavailable(backend: ScriptedBackend,
                                                server: tuple[ScriptedBackend, str]) -> None:
    for body in ({**BALANCE, "amount": "lots"}, {"account_number": "1000001"}, ["not", "an", "object"],
                 {**BALANCE, "oldest_due_on": "yesterday"}):
        backend.reset(Reply(200, body, off_contract=True))
        with BillingClient(config(server)) as billing, pytest.raises(BackendUnavailable, match="malformed"):
            billing.balance("1000001")


def test_204_latest_reading_is_none(backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(204))
    with MeteringClient(config(server)) as metering:
        assert metering.last_reading("MTR-1000001") is None


# ---------------------------------------------------------------- status mapping
@pytest.mark.parametrize(("status", "error"), [
    (404, NotFound), (400, Rejected), (422, Rejected), (409, Conflict),
    (500, BackendUnavailable), (503, BackendUnavailable), (401, BackendUnavailable), (429, BackendUnavailable),
])
def test_status_is_mapped_to_the_typed_error(backend: ScriptedBackend, server: tuple[ScriptedBackend, str],
                                             status: int, error: type[Exception]) -> None:
    backend.reset(Reply(status, {"error": "some_code", "message": "months must be between 1 and 6"}))
    with BillingClient(config(server, retries=0)) as billing, pytest.raises(error) as caught:
        billing.balance("1000001")
    if isinstance(caught.value, Rejected):
        assert caught.value.reason == "months must be between 1 and 6"


def test_unknown_phone_number_is_an_empty_list(backend: ScriptedBackend,
                                               server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(404, {"error": "not_found", "message": "unknown number"}))
    with BillingClient(config(server)) as billing:
        assert billing.accounts_for_phone("+221779999999") == []
    assert backend.hits[0].path == "/api/v1/customers/by-phone/+221779999999"


# ---------------------------------------------------------------- circuit breaker
def test_circuit_opens_after_n_failures_then_fails_without_calling(
        backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(503))
    clock = Seconds()
    with BillingClient(config(server, retries=0, breaker_failures=3, breaker_reset_seconds=30), clock=clock) as billing:
        for _ in range(3):
            with pytest.raises(BackendUnavailable, match="HTTP 503"):
                billing.balance("1000001")
        assert len(backend.hits) == 3 and str(billing.breaker.state) == "open"

        clock.now += 29.9                                   # open for 30 s: still refusing
        for _ in range(5):
            with pytest.raises(NotSent, match="circuit open"):
                billing.balance("1000001")
        assert len(backend.hits) == 3                       # the server was not called again

        # After the reset time one trial call goes through; the back end is back, the circuit closes.
        backend.reset(Reply(200, BALANCE))
        clock.now += 0.1
        assert billing.balance("1000001").amount == Decimal(12500)
        assert str(billing.breaker.state) == "closed" and len(backend.hits) == 1


def test_failed_trial_reopens_the_circuit(backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(500))
    clock = Seconds()
    with BillingClient(config(server, retries=0, breaker_failures=1, breaker_reset_seconds=30), clock=clock) as billing:
        with pytest.raises(BackendUnavailable):
            billing.balance("1000001")
        clock.now += 30
        with pytest.raises(BackendUnavailable, match="HTTP 500"):   # the trial
            billing.balance("1000001")
        clock.now += 29.9                                            # open again, for another 30 s
        with pytest.raises(BackendUnavailable, match="circuit open"):
            billing.balance("1000001")
    assert len(backend.hits) == 2


def test_answers_that_are_errors_of_the_caller_do_not_open_the_circuit(
        backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(404, {"error": "not_found", "message": "no such account"}))
    with BillingClient(config(server, breaker_failures=2)) as billing:
        for _ in range(5):
            with pytest.raises(NotFound):
                billing.balance("9999999")
    assert len(backend.hits) == 5


def test_clients_have_a_breaker_each(backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(503))
    cfg = config(server, retries=0, breaker_failures=1)
    with BillingClient(cfg) as billing, MeteringClient(cfg) as metering:
        with pytest.raises(BackendUnavailable):
            billing.balance("1000001")
        with pytest.raises(BackendUnavailable, match="HTTP 503"):   # not "circuit open": its own breaker
            metering.prepaid_credit("MTR-3000001")


# ---------------------------------------------------------------- headers and logs
def test_api_key_header_only_when_configured(backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(200, BALANCE))
    with BillingClient(config(server, api_key="s3cret")) as billing:
        billing.balance("1000001")
    with BillingClient(config(server)) as billing:
        billing.balance("1000001")
    assert backend.hits[0].headers.get("X-Api-Key") == "s3cret"
    assert "X-Api-Key" not in backend.hits[1].headers


def test_logs_and_errors_carry_no_phone_or_account_number(
        backend: ScriptedBackend, server: tuple[ScriptedBackend, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    backend.reset(Reply(503))
    errors: list[Exception] = []
    with BillingClient(config(server, retries=1, breaker_failures=2)) as billing:
        for call, value in ((billing.balance, "1000001"), (billing.accounts_for_phone, "+221770000001"),
                            (billing.bills, "1000001")):
            with pytest.raises(BackendUnavailable) as caught:
                call(value)
            errors.append(caught.value)
    # A refused connection is retried by urllib3, which logs a WARNING with the request path.
    closed = f"http://127.0.0.1:{closed_port()}"
    with (BillingClient(ClientConfig(closed, retries=1, backoff_factor=0.0)) as billing,
          pytest.raises(BackendUnavailable) as caught):
        billing.balance("1000001")
    errors.append(caught.value)

    # The scripted server's own access log (werkzeug) is the test's, not the product's.
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    assert any(r.name.startswith("urllib3") and r.levelno == logging.WARNING for r in ours)
    text = "\n".join(r.getMessage() for r in ours) + "\n".join(str(e) for e in errors)
    assert "1***001" in text and "+2217*****001" in text      # enough to correlate
    assert "1000001" not in text and "770000001" not in text
    assert "circuit opened" in text
    # Not chained to the requests exception, whose text holds the full URL.
    assert all(e.__cause__ is None and (e.__context__ is None or e.__suppress_context__) for e in errors)


def test_the_balance_and_its_arrangements_cost_one_request(backend: ScriptedBackend,
                                                          server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(200, {**BALANCE, "arrangements": [ARRANGEMENT]}))
    with BillingClient(config(server)) as billing:
        found, arrangements = billing.balance_and_arrangements("1000001")
    assert found.amount == Decimal(12500) and [a.arrangement_id for a in arrangements] == ["ARR-1"]
    assert [(h.path, h.query) for h in backend.hits] == [("/api/v1/accounts/1000001/balance", "include=arrangements")]


def test_a_billing_system_that_ignores_include_is_asked_for_the_arrangements_too(
        backend: ScriptedBackend, server: tuple[ScriptedBackend, str]) -> None:
    backend.reset(Reply(200, BALANCE), Reply(200, {"arrangements": [ARRANGEMENT]}))
    with BillingClient(config(server)) as billing:
        found, arrangements = billing.balance_and_arrangements("1000001")
    assert found.amount == Decimal(12500) and [a.arrangement_id for a in arrangements] == ["ARR-1"]
    assert [h.path for h in backend.hits] == ["/api/v1/accounts/1000001/balance",
                                              "/api/v1/accounts/1000001/arrangements"]
