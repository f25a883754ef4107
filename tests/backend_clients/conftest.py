"""Clients pointed at the reference back office (``backoffice_url``, from tests/support/backoffice.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend_clients import BillingClient, ClientConfig, IncidentClient, MeteringClient, PaymentClient


@pytest.fixture
def client_config(backoffice_url: str) -> ClientConfig:
    # Short timeouts: loopback answers in milliseconds, and a hung test should fail fast.
    return ClientConfig(backoffice_url, connect_timeout=1.0, read_timeout=3.0, retries=1)


@pytest.fixture
def billing(client_config: ClientConfig) -> Iterator[BillingClient]:
    with BillingClient(client_config) as client:
        yield client


@pytest.fixture
def metering(client_config: ClientConfig) -> Iterator[MeteringClient]:
    with MeteringClient(client_config) as client:
        yield client


@pytest.fixture
def payments(client_config: ClientConfig) -> Iterator[PaymentClient]:
    with PaymentClient(client_config) as client:
        yield client


@pytest.fixture
def incidents(client_config: ClientConfig) -> Iterator[IncidentClient]:
    with IncidentClient(client_config) as client:
        yield client
