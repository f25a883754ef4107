"""Signing in on the web with the phone number and a one-time code sent to it by SMS.

The code goes out through the product's outbox (the worker's dispatcher sends it, kind
``web_code``), so a provider outage delays it instead of losing it. Only its salted hash is kept,
for ``code_ttl_seconds``, and it dies after ``max_wrong_per_code`` wrong tries. Asking for codes and
typing them are throttled per number (one limit for every door that sends codes: the web's, the chat's) and
per client address (each door its own; an IPv6 one by its /64), and the codes sent to everyone not yet
identified are a budget a minute and an hour (``code_budget``: SMS pumping asks codes for many numbers
from many addresses). Every number gets the same answer (a code is sent to whoever holds it, as a USSD
dial would identify them), so the page tells nobody whether a number is a customer. Every step is a
security event under a pseudonymous subject; a refusal by the limits per number or per address is one
once per key and window (``engine.audit_once``: hammering one number does not fill the audit), and every
refusal is counted (``throttled``, the metric).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from engine import SecurityAudit, SecurityEvent
from engine.audit_once import WindowCounter, record_once

from .code_budget import CodeBudget
from .codes import SignInStore, code_matches, hash_code, new_code

__all__ = ["Outbox", "SignIn", "SignInRules", "Throttle", "legacy_number_key", "number_key", "requester_of"]

CHANNEL = "web"
# What the audit and the metric call the two throttled attempts.
_ATTEMPT: Final = {"send": "request", "check": "check"}


def requester_of(address: str) -> str:
    """The key an address is counted under: an IPv6 address by its /64, the network one subscriber is given
    (its host half is theirs to vary: 2**64 "addresses" per line); an IPv4 address, or anything else (the
    chat's conversation key), as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


class Throttle(WindowCounter, Protocol):
    """The product's fixed-window counter: attempts per key (``hit``), the note of a refusal's window, and what
    a key counted so far (``count``, counting nothing)."""

    def count(self, key: str) -> int:
        """What ``key`` counted in its current window (0 once it ended), counting nothing."""


def number_key(what: str, msisdn: str) -> str:
    """The key a number's attempts (``send``, ``check``) are counted under, whichever door asks."""
    return f"signin:{what}:number:{msisdn}"


def legacy_number_key(what: str, msisdn: str) -> str:
    """The name the number's counter had while it was the web's alone (both doors used it since). Read, never
    written, so a window counted under it before the rename still counts until it ends: a number locked then
    stays locked. Drop it once a release with the new name has run a window (``SignInRules.window_seconds``)."""
    return f"web:{what}:number:{msisdn}"


class Outbox(Protocol):
    def add(self, *, kind: str, msisdn: str, language: str, payload: dict[str, Any], dedupe_key: str) -> bool:
        """Queue one message for the worker to send; ``False`` if ``dedupe_key`` was queued before."""


@dataclass(frozen=True, slots=True)
class SignInRules:
    code_ttl_seconds: int = 300
    max_wrong_per_code: int = 3
    window_seconds: int = 900
    sends_per_number: int = 3       # codes asked for one number per window
    sends_per_address: int = 10     # codes asked from one client address per window, any numbers
    checks_per_number: int = 10     # codes typed for one number per window
    checks_per_address: int = 30


@dataclass(frozen=True)
class SignIn:
    """``channel`` names who asks in the audit (the web, the chatbot); ``code_kind`` is the outbox
    message that carries the code (its text says where to type it); ``budget``, shared by every door
    (the web's and the chat's), caps the codes sent to unidentified requesters in all. ``throttled(channel,
    attempt)`` is told of each refusal by the limits per number or per address (``request`` or ``check``:
    the metric), of which the audit keeps one row per key and window."""

    store: SignInStore
    throttle: Throttle
    outbox: Outbox
    security: SecurityAudit
    rules: SignInRules = SignInRules()
    channel: str = CHANNEL
    code_kind: str = "web_code"
    budget: CodeBudget | None = None
    throttled: Callable[[str, str], None] = lambda channel, attempt: None

    def _allowed(self, what: str, msisdn: str, address: str, per_number: int, per_address: int) -> bool:
        # Both counters move on every attempt (no short-circuit): a refused one still counts. A number's
        # counter is shared by every channel that sends codes (the web, the chatbot: ``number_key``): two
        # doors, one limit, so switching doors buys no codes or guesses against a number. What the number
        # counted under the counter's old name in a window still running counts too (``legacy_number_key``).
        # A requester's counter is each door's own (``channel`` in its key): an address that spent the web's
        # allowance (a household, an office behind one address) can still sign in in the chat.
        window = self.rules.window_seconds
        before = self.throttle.count(legacy_number_key(what, msisdn))
        limits = ((number_key(what, msisdn), per_number, max(per_number - before, 0), "for this number"),
                  (f"{self.channel}:{what}:address:{requester_of(address)}", per_address, per_address,
                   "from this address"))
        refused = [(key, limit, whose) for key, limit, left, whose in limits if not self.throttle.hit(key, left, window)]
        if not refused:
            return True
        attempt = _ATTEMPT[what]
        self.throttled(self.channel, attempt)
        for key, limit, whose in refused:
            # The subject is the number asked for, so an agent looking it up sees that it was hammered.
            record_once(self.security, self.throttle, key, SecurityEvent(
                "sign_in_throttled", self.channel, msisdn,
                detail=f"code {attempt}: more than {limit} {whose} in {window // 60} min: refused till it ends"))
        return False

    def request_code(self, msisdn: str, address: str, language: str) -> Literal["sent", "throttled", "busy"]:
        """Send a fresh code to ``msisdn`` (any earlier one stops working); ``throttled`` past the limits of
        the number or the address, ``busy`` past the budget of all unidentified requesters (no code then)."""
        if not self._allowed("send", msisdn, address, self.rules.sends_per_number, self.rules.sends_per_address):
            return "throttled"
        # After the number's and the address's limits: a request they refuse spends nothing of the budget,
        # so hammering one number cannot spend it for everyone.
        if self.budget is not None and not self.budget.spend(self.channel, msisdn):
            return "busy"
        code = new_code()
        self.store.put(msisdn, hash_code(code), self.rules.code_ttl_seconds)
        self.outbox.add(kind=self.code_kind, msisdn=msisdn, language=language,
                        payload={"code": code, "minutes": str(self.rules.code_ttl_seconds // 60)},
                        dedupe_key=f"{self.code_kind}:{msisdn}:{secrets.token_hex(8)}")
        self.security.record(SecurityEvent("code_sent", self.channel, msisdn))
        return "sent"

    def check_code(self, msisdn: str, code: str, address: str) -> Literal["ok", "wrong", "expired", "throttled"]:
        """Whether ``code`` is the live code of ``msisdn``; a good code works once."""
        if not self._allowed("check", msisdn, address, self.rules.checks_per_number,
                             self.rules.checks_per_address):
            return "throttled"
        stored = self.store.get(msisdn)
        if stored is None:
            self.security.record(SecurityEvent("sign_in_refused", self.channel, msisdn, detail="no live code"))
            return "expired"
        if code_matches(code, stored.digest):
            self.store.drop(msisdn)
            self.security.record(SecurityEvent("sign_in", self.channel, msisdn))
            return "ok"
        tries = self.store.count_wrong(msisdn)
        if tries >= self.rules.max_wrong_per_code:
            self.store.drop(msisdn)
            self.security.record(SecurityEvent("sign_in_refused", self.channel, msisdn,
                                               detail="wrong code: code given up"))
            return "expired"
        self.security.record(SecurityEvent("sign_in_refused", self.channel, msisdn, detail="wrong code"))
        return "wrong"
