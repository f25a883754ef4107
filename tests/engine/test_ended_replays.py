"""The gateway's retry of the hop that ended a USSD session gets that END again, even once the ended session
itself is gone (``ended_ttl_seconds``): the spent id's marker keeps it, for the same caller and the same hop
only. A first hop that fails before anything is saved spends its id all the same.

On Redis and on the embedded store; time passes on the store's clock (embedded) or with TTLs of a second
(Redis), as in ``test_ended_keys``.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine import ChannelCapabilities, Engine, EngineLimits, FlowSet, RedisSessionStore
from engine.hop_digest import HopDigest
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps
from .test_ended_keys import HOME, NUMBER, OTHER, OVER, USSD, Place, _engine, _events, place  # noqa: F401
from .test_hop_safety import prefix, redis_client  # noqa: F401  (fixtures: a Redis key prefix of this test's own)
from .test_session_end import EnglishHandset, Security

PAID = ("Payé 500 FCFA le 25/11/2026.", True)
REUSED = ("session_reused", "ussd", NUMBER, "hop on an ended session")


def _paid(phone: Handset) -> None:
    phone.dial()
    phone.answer("2")
    phone.answer("500")
    assert (phone.answer("1234").text, phone.hop("2*500*1234").end) == PAID


def test_the_gateways_retry_of_the_paying_hop_after_the_session_is_gone_gets_its_confirmation(place: Place):  # noqa: F811
    security, steps = Security(), CountingSteps()
    phone = Handset(_engine(place, steps, security), msisdn=NUMBER)
    _paid(phone)
    place.later()                                       # the ended session and its replay record are gone
    retried = phone.hop("2*500*1234")                   # the gateway retries the hop it got no answer to
    assert (retried.text, retried.end, retried.replayed) == (*PAID, True)
    assert steps.calls.get("demo.check_pin") == 1       # answered again, not paid again
    assert _events(security) == []                      # a retry, not a reuse
    assert (phone.hop("2*500*1234*1").text, phone.hop("2*500*1234*1").end) == OVER   # anything else: over
    assert _events(security) == [REUSED] * 2


def test_the_end_is_kept_only_while_the_gateway_may_retry_and_the_id_stays_spent_after(place: Place):  # noqa: F811
    security = Security()
    phone = Handset(_engine(place, security=security), msisdn=NUMBER)
    _paid(phone)
    place.later()                                       # the ended session is gone: the retry still gets its END
    assert (phone.hop("2*500*1234").text, phone.hop("2*500*1234").end) == PAID
    place.past_retries(PAID[0])                         # the gateway's retries are long over
    assert PAID[0] not in place.kept()                  # the confirmation and its amount are no longer kept
    assert (phone.hop("2*500*1234").text, phone.hop("2*500*1234").end) == OVER   # the id is still spent
    assert _events(security) == [REUSED] * 2
    assert Handset(_engine(place), session="s2", msisdn=NUMBER).dial().text == HOME   # a new dial


def test_only_the_same_caller_with_the_same_hop_gets_the_end_again(place: Place):  # noqa: F811
    security = Security()
    engine = _engine(place, security=security)
    _paid(Handset(engine, msisdn=NUMBER))
    place.later()
    assert (Handset(engine, msisdn=NUMBER).hop("2*500*9999").text) == OVER[0]      # another PIN: over
    assert (Handset(engine, msisdn=NUMBER).hop("2*500").text) == OVER[0]           # an earlier hop: over
    assert Handset(engine, msisdn=OTHER).hop("2*500*1234").text == "Service indisponible."   # learns nothing
    assert _events(security) == [REUSED, REUSED,
                                 ("caller_mismatch", "ussd", OTHER, "hop on another caller's ended session")]


def test_a_first_hop_ended_by_a_back_end_failure_is_answered_again_on_retry_and_spends_its_id(place: Place):  # noqa: F811
    steps = CountingSteps()
    phone = Handset(_engine(place, steps), msisdn=NUMBER)
    assert (phone.dial("3").text, phone.hop("3").end) == ("Systèmes indisponibles.", True)   # *123*3#
    place.later()
    assert (phone.hop("3").text, phone.hop("3").end) == ("Systèmes indisponibles.", True)
    assert steps.calls["demo.broken"] == 1
    assert (phone.hop("3*1").text, phone.hop("").text) == (OVER[0], OVER[0])


class _Unregistered(CountingSteps):
    """A registry that lacks a step (a worker whose dialog module failed to register): the hop fails."""

    def __init__(self, missing: str) -> None:
        super().__init__()
        self.missing: str | None = missing

    def get(self, name: str):
        return None if name == self.missing else super().get(name)


def test_a_first_hop_that_fails_spends_its_id_and_its_retry_gets_the_same_end(place: Place):  # noqa: F811
    security, steps = Security(), _Unregistered("demo.greet")
    phone = Handset(_engine(place, steps, security), msisdn=NUMBER)
    assert (phone.dial().text, phone.hop("").end) == ("Service indisponible.", True)   # nothing saved by the hop
    steps.missing = None                                 # the registry is whole again
    assert (phone.hop("").text, phone.hop("").end) == ("Service indisponible.", True)   # the retry: the same END
    assert (phone.hop("2").text, phone.hop("2*500").end) == (OVER[0], True)   # no fresh session on the old id
    assert steps.calls.get("demo.greet") is None
    assert place.store.load("ussd:s1") is None
    assert _events(security) == [REUSED] * 2
    assert Handset(_engine(place, steps), session="s2", msisdn=NUMBER).dial().text == HOME   # a new dial


def test_a_later_hop_that_fails_spends_its_id_and_its_retry_gets_the_same_end_not_a_run_from_before(place: Place):  # noqa: F811
    security, steps = Security(), _Unregistered("demo.items")
    engine = _engine(place, steps, security)
    phone = Handset(engine, msisdn=NUMBER)
    assert phone.dial().text == HOME
    assert (phone.answer("1").text, phone.hop("1").end) == ("Service indisponible.", True)   # the list's step fails
    steps.missing = None                                 # the registry is whole again
    assert (phone.hop("1").text, phone.hop("1").end) == ("Service indisponible.", True)   # the retry: the same END
    assert steps.calls.get("demo.items") is None         # not run again from the menu the dial saved
    assert EnglishHandset(engine, msisdn=OTHER).hop("1").text == "Service unavailable."   # nothing of it
    assert (phone.hop("1*1").text, phone.hop("2").end) == (OVER[0], True)   # any other hop: the id is spent
    place.later()                                        # and so once the session itself is gone
    assert (phone.hop("1").text, phone.hop("1").end) == ("Service indisponible.", True)
    assert phone.hop("2").text == OVER[0]
    assert steps.calls.get("demo.items") is None
    assert _events(security) == [("caller_mismatch", "ussd", OTHER, "hop on another caller's session"),
                                 REUSED, REUSED, REUSED]


def test_a_later_hop_that_fails_ends_in_the_sessions_language(place: Place):  # noqa: F811
    # The gateway's hops carry no language: an English customer's session is in English from their preference.
    engine = _engine(place, _Unregistered("demo.items"))
    assert EnglishHandset(engine, msisdn=NUMBER).hop("").text.startswith("Hello Awa")
    failed = Handset(engine, msisdn=NUMBER).hop("1")                    # the list's step fails
    assert (failed.text, failed.end) == ("Service unavailable.", True)
    assert Handset(engine, msisdn=NUMBER).hop("1").text == "Service unavailable."   # and so does its retry


def test_on_redis_a_marker_keeping_a_full_screen_end_stays_under_a_kilobyte(redis_client, prefix, tmp_path: Path):  # noqa: F811
    # The longest END a USSD screen shows: 178 characters, accented (two bytes each in UTF-8).
    farewell = ("Paiement reçu, merci. Votre reçu arrive par SMS; gardez-le. Référence à rappeler pour toute "
                "réclamation: ELEC-2026-000123. À bientôt sur le *123#, été comme hiver, à Thiès.")
    assert len(farewell) <= 178
    menus = tmp_path / "menus.yaml"
    menus.write_text(DEMO.read_text(encoding="utf-8").replace('fr: "Au revoir."', f'fr: "{farewell}"'),
                     encoding="utf-8")
    engine = Engine(FlowSet(load_menus(menus)), RedisSessionStore(redis_client, prefix=prefix), CountingSteps(),
                    hop_key=b"k")
    engine.declare(USSD, key_ends_with_session=True)
    phone = Handset(engine, msisdn=NUMBER)
    phone.dial()
    ended = phone.answer("4")
    assert ended.end and ended.text.startswith("Paiement recu, merci.")   # as GSM-7 writes it
    marker = redis_client.memory_usage(f"{prefix}e:ussd:s1")
    # Measured (Redis 7.0.15, this test's keys): 392 bytes, where this ended session itself takes 520 and a
    # marker without an END 88 (200 with the short payment confirmation of the tests above).
    assert marker is not None and marker <= 1024, marker
    redis_client.delete(f"{prefix}s:ussd:s1")               # the ended session's two minutes are over
    assert phone.hop("4").text == ended.text


# ---------------------------------------------------------------- a rolling deploy: workers of two releases
def _tag(user_id: str) -> str:
    """The caller's tag in a marker, as every release writes it (the engine's hop key is ``k`` here)."""
    return HopDigest(b"k").digest(user_id, "\x00spent")[:8]


def test_a_marker_written_before_the_deploy_keeping_its_end_whole_is_read_right(redis_client, prefix):  # noqa: F811
    security = Security()
    engine = _engine(Place(RedisSessionStore(redis_client, prefix=prefix), EngineLimits(), [0.0]), security=security)
    # The previous release kept the END in the marker itself, ``language:tag:digest:record``, for a day.
    record = json.dumps({"s": {"n": "done", "b": [PAID[0]], "x": True}}, ensure_ascii=False, separators=(",", ":"))
    old = f"fr:{_tag(NUMBER)}:{HopDigest(b'k').digest(NUMBER, '2*500*1234')}:{record}"
    redis_client.set(f"{prefix}e:ussd:s1", old, ex=86_000)
    phone = Handset(engine, msisdn=NUMBER)
    retried = phone.hop("2*500*1234")
    assert (retried.text, retried.end, retried.replayed) == (*PAID, True)
    assert (phone.hop("2*500*1234*1").text, phone.hop("").text) == (OVER[0], OVER[0])
    assert EnglishHandset(engine, msisdn=OTHER).hop("2*500*1234").text == "Service unavailable."
    assert _events(security) == [REUSED, REUSED,
                                 ("caller_mismatch", "ussd", OTHER, "hop on another caller's ended session")]


def test_the_spent_ids_marker_keeps_the_form_the_previous_release_reads(redis_client, prefix):  # noqa: F811
    # ``language:tag`` with nothing after: a worker of the previous release reading it during the deploy refuses
    # a hop on the id as over (``session_over``), never as another caller's (``error``).
    phone = Handset(_engine(Place(RedisSessionStore(redis_client, prefix=prefix), EngineLimits(), [0.0])),
                    msisdn=NUMBER)
    phone.dial()
    assert redis_client.get(f"{prefix}e:ussd:s1") == f"fr:{_tag(NUMBER)}".encode()
    _paid(Handset(phone.engine, session="s2", msisdn=NUMBER))
    assert redis_client.get(f"{prefix}e:ussd:s2") == f"fr:{_tag(NUMBER)}".encode()


def test_on_a_channel_keyed_by_user_a_failed_first_message_keeps_nothing_and_the_next_starts_anew(place: Place):  # noqa: F811
    steps = _Unregistered("demo.greet")
    engine = Engine(FlowSet(load_menus(DEMO)), place.store, steps, limits=place.limits, hop_key=b"k")
    engine.declare(ChannelCapabilities("chat", max_chars=4096), idle_seconds=900)
    chat = Handset(engine, channel="chat", msisdn=NUMBER)
    assert chat.dial().text == "Service indisponible."
    steps.missing = None
    assert chat.dial().text.startswith("Bonjour Awa")   # the same key serves the caller's next conversation
    assert place.store.marker("chat:s1") is None
