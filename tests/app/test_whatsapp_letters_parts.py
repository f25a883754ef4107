"""WhatsApp text longer than one provider message goes as several, in order, none cut short and none sent
twice when the provider was busy half-way: through the Twilio SDK and the Graph API client, against their
fakes on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.notify import REPLY_MESSAGES, REPLY_PROVIDER, Letter, PartRejected
from app.storage import SqlOutbox, make_sessions
from app.storage.delivery import PARTS_SENT, SMS_PARTS, SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal
from app.whatsapp_letters import MetaWhatsAppLetters, TwilioWhatsAppLetters
from backend_clients.meta_notifier import MetaWhatsAppNotifier
from backend_clients.meta_whatsapp import MetaWhatsApp
from backend_clients.twilio_whatsapp import TwilioWhatsApp
from dialogs.backends import BackendUnavailable
from tests.support.fake_graph import FakeGraph, fake_graph
from tests.support.fake_twilio import FakeTwilio, fake_twilio

AWA = "+221770000001"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
# A statement of 60 lines (about 4 800 characters): four Twilio messages, two Meta messages.
STATEMENT = "\n".join(f"{n:02d}/2026 facture n° 2026-{n:05d} : 5 500 FCFA payée le 12/{n:02d} par Wave (réf. W{n:06d})"
                      for n in range(1, 61))


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph() as fake:
        yield fake


def twilio_letters(fake: FakeTwilio) -> TwilioWhatsAppLetters:
    return TwilioWhatsAppLetters(TwilioWhatsApp(fake.account_sid, fake.auth_token, "+14155238886", api_url=fake.url))


def test_a_long_text_goes_through_twilio_as_messages_of_at_most_1600_characters_in_order(twilio: FakeTwilio) -> None:
    sent = twilio_letters(twilio).send_letter(AWA, STATEMENT, Letter("statement", "fr", "all"))
    bodies = [m["Body"] for m in twilio.sent]
    assert len(bodies) == 4 and all(len(body) <= 1600 for body in bodies)
    assert "\n".join(bodies) == STATEMENT            # cut between lines, nothing lost
    assert sent.message_id == twilio.sent[0]["Sid"]  # the first part is the one the outbox row follows


def test_a_part_twilio_could_not_take_is_where_the_retry_starts(twilio: FakeTwilio) -> None:
    taken: list[list[str]] = []
    letter = Letter("statement", "fr", "all", progress=lambda ids: taken.append(list(ids)))

    def busy_for_the_next_part() -> None:
        twilio.before_answer = None
        twilio.next_error.append((503, 20503, "Service Unavailable"))

    twilio.before_answer = busy_for_the_next_part
    with pytest.raises(BackendUnavailable):
        twilio_letters(twilio).send_letter(AWA, STATEMENT, letter)
    [first] = twilio.sent
    assert taken[-1] == [first["Sid"]]               # recorded as soon as Twilio took it
    retried = Letter("statement", "fr", "all", parts_sent=tuple(taken[-1]),
                     progress=lambda ids: taken.append(list(ids)))
    sent = twilio_letters(twilio).send_letter(AWA, STATEMENT, retried)
    bodies = [m["Body"] for m in twilio.sent]
    assert "\n".join(bodies) == STATEMENT and len(bodies) == len(set(bodies)) == 4   # the first not sent again
    assert sent.message_id == first["Sid"]
    assert taken[-1] == [m["Sid"] for m in twilio.sent]


def test_a_long_text_goes_through_meta_as_text_messages_of_at_most_4096_characters(graph: FakeGraph) -> None:
    letters = MetaWhatsAppLetters(MetaWhatsAppNotifier(MetaWhatsApp(graph.api_url, graph.access_token),
                                                       "106540352242922"))
    letters.send_letter(AWA, STATEMENT, Letter("statement", "fr", "all"))
    bodies = [m["text"]["body"] for m in graph.messages_to(AWA.lstrip("+"))]
    assert len(bodies) == 2 and all(len(body) <= 4096 for body in bodies)
    assert "\n".join(bodies) == STATEMENT


def test_meta_refusing_the_second_text_for_good_leaves_the_rest_to_the_next_channel(graph: FakeGraph) -> None:
    """The customer read the first message: the refusal carries the text of the second only, for SMS."""
    letters = MetaWhatsAppLetters(MetaWhatsAppNotifier(MetaWhatsApp(graph.api_url, graph.access_token),
                                                       "106540352242922"))

    def outside_the_window_for_the_next(_: dict[str, Any]) -> None:
        graph.before_answer = None
        graph.next_errors.append((400, 131047))

    graph.before_answer = outside_the_window_for_the_next
    with pytest.raises(PartRejected) as refused:
        letters.send_letter(AWA, STATEMENT, Letter("statement", "fr", "all"))
    [first] = [m["text"]["body"] for m in graph.messages_to(AWA.lstrip("+"))]
    assert (refused.value.reason, refused.value.taken) == ("meta_131047", 1)
    assert first + "\n" + "\n".join(refused.value.rest) == STATEMENT


def test_a_worker_stopped_between_parts_leaves_a_row_whose_recovery_sends_only_the_rest(engine_db: str) -> None:
    """The worker died after Twilio took the first two parts of a late reply. Their delivery reports come in;
    recovery does not take them for the whole message: once ``settle`` passed it is pending again, with the
    parts already taken, and the next pass sends the last two only."""
    sessions = make_sessions(engine_db)
    outbox = SqlOutbox(sessions, OutboxSeal.from_setting("", "test-secret-key-for-the-seal"), clock=lambda: NOW)
    bodies = ["partie 1", "partie 2", "partie 3", "partie 4"]
    assert outbox.add(kind="whatsapp_reply", msisdn=AWA, language="fr", dedupe_key="whatsapp_reply:SM1",
                      channel="whatsapp", payload={"reply": "\n".join(bodies), REPLY_MESSAGES: bodies,
                                                   REPLY_PROVIDER: "twilio"})
    lease, settle = timedelta(minutes=1), timedelta(minutes=10)
    queue = SqlDeliveryQueue(sessions, clock=lambda: NOW)
    [row] = queue.claim(NOW, lease)
    queue.parts_sent(row.id, [])
    queue.parts_sent(row.id, ["SM" + "a" * 32])
    queue.parts_sent(row.id, ["SM" + "a" * 32, "SM" + "b" * 32])   # ... and then the worker died
    for sid in ("SM" + "a" * 32, "SM" + "b" * 32):
        queue.record_report(provider="twilio", message_id=sid, msisdn=AWA, status="delivered", failure_reason=None)
    assert queue.recover(NOW + lease + timedelta(minutes=1), lease, settle) == (0, 0)   # not taken as sent
    assert queue.recover(NOW + lease + settle, lease, settle) == (0, 1)                 # sent again, then
    [again] = queue.claim(NOW + lease + settle, lease)
    assert again.payload[PARTS_SENT] == ["SM" + "a" * 32, "SM" + "b" * 32]



WINDOW_CLOSED = "whatsapp: not delivered, outside the 24-hour window (twilio 63016); sent again by SMS"


def test_reports_about_later_parts_find_the_row_and_sms_brings_only_the_parts_not_delivered(engine_db: str) -> None:
    """Four parts taken by Twilio; the reports come in any order. Part 3 undelivered (outside the window): the row is
    pending for SMS with parts 3 and 4; part 4 then delivered: part 3 only; part 2 undelivered too, reported before
    the SMS went: parts 2 and 3. Part 1, delivered, never goes by SMS."""
    sessions = make_sessions(engine_db)
    outbox = SqlOutbox(sessions, OutboxSeal.from_setting("", "test-secret-key-for-the-seal"), clock=lambda: NOW)
    bodies = ["partie 1", "partie 2", "partie 3", "partie 4"]
    assert outbox.add(kind="whatsapp_reply", msisdn=AWA, language="fr", dedupe_key="whatsapp_reply:SM2",
                      channel="whatsapp", payload={"reply": "\n".join(bodies), REPLY_MESSAGES: bodies,
                                                   REPLY_PROVIDER: "twilio"})
    queue = SqlDeliveryQueue(sessions, clock=lambda: NOW)
    [row] = queue.claim(NOW, timedelta(minutes=1))
    sids = [f"SM{n:032x}" for n in range(101, 105)]
    for taken in range(1, 5):
        queue.parts_sent(row.id, sids[:taken])
    queue.sent(row.id, channel="whatsapp", message_id=sids[0], now=NOW)

    def report(part: int, status: str, again: str | None = None) -> bool:
        return queue.record_report(provider="twilio", message_id=sids[part], msisdn=AWA, status=status,
                                   failure_reason="63016" if again else None, sms_again=again)

    assert report(0, "delivered")
    assert queue.get(row.id)["status"] == "sent"
    assert report(2, "undelivered", WINDOW_CLOSED)              # part 3: the row knows it by its part's id
    def sms_parts() -> object:
        kept = queue.get(row.id)
        assert (kept["status"], kept["channel"]) == ("pending", "sms")
        return json.loads(kept["payload"])[SMS_PARTS]
    assert sms_parts() == [2, 3]
    assert report(3, "delivered")
    assert sms_parts() == [2]
    assert report(1, "undelivered", WINDOW_CLOSED)
    assert sms_parts() == [1, 2]
    assert report(1, "undelivered", WINDOW_CLOSED)              # the same report again: nothing changes
    assert sms_parts() == [1, 2]
