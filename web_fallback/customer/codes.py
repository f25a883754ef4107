"""What the web sign-in keeps on the server: one-time codes and the one open visit per number.

A code is six digits, kept only as a salted hash, for a few minutes and a few wrong tries. A visit
is the random id a signed-in cookie carries: it is open on the server until sign-out, idle expiry
or a newer sign-in of the same number, so a copied cookie dies with the visit.

``SignInStore`` is the port; the app wires the Redis one (``app.storage.sign_in_codes``), shared
by every worker, and this module's ``MemorySignInStore`` serves the embedded default.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.one_time_codes import code_matches, hash_code, new_code

__all__ = ["MemorySignInStore", "SignInStore", "StoredCode", "code_matches", "hash_code", "new_code"]


@dataclass(frozen=True, slots=True)
class StoredCode:
    digest: str      # ``hash_code`` of the code, never the code
    tries: int       # wrong codes typed so far


class SignInStore(Protocol):
    """Where a number's pending code and open visit are kept. Raises whatever its storage raises
    (the caller answers the customer politely)."""

    def put(self, msisdn: str, digest: str, ttl_seconds: int) -> None:
        """Keep ``digest`` as the number's only code for ``ttl_seconds`` (any earlier one is gone)."""

    def get(self, msisdn: str) -> StoredCode | None:
        """The number's live code, or ``None`` (never asked, expired, used or given up)."""

    def count_wrong(self, msisdn: str) -> int:
        """One more wrong try of the live code; the count so far (0 when there is no live code)."""

    def drop(self, msisdn: str) -> None:
        """Forget the number's code (used, or too many wrong tries)."""

    def open_visit(self, msisdn: str, visit: str, idle_seconds: int) -> None:
        """``visit`` is now the number's one signed-in visit (any other is closed)."""

    def touch_visit(self, msisdn: str, visit: str, idle_seconds: int) -> bool:
        """Whether ``visit`` is the number's open visit; if so it stays open ``idle_seconds`` more."""

    def close_visit(self, msisdn: str, visit: str) -> None:
        """Close ``visit`` if it is the number's open one (sign-out)."""


class MemorySignInStore:
    """``SignInStore`` in this process (one worker; the embedded default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._codes: dict[str, tuple[float, StoredCode]] = {}
        self._visits: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def put(self, msisdn: str, digest: str, ttl_seconds: int) -> None:
        with self._lock:
            self._codes[msisdn] = (self._clock() + ttl_seconds, StoredCode(digest, 0))

    def _live(self, msisdn: str) -> tuple[float, StoredCode] | None:
        found = self._codes.get(msisdn)
        if found is not None and found[0] <= self._clock():
            del self._codes[msisdn]
            return None
        return found

    def get(self, msisdn: str) -> StoredCode | None:
        with self._lock:
            found = self._live(msisdn)
            return found[1] if found else None

    def count_wrong(self, msisdn: str) -> int:
        with self._lock:
            found = self._live(msisdn)
            if found is None:
                return 0
            expires, code = found
            self._codes[msisdn] = (expires, StoredCode(code.digest, code.tries + 1))
            return code.tries + 1

    def drop(self, msisdn: str) -> None:
        with self._lock:
            self._codes.pop(msisdn, None)

    def open_visit(self, msisdn: str, visit: str, idle_seconds: int) -> None:
        with self._lock:
            self._visits[msisdn] = (self._clock() + idle_seconds, visit)

    def touch_visit(self, msisdn: str, visit: str, idle_seconds: int) -> bool:
        with self._lock:
            found = self._visits.get(msisdn)
            if found is None or found[0] <= self._clock() or not hmac.compare_digest(found[1], visit):
                return False
            self._visits[msisdn] = (self._clock() + idle_seconds, visit)
            return True

    def close_visit(self, msisdn: str, visit: str) -> None:
        with self._lock:
            found = self._visits.get(msisdn)
            if found is not None and hmac.compare_digest(found[1], visit):
                del self._visits[msisdn]
