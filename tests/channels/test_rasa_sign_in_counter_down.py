# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""Signing in inside the chat while the sign-in limits' counter (the throttle's Redis) is down: a Redis of
the test's own, stopped mid-conversation while the chat's codes and sign-ins stay where they are (the shared
test Redis, or this process). The chat answers, in the chat's own message format and the user's language,
that the service is unavailable (the action server answers 200, never a 500); no code goes out, and no
code, not even the right one, signs the conversation in while nothing counts the attempts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sanic import Sanic

from app.actions_server import build_action_app
from app.settings import Settings
from app.storage.throttle import RedisThrottle

from .rasa_visitor import AWA, chat_settings, code_in, sms, visitor  # noqa: F401

UNAVAILABLE_FR = "Service momentanément indisponible. Merci de réessayer plus tard."
UNAVAILABLE_EN = "Service temporarily unavailable. Please try again later."


@pytest.fixture
def action_app(chat_settings: Settings, throwaway_counter: RedisThrottle) -> Iterator[Sanic]:
    """The action server as production builds it, its limits counted in the throwaway Redis."""
    app = build_action_app(chat_settings, throttle=throwaway_counter)
    yield app
    Sanic.unregister_app(app)


def test_a_number_sent_while_the_counter_is_down_is_answered_unavailable_in_french_and_english(
        visitor, sms, throwaway_redis):
    awa, jane = visitor(), visitor(language="en")
    throwaway_redis.stop()
    assert awa.answers("77 000 00 01") == [UNAVAILABLE_FR]
    assert jane.answers("+221 77 000 00 01") == [UNAVAILABLE_EN]
    assert sms(AWA) == []
    # The counter back (restarted empty), the same conversation sends its number again and the code goes.
    throwaway_redis.start()
    assert awa.say("77 000 00 01") == ("Un code a été envoyé par SMS au +2217*****001. Tapez-le ici "
                                       "(valable 5 minutes).")
    assert len(sms(AWA)) == 1


def test_no_code_signs_the_chat_in_while_the_counter_is_down_not_even_the_right_one(visitor, sms, throwaway_redis):
    awa = visitor()
    awa.say("77 000 00 01")
    code = code_in(sms(AWA)[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    throwaway_redis.stop()
    # Guesses are not let through uncounted: every one, the right code too, gets the same answer.
    for typed in [wrong] * 5 + [code]:
        assert awa.answers(typed) == [UNAVAILABLE_FR]
    # Not signed in: asking for the account still asks for the code.
    assert awa.say("mon solde", intent="check_balance") == (
        "Tapez le code à 6 chiffres envoyé par SMS au +2217*****001 (valable 5 minutes), ou envoyez un autre "
        "numéro.")
    # Back (empty: the count starts again), the code the user holds still works: none of the guesses made
    # while nothing counted was checked, so none spent one of its three wrong tries.
    throwaway_redis.start()
    assert awa.answers(code) == ["Numéro vérifié. Envoyez « déconnexion » pour quitter.", "ElecNet - 1000001"]
