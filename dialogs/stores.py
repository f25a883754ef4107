"""Ports to the product's own records that dialogs use (implemented on SQL in ``app/storage``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["AccountLink", "AccountLinks", "Preferences"]


@dataclass(frozen=True, slots=True)
class AccountLink:
    msisdn: str
    account_number: str
    source: str   # "billing" (registered there) or "self-service" (linked by the customer)


@runtime_checkable
class AccountLinks(Protocol):
    """Which accounts a phone number may act on."""

    def accounts_for(self, msisdn: str) -> list[AccountLink]:
        """The links of a number, oldest first."""

    def link(self, msisdn: str, account_number: str, source: str) -> AccountLink:
        """Create the link if absent; linking twice is harmless."""


@runtime_checkable
class Preferences(Protocol):
    """What a customer chose and the product remembers across sessions."""

    def language(self, msisdn: str) -> str | None:
        """The language the customer chose, if any."""

    def set_language(self, msisdn: str, language: str) -> None:
        """Remember the customer's language."""
