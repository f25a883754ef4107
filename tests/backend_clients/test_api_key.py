"""The X-Api-Key header against a back office that requires one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from backend_clients import BillingClient, ClientConfig
from backoffice import BackofficeConfig
from dialogs.backends import BackendUnavailable

KEY = "test-api-key"


@pytest.fixture
def backoffice_config(backoffice_config: BackofficeConfig) -> BackofficeConfig:
    return replace(backoffice_config, api_key=KEY)


def test_configured_key_is_sent(backoffice_url: str) -> None:
    with BillingClient(ClientConfig(backoffice_url, api_key=KEY)) as billing:
        assert billing.account("1000001").account_number == "1000001"


def test_missing_or_wrong_key_is_unavailable_not_a_customer_error(backoffice_url: str) -> None:
    for key in (None, "wrong"):
        with (BillingClient(ClientConfig(backoffice_url, api_key=key, retries=0)) as billing,
              pytest.raises(BackendUnavailable)):
            billing.account("1000001")
