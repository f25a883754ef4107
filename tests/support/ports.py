"""The tests' loopback ports: ``bench/ports.py``, one helper for the tests' servers and the benchmark's
(the benchmark may not import the tests, the tests may import it)."""

from __future__ import annotations

from bench.ports import (
    AddressInUse,
    closed_port,
    free_port,
    on_free_port,
    on_free_ports,
    release_port,
    reserve_port,
    reserved_socket,
    said_address_in_use,
)

__all__ = ["AddressInUse", "closed_port", "free_port", "on_free_port", "on_free_ports", "release_port",
           "reserve_port", "reserved_socket", "said_address_in_use"]
