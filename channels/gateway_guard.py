"""Who may call the USSD callback: the gateway's shared token and, optionally, its source networks.

USSD gateways do not sign their requests, so operators authenticate them the plain way: a
secret token on the callback URL (``?token=``) or in the ``X-Gateway-Token`` header, and a
list of networks the gateway calls from. The token is compared in constant time. The
caller's address is the socket's peer; ``X-Forwarded-For`` is believed only when that peer
is one of the configured trusted proxies (otherwise anyone could claim any address).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["TOKEN_HEADER", "GatewayGuard", "Refusal", "parse_networks"]

TOKEN_HEADER: Final = "X-Gateway-Token"
TOKEN_PARAM: Final = "token"
UNKNOWN_SOURCE: Final = "unknown"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Readable(Protocol):
    def get(self, key: str, /) -> str | None: ...


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "192.0.2.7"]`` as networks; ``ValueError`` naming the entry that is not one."""
    networks = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"not a network address or CIDR: {value!r}") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: fixed text, safe for a log line and an audit row."""

    reason: str
    source: str


@dataclass(frozen=True)
class GatewayGuard:
    """The gateway's credentials. An empty token and no networks let every caller in (development)."""

    token: str = ""
    allowed_networks: tuple[Network, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()

    def __repr__(self) -> str:  # never print the token
        return (f"GatewayGuard(token={'set' if self.token else 'unset'}, "
                f"allowed_networks={[str(n) for n in self.allowed_networks]}, "
                f"trusted_proxies={[str(n) for n in self.trusted_proxies]})")

    @property
    def is_open(self) -> bool:
        return not self.token and not self.allowed_networks

    def source(self, remote_addr: str | None, forwarded_for: str | None) -> str:
        """The caller's address: the peer, or the forwarded one when the peer is a trusted proxy."""
        peer = (remote_addr or "").strip()
        if not forwarded_for or not self._in(peer, self.trusted_proxies):
            return peer
        # Walk right to left, past our own proxies: the first other address is the real client.
        for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
            if not self._in(hop, self.trusted_proxies):
                # Whatever the header says goes to logs and audit rows: an address or nothing.
                return hop if _is_address(hop) else UNKNOWN_SOURCE
        return peer

    def check(self, headers: _Readable, args: _Readable, remote_addr: str | None) -> Refusal | None:
        """None when the caller may talk to the engine, else the ``Refusal`` saying why not.

        ``headers`` and ``args`` are the request's (anything with ``get``: Flask's will do).
        """
        source = self.source(remote_addr, headers.get("X-Forwarded-For"))
        if self.allowed_networks and not self._in(source, self.allowed_networks):
            return Refusal("source network not allowed", source)
        if self.token:
            offered = headers.get(TOKEN_HEADER) or args.get(TOKEN_PARAM) or ""
            if not offered:
                return Refusal("gateway token missing", source)
            # compare_digest on bytes: constant time whatever the characters (str needs ASCII).
            if not hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), self.token.encode("utf-8")):
                return Refusal("gateway token wrong", source)
        return None

    @staticmethod
    def _in(address: str, networks: tuple[Network, ...]) -> bool:
        if not _is_address(address):
            return False
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in networks)


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
