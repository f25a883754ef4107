"""The SMS sender over the official Africa's Talking SDK, against a fake of its API on loopback."""

from __future__ import annotations

import pytest

from backend_clients.africastalking_sms import AfricasTalkingSms
from dialogs.backends import BackendUnavailable, Rejected
from engine.charset import sms_segments
from tests.support.fake_africastalking import FakeAfricasTalking


def sender(provider: FakeAfricasTalking, sender_id: str | None = None) -> AfricasTalkingSms:
    return AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url, sender_id=sender_id)


def test_a_message_reaches_the_provider_with_the_account_and_key(provider: FakeAfricasTalking) -> None:
    sent = sender(provider, sender_id="ELEC").send("+221770000001", "Votre reçu: 5 500 FCFA")
    assert sent.message_id.startswith("ATXid_") and sent.status == "Success"
    [message] = provider.sent
    assert (message.to, message.message, message.sender) == ("+221770000001", "Votre reçu: 5 500 FCFA", "ELEC")
    assert (message.username, message.api_key) == ("sandbox", "test-at-key")


def test_a_wrong_api_key_is_a_provider_error_not_a_send(provider: FakeAfricasTalking) -> None:
    with pytest.raises(BackendUnavailable):
        AfricasTalkingSms("sandbox", "wrong-key", api_url=provider.url).send("+221770000001", "x")
    assert provider.sent == []


def test_a_blacklisted_number_is_refused_for_good(provider: FakeAfricasTalking) -> None:
    provider.next_status = [406]
    with pytest.raises(Rejected) as refused:
        sender(provider).send("+221770000001", "x")
    assert refused.value.reason == "UserInBlacklist"


def test_a_gateway_error_is_worth_another_try(provider: FakeAfricasTalking) -> None:
    provider.next_status = [501]
    with pytest.raises(BackendUnavailable):
        sender(provider).send("+221770000001", "x")
    provider.fail_next = 1
    with pytest.raises(BackendUnavailable):
        sender(provider).send("+221770000001", "x")
    assert sender(provider).send("+221770000001", "x").status == "Success"


def test_an_unreachable_provider_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        AfricasTalkingSms("sandbox", "k", api_url="http://127.0.0.1:9/version1",
                          timeout=(0.2, 0.2)).send("+221770000001", "x")


def test_a_number_the_sdk_refuses_is_never_sent(provider: FakeAfricasTalking) -> None:
    with pytest.raises(Rejected):
        sender(provider).send("770000001", "x")
    assert provider.sent == []


@pytest.mark.parametrize(("text", "parts"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("€" * 80, 1), ("€" * 81, 2),             # extension characters take two septets
    ("ê" * 70, 1), ("ê" * 71, 2), ("ê" * 134, 2), ("ê" * 135, 3),   # one non-GSM-7 letter: UCS-2
])
def test_segments_follow_the_gsm7_and_ucs2_rules(text: str, parts: int) -> None:
    assert sms_segments(text) == parts
