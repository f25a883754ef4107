"""``HttpBackend``: the one way every client talks HTTP, and the one place errors are mapped.

What each call gets:

- a ``requests.Session`` (kept-alive connections) with ``urllib3.util.Retry``: retries with a
  short backoff on connection errors, read timeouts and 429/5xx, but only where repeating is
  harmless: GET/HEAD, and POST when the call carries an idempotency key (payment initiation,
  arrangements, ticket creation), because the back end then answers a repeat with the first
  result. A POST without a key is retried only when the connection could not even be opened;
- connect and read timeouts (``ClientConfig``);
- ``X-Api-Key`` when a key is configured;
- a circuit breaker per client: after ``breaker_failures`` consecutive unavailable answers
  every call fails at once with ``BackendUnavailable`` for ``breaker_reset_seconds``, so that
  a dead back end costs USSD users one short error screen rather than a gateway timeout;
- the mapping to the typed errors of ``dialogs.backends``::

      connection error, timeout, 5xx, 401/403/429, open circuit,
      unparseable or malformed JSON                              -> BackendUnavailable
      404                                                        -> NotFound
      400, 413, 422                                              -> Rejected(reason = JSON "message")
      409                                                        -> Conflict

Only ``NotFound``/``Rejected``/``Conflict`` tell the breaker the back end is healthy: it answered.

Log lines name the client, the method and the path template with its values masked
(``GET /api/v1/accounts/1***001/balance``), never a query string, a body or a raw
``requests`` message (those embed the full URL). Raised errors carry the same masked text and
are not chained to the ``requests`` exception, so a traceback logged upstream leaks nothing.
urllib3's own log lines (which hold the path) get a masking filter when this module is imported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Self, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dialogs.backends import BackendError, BackendUnavailable, Conflict, NotFound, Rejected

from .breaker import OPEN, CircuitBreaker, CircuitOpen
from .config import ClientConfig
from .masking import install_urllib3_masking, mask
from .parsing import MalformedResponse

__all__ = ["HttpBackend"]

log = logging.getLogger(__name__)
install_urllib3_masking()

T = TypeVar("T")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD"})
# Statuses worth a second try: the server is overloaded or restarting, not refusing the request.
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
USER_AGENT: Final = "ussd-session-engine/0.1 (+backend_clients)"


class HttpBackend:
    """Base of the clients: subclasses call ``_call`` with a path template and a parser.

    ``template`` holds ``{}`` for each path value; values are percent-encoded into the URL
    and masked in logs::

        self._call("GET", "/accounts/{}/balance", account_number, parse=parse_balance)

    ``parse`` receives the decoded JSON body (``None`` for a 204) and returns the dataclass;
    a ``MalformedResponse`` (or ``KeyError``/``TypeError``/``ValueError``) it raises becomes
    ``BackendUnavailable``. Safe to share between threads: the session's connection pool and
    the breaker are thread-safe, and nothing else is mutated after construction.
    """

    name: ClassVar[str] = "backend"         # for log lines: "billing", "payment" ...
    api_prefix: ClassVar[str] = "/api/v1"

    def __init__(self, config: ClientConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` (seconds, monotonic) times how long the breaker stays open."""
        self.config = config
        self._base_url = config.base_url.rstrip("/")
        self._timeout = (config.connect_timeout, config.read_timeout)
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_seconds, clock)
        # Two sessions because urllib3 decides retries by method only, not by header: the
        # second one is used just for calls that carry an idempotency key.
        self._session = self._new_session(IDEMPOTENT_METHODS)
        self._keyed_session = self._new_session(IDEMPOTENT_METHODS | {"POST"})

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._session.close()
        self._keyed_session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base_url!r}, breaker={self.breaker.state})"

    def _new_session(self, retry_methods: frozenset[str]) -> requests.Session:
        retry = Retry(
            total=self.config.retries,
            connect=self.config.retries,
            read=self.config.retries,
            status=self.config.retries,
            other=0,                          # unknown failures: the request may have been processed
            redirect=0,
            allowed_methods=retry_methods,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.config.backoff_factor,
            backoff_max=2.0,
            # A USSD hop cannot wait for "Retry-After: 60"; the breaker handles long outages.
            respect_retry_after_header=False,
            # Give us the last response instead of raising, so its status is mapped below.
            raise_on_status=False,
        )
        session = requests.Session()
        # The back ends are the utility's own systems, reached directly: reading proxy settings
        # from the environment on every call costs ~0.3 ms per hop for nothing.
        session.trust_env = False
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        if self.config.api_key:
            session.headers["X-Api-Key"] = self.config.api_key
        return session

    # ------------------------------------------------------------ the call
    def _call(self, method: str, template: str, *values: str, parse: Callable[[Any], T],
              params: Mapping[str, str | int] | None = None, json: Mapping[str, Any] | None = None,
              idempotency_key: str | None = None) -> T:
        """One logical call: breaker check, request with retries, status mapping, parsing."""
        where = f"{self.name} {method} {self.api_prefix}{template.format(*(mask(v) for v in values))}"
        try:
            trial = self.breaker.before_call()
        except CircuitOpen as exc:
            log.info("%s: circuit open, not called (next trial in %.1fs)", where, exc.retry_in)
            raise BackendUnavailable(f"{where}: circuit open") from None
        ok = False
        try:
            result = self._exchange(method, where, template, values, parse=parse, params=params,
                                    json=json, idempotency_key=idempotency_key)
            ok = True
            return result
        except BackendUnavailable:
            raise
        except BackendError:
            ok = True                         # it answered: NotFound / Rejected / Conflict
            raise
        finally:
            self._record(ok, trial, where)

    def _record(self, ok: bool, trial: bool, where: str) -> None:
        was_open = self.breaker.state == OPEN
        self.breaker.record(ok=ok, trial=trial)
        if not was_open and self.breaker.state == OPEN:
            log.error("%s: circuit opened after %d consecutive failures; failing fast for %ss",
                      where, self.breaker.consecutive_failures, self.config.breaker_reset_seconds)
        elif trial and ok:
            log.warning("%s: back end answered again, circuit closed", where)

    def _exchange(self, method: str, where: str, template: str, values: tuple[str, ...], *,
                  parse: Callable[[Any], T], params: Mapping[str, str | int] | None,
                  json: Mapping[str, Any] | None, idempotency_key: str | None) -> T:
        # safe="+": an E.164 number stays readable in the path ("+" is a valid path character).
        path = template.format(*(quote(v, safe="+") for v in values))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        session = self._keyed_session if idempotency_key else self._session
        started = time.monotonic()
        try:
            response = session.request(method, f"{self._base_url}{self.api_prefix}{path}", params=params,
                                       json=json, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            reason = _describe(exc)
            log.warning("%s: unavailable after %.2fs: %s", where, time.monotonic() - started, reason)
            raise BackendUnavailable(f"{where}: {reason}") from None

        status = response.status_code
        if 200 <= status < 300:
            return self._parse(response, where, parse)
        message = _error_message(response)
        if status == 404:
            log.debug("%s: not found", where)
            raise NotFound(f"{where}: not found")
        if status in (400, 413, 422):
            log.info("%s: rejected (%d %s)", where, status, _error_code(response))
            raise Rejected(message, code=_error_code(response))
        if status == 409:
            log.info("%s: conflict (%s)", where, _error_code(response))
            raise Conflict(message or f"{where}: conflict")
        if status in (401, 403):
            # Not the customer's fault and not fixable by retrying: the deployment is misconfigured.
            log.error("%s: HTTP %d, check the client's api_key", where, status)
        else:
            log.warning("%s: unavailable: HTTP %d after %.2fs", where, status, time.monotonic() - started)
        raise BackendUnavailable(f"{where}: HTTP {status}")

    @staticmethod
    def _parse(response: requests.Response, where: str, parse: Callable[[Any], T]) -> T:
        if response.status_code == 204 or not response.content:
            data: Any = None
        else:
            try:
                data = response.json()
            except ValueError:
                log.warning("%s: HTTP %d with a body that is not JSON (%s)", where, response.status_code,
                            response.headers.get("Content-Type", "no content type"))
                raise BackendUnavailable(f"{where}: response is not JSON") from None
        try:
            return parse(data)
        except (MalformedResponse, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            # Field names only: the values may be personal data.
            detail = str(exc) if isinstance(exc, MalformedResponse) else type(exc).__name__
            log.warning("%s: malformed response: %s", where, detail)
            raise BackendUnavailable(f"{where}: malformed response: {detail}") from None


def _describe(exc: requests.RequestException) -> str:
    """``ReadTimeoutError``, ``NewConnectionError`` ...: the kind of failure without the URL in it."""
    cause: BaseException = exc
    # requests wraps urllib3's MaxRetryError, whose ``reason`` is the last underlying error.
    if exc.args and isinstance(exc.args[0], BaseException):
        cause = exc.args[0]
    reason = getattr(cause, "reason", None)
    if isinstance(reason, BaseException):
        cause = reason
    return type(cause).__name__ if cause is not exc else type(exc).__name__


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_message(response: requests.Response) -> str:
    """The human text of an API error body ``{"error": code, "message": text}``."""
    body = _error_body(response)
    message = body.get("message") or body.get("error") or ""
    return str(message)


def _error_code(response: requests.Response) -> str:
    return str(_error_body(response).get("error") or "no error code")
