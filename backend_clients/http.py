"""``HttpBackend``: the one way every client talks HTTP, and the one place errors are mapped.

What each call gets:

- a ``urllib3.PoolManager`` (kept-alive connections) with ``urllib3.util.Retry``: retries with a
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
      open circuit, or no try got a connection (never sent)      -> NotSent (a BackendUnavailable)
      404                                                        -> NotFound
      400, 413, 422                                              -> Rejected(reason = JSON "message")
      409                                                        -> Conflict

Only ``NotFound``/``Rejected``/``Conflict`` tell the breaker the back end is healthy: it answered.

Log lines name the client, the method and the path template with its values masked
(``GET /api/v1/accounts/1***001/balance``), never a query string, a body or a raw
urllib3 message (those embed the full URL). Raised errors carry the same masked text and
are not chained to the urllib3 exception, so a traceback logged upstream leaks nothing.
urllib3's own log lines (which hold the path) get a masking filter when this module is imported.

Why urllib3 itself and not ``requests`` on top of it: a call through ``requests.Session`` costs
1.6 ms of CPU on this project's 2-core machine against 0.55 ms through the pool (measured on
loopback, keep-alive, the same server), on the hop customers use most; nothing ``requests`` adds
(cookies, redirects, proxies from the environment, auth) is wanted against the utility's own systems.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from json import dumps
from typing import Any, ClassVar, Final, Self, TypeVar
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError
from urllib3.util.retry import Retry

from dialogs.backends import BackendError, BackendUnavailable, Conflict, NotFound, NotSent, Rejected

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
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_seconds, clock)
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if config.api_key:
            self._headers["X-Api-Key"] = config.api_key
        # Two pools because urllib3 decides retries by method only, not by header: the
        # second one is used just for calls that carry an idempotency key.
        self._pool = self._new_pool(IDEMPOTENT_METHODS)
        self._keyed_pool = self._new_pool(IDEMPOTENT_METHODS | {"POST"})

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._pool.clear()
        self._keyed_pool.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base_url!r}, breaker={self.breaker.state})"

    def _new_pool(self, retry_methods: frozenset[str]) -> urllib3.PoolManager:
        retry = _TracedRetry(
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
        # The back ends are the utility's own systems, reached directly (no proxy from the environment);
        # ten kept connections a host, as many as a worker's threads can use at once.
        timeout = urllib3.Timeout(connect=self.config.connect_timeout, read=self.config.read_timeout)
        return urllib3.PoolManager(num_pools=4, maxsize=10, retries=retry, timeout=timeout)

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
            raise NotSent(f"{where}: circuit open") from None
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
        headers = {**self._headers, "Idempotency-Key": idempotency_key} if idempotency_key else self._headers
        pool = self._keyed_pool if idempotency_key else self._pool
        url = f"{self._base_url}{self.api_prefix}{path}"
        if params:
            url += "?" + urlencode(params)
        body = None
        if json is not None:
            body = dumps(json, allow_nan=False).encode()
            headers = {**headers, "Content-Type": "application/json"}
        started = time.monotonic()
        try:
            response = pool.request(method, url, body=body, headers=headers, redirect=False)
        except (HTTPError, OSError) as exc:
            reason = _describe(exc)
            log.warning("%s: unavailable after %.2fs: %s", where, time.monotonic() - started, reason)
            unsent = getattr(exc, "never_sent", isinstance(exc, ConnectTimeoutError))
            raise (NotSent if unsent else BackendUnavailable)(f"{where}: {reason}") from None

        status = response.status
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
    def _parse(response: urllib3.BaseHTTPResponse, where: str, parse: Callable[[Any], T]) -> T:
        if response.status == 204 or not response.data:
            data: Any = None
        else:
            try:
                data = response.json()
            except ValueError:
                log.warning("%s: HTTP %d with a body that is not JSON (%s)", where, response.status,
                            response.headers.get("Content-Type", "no content type"))
                raise BackendUnavailable(f"{where}: response is not JSON") from None
        try:
            return parse(data)
        except (MalformedResponse, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            # Field names only: the values may be personal data.
            detail = str(exc) if isinstance(exc, MalformedResponse) else type(exc).__name__
            log.warning("%s: malformed response: %s", where, detail)
            raise BackendUnavailable(f"{where}: malformed response: {detail}") from None


class _TracedRetry(Retry):
    """urllib3's ``Retry`` whose final ``MaxRetryError`` says whether the request never left (``never_sent``:
    every try failed to connect). Only then is a payment surely not started: a try that timed out reading, or
    was answered 5xx, may have been taken by the provider."""

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Self:
        try:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exc:
            tries = [h.error for h in self.history] + [error]
            exc.never_sent = response is None and all(  # type: ignore[attr-defined]
                isinstance(e, ConnectTimeoutError) for e in tries)
            raise


def _describe(exc: BaseException) -> str:
    """``ReadTimeoutError``, ``NewConnectionError`` ...: the kind of failure without the URL in it."""
    # Retries spent end in a MaxRetryError, whose ``reason`` is the last underlying error.
    reason = getattr(exc, "reason", None)
    return type(reason if isinstance(reason, BaseException) else exc).__name__


def _error_body(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_message(response: urllib3.BaseHTTPResponse) -> str:
    """The human text of an API error body ``{"error": code, "message": text}``."""
    body = _error_body(response)
    message = body.get("message") or body.get("error") or ""
    return str(message)


def _error_code(response: urllib3.BaseHTTPResponse) -> str:
    return str(_error_body(response).get("error") or "no error code")
