"""The Graph API client against a fake Graph API on loopback: what it posts, what it makes of Meta's
answers (a message id, a refusal for good, a failure worth another try)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend_clients.meta_notifier import MetaWhatsAppNotifier
from backend_clients.meta_whatsapp import MetaWhatsApp
from dialogs.backends import BackendUnavailable, Rejected
from tests.support.fake_graph import FakeGraph, fake_graph
from tests.support.ports import closed_port

TEXT = {"type": "text", "text": {"body": "Bonjour", "preview_url": False}}


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph() as fake:
        yield fake


def test_a_message_is_posted_with_the_bearer_token_to_our_number_and_answers_its_id(graph):
    client = MetaWhatsApp(graph.api_url, graph.access_token, backoff_seconds=0)
    sent = client.send("106540352242922", "221770000001", TEXT)
    assert sent.message_id.startswith("wamid.")
    [recorded] = graph.sent
    assert recorded["phone_number_id"] == "106540352242922"
    assert (recorded["messaging_product"], recorded["to"], recorded["text"]["body"]) == (
        "whatsapp", "221770000001", "Bonjour")


def test_a_server_error_is_tried_once_more_at_once(graph):
    client = MetaWhatsApp(graph.api_url, graph.access_token, backoff_seconds=0)
    graph.next_errors[:] = [(500, 2)]
    assert client.deliver("1", "221770000001", TEXT) == graph.sent[0]["id"]
    assert len(graph.sent) == 1
    graph.next_errors[:] = [(503, 2), (429, 130429)]
    with pytest.raises(BackendUnavailable):
        client.send("1", "221770000001", TEXT)


def test_a_refusal_for_good_is_rejected_with_meta_s_code_and_deliver_says_none(graph):
    client = MetaWhatsApp(graph.api_url, graph.access_token, backoff_seconds=0)
    graph.next_errors[:] = [(400, 131047)]
    with pytest.raises(Rejected) as refused:
        client.send("1", "221770000001", TEXT)
    assert refused.value.code == "131047"
    graph.next_errors[:] = [(400, 131026)]
    assert client.deliver("1", "221770000001", TEXT) is None
    bad_token = MetaWhatsApp(graph.api_url, "expired-token", backoff_seconds=0)
    with pytest.raises(Rejected):
        bad_token.send("1", "221770000001", TEXT)
    assert graph.sent == []


def test_an_unreachable_graph_api_is_worth_another_try_later():
    client = MetaWhatsApp(f"http://127.0.0.1:{closed_port()}/v21.0", "token", backoff_seconds=0)
    with pytest.raises(BackendUnavailable):
        client.deliver("1", "221770000001", TEXT)


def test_a_reply_goes_from_the_phone_number_id_the_customer_wrote_to(graph):
    notifier = MetaWhatsAppNotifier(MetaWhatsApp(graph.api_url, graph.access_token), "106540352242922")
    notifier.send_message("+221770000001", TEXT, "106540352242999")
    notifier.send("+221770000001", "Alerte")
    assert [m["phone_number_id"] for m in graph.sent] == ["106540352242999", "106540352242922"]


def test_without_a_phone_number_id_to_send_from_nothing_is_asked_of_meta(graph):
    notifier = MetaWhatsAppNotifier(MetaWhatsApp(graph.api_url, graph.access_token), "")
    with pytest.raises(Rejected) as refused:
        notifier.send("+221770000001", "Alerte")
    assert refused.value.reason == "meta_no_phone_number_id" and graph.sent == []
    notifier.send_message("+221770000001", TEXT, "106540352242922")      # a reply knows its number
    assert [m["phone_number_id"] for m in graph.sent] == ["106540352242922"]
