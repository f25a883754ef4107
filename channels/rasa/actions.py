"""The rasa-sdk action that makes one engine hop per user message, and the executor that holds it.

The Rasa server calls ``action_elecnet_turn`` (its stories or rules route the customer's messages
to it); the action reads the tracker's latest message, runs one hop of the engine in a worker
thread (the engine is synchronous: run inline it would block Sanic's event loop for every other
conversation) and answers with the screen as text and buttons. Nothing else: no slot carries
what the customer typed, so a PIN stays out of Rasa's slots as it stays out of our sessions.

A message without a verified number (``identity.py``) signs the conversation in with a code sent by
SMS (``sign_in.py``) when it is a number or a code and the conversation's id allows it; anything else
is a guest's (``guests.py``): it reaches only the menus' guest flow, which needs no account, and an
account journey's intent is told to sign in first (or, where the chat cannot sign in, how to get a
verified number). A guest's turn never carries a customer, so no dialog step sees one. New guest
conversations are counted against a budget a minute (``guests.GuestBudget``): past it, a new one is
told to try again in a minute (or to sign in) and runs nothing.

The chat server may send a message again (the same ``message_id``): the answer to each message is kept in the
answer ledger (``channels.answer_ledger``, under the conversation as parsed and the message id), so a repeat gets
that answer again and runs nothing: no second hop, and in the sign-in no second code minted or sent, no second
wrong try counted. The ledger is Redis, which may restart empty: as on SMS and WhatsApp, a message is also claimed
in the product's database before it runs and its claim marked answered once it is (``claim_message``,
``record_answered``, under a digest of the conversation and message id: the table holds no number), so a repeat
after Redis forgot runs nothing either; it is told its message was answered already (the answer itself, which may
show an account's figures, is kept in Redis only).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from engine import Engine, Turn
from engine.masking import mask

from ..adapter import BadRequest
from ..answer_ledger import (
    AnswerLedger,
    Claim,
    DurableAnswers,
    answered_before,
    claim_message,
    record_answered,
)
from .channel import RasaChannel, RasaMessage
from .guests import GuestBudget, guest_turn
from .sign_in import SIGN_OUT_WORDS, ChatSignIn

__all__ = ["ACTION_NAME", "ElecnetTurn", "build_executor"]

log = logging.getLogger("channels.rasa")

ACTION_NAME: Final = "action_elecnet_turn"
# A repeat of a message another delivery is running waits this long for its answer (20 x 0.1 s).
_REPEAT_POLLS: Final = 20
_REPEAT_POLL_SECONDS: Final = 0.1
# The channel's own answers, in the customer's language when known (French by default).
TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "unverified": {
        "fr": "Pour consulter votre compte ici, ouvrez la discussion depuis l'application après avoir "
              "vérifié votre numéro de téléphone, ou composez le code USSD depuis ce numéro.",
        "en": "To use your account here, open the chat from the app once your phone number is verified, "
              "or dial the USSD code from that number.",
    },
    "unreadable": {
        "fr": "Message illisible. Merci de réessayer.",
        "en": "We could not read that message. Please try again.",
    },
    "ask_number": {
        "fr": "Pour accéder à votre compte, envoyez votre numéro de téléphone : nous vous enverrons un code "
              "par SMS.",
        "en": "To use your account, send your phone number: we will text you a code.",
    },
    "bad_number": {
        "fr": "Ce numéro n'est pas valide. Envoyez votre numéro de téléphone.",
        "en": "That number is not valid. Please send your phone number.",
    },
    "foreign_number": {
        "fr": "Les codes ne sont envoyés qu'aux numéros du pays. Envoyez votre numéro local.",
        "en": "Codes are only sent to numbers in this country. Please send your local number.",
    },
    "code_sent": {
        "fr": "Un code a été envoyé par SMS au {number}. Tapez-le ici (valable {minutes} minutes).",
        "en": "A code was sent by SMS to {number}. Type it here (valid {minutes} minutes).",
    },
    "code_expected": {
        "fr": "Tapez le code à 6 chiffres envoyé par SMS au {number} (valable {minutes} minutes), "
              "ou envoyez un autre numéro.",
        "en": "Type the 6-digit code sent by SMS to {number} (valid {minutes} minutes), or send another number.",
    },
    "wrong_code": {
        "fr": "Code incorrect. Vérifiez le SMS et réessayez.",
        "en": "Wrong code. Check the SMS and try again.",
    },
    "expired_code": {
        "fr": "Ce code n'est plus valable. Envoyez à nouveau votre numéro pour recevoir un nouveau code.",
        "en": "That code is no longer valid. Send your number again to get a new code.",
    },
    "throttled": {
        "fr": "Trop de tentatives. Merci de réessayer dans 15 minutes.",
        "en": "Too many attempts. Please try again in 15 minutes.",
    },
    "codes_busy": {
        "fr": "Trop de codes demandés en ce moment : aucun code n'a été envoyé. Merci de réessayer dans quelques "
              "minutes, ou composez le code USSD depuis votre téléphone.",
        "en": "Too many codes are being asked for right now: no code was sent. Please try again in a few "
              "minutes, or dial the USSD code from your phone.",
    },
    "signed_in": {
        "fr": "Numéro vérifié. Envoyez « déconnexion » pour quitter.",
        "en": "Number verified. Send \"logout\" to leave.",
    },
    "signed_out": {
        "fr": "Vous êtes déconnecté. Envoyez votre numéro pour vous reconnecter.",
        "en": "You are signed out. Send your number to sign in again.",
    },
    "guests_busy": {
        "fr": "Le service sans connexion est très demandé en ce moment. Merci de réessayer dans une minute.",
        "en": "The service without signing in is very busy right now. Please try again in a minute.",
    },
    "guests_busy_sign_in": {
        "fr": "Le service sans connexion est très demandé en ce moment. Merci de réessayer dans une minute, "
              "ou envoyez votre numéro de téléphone pour vous connecter.",
        "en": "The service without signing in is very busy right now. Please try again in a minute, "
              "or send your phone number to sign in.",
    },
    "error": {
        "fr": "Service momentanément indisponible. Merci de réessayer plus tard.",
        "en": "Service temporarily unavailable. Please try again later.",
    },
    "answered_before": {
        "fr": "Ce message a déjà reçu sa réponse. Envoyez 00 pour revenir au menu.",
        "en": "This message was already answered. Send 00 for the main menu.",
    },
}


def _utter(dispatcher: CollectingDispatcher, responses: list[dict[str, Any]]) -> None:
    for response in responses:
        dispatcher.utter_message(**response)


def _text(key: str, language: str | None, **values: str) -> str:
    text = TEXTS[key].get(language or "fr") or TEXTS[key]["fr"]
    return text.format(**values) if values else text


class ElecnetTurn(Action):
    """``action_elecnet_turn``: the customer's latest message through one engine hop."""

    def __init__(self, engine: Engine, channel: RasaChannel, sign_in: ChatSignIn | None = None,
                 guests: GuestBudget | None = None, ledger: AnswerLedger | None = None,
                 answers: DurableAnswers | None = None) -> None:
        self.engine = engine
        self.channel = channel
        self.sign_in = sign_in
        self.guests = guests
        self.ledger = ledger
        self.answers = answers

    def name(self) -> str:
        return ACTION_NAME

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        latest = tracker.latest_message if isinstance(tracker.latest_message, Mapping) else {}
        language = self.channel.language_hint(latest)
        try:
            turn = self.channel.parse(RasaMessage(tracker.sender_id, latest))
        except BadRequest as exc:
            log.info("rasa message refused: %s", exc)
            dispatcher.utter_message(text=_text("unreadable", language))
            return []
        repeat = self._repeat_key(turn, latest)
        if repeat is not None:
            before = await asyncio.to_thread(self._answered, repeat, language)
            if before is not None:
                # The chat server sent this message again: its answer again, nothing run (no second code).
                log.info("rasa repeat of an answered message sender=%s: answered again, not run", mask(turn.address))
                _utter(dispatcher, before)
                return []
        responses = await self._responses(tracker, latest, turn, language)
        if repeat is not None and self.ledger is not None:
            await asyncio.to_thread(self._keep, repeat, responses)
        _utter(dispatcher, responses)
        return []

    def _keep(self, repeat: str, responses: list[dict[str, Any]]) -> None:
        """The answer kept for the chat server's repeats: in the ledger, and as answered in the database."""
        assert self.ledger is not None
        self.ledger.keep(self.channel.channel, repeat, {"responses": responses})
        record_answered(self.answers, _durable_id(self.channel.channel, repeat), channel=self.channel.channel)

    def _repeat_key(self, turn: Turn, latest: Mapping[str, Any]) -> str | None:
        """What the answer to this message is kept under: the conversation as parsed (its sender with the customer
        its front channel vouched for, so a message id sent by anyone else finds nothing) and the message id the
        chat server gave it; ``None`` when it gave none (nothing can tell a repeat) or nothing keeps answers."""
        if self.ledger is None or latest.get("message_id") != turn.hop_id:
            return None
        return f"{turn.session_key}:{turn.hop_id}"

    def _answered(self, repeat: str, language: str | None) -> list[dict[str, Any]] | None:
        """The answer this message already had, or ``None`` when this delivery is the one to run it. Of deliveries
        arriving together one claims the message; the others wait for its answer, and without one in time say the
        service is unavailable (running it again could send a second code)."""
        assert self.ledger is not None
        channel = self.channel.channel
        for waited in range(_REPEAT_POLLS + 1):
            kept = self.ledger.recall(channel, repeat)
            if kept is not None and isinstance(kept.get("responses"), list):
                return list(kept["responses"])
            if waited == 0 and self.ledger.claim(channel, repeat):
                return self._durably_new(repeat, language)
            time.sleep(_REPEAT_POLL_SECONDS)
        return [{"text": _text("error", language)}]

    def _durably_new(self, repeat: str, language: str | None) -> list[dict[str, Any]] | None:
        """For a message this delivery claimed in the ledger: ``None`` when the database agrees it is new (claimed
        there too), else what to answer. After Redis restarted empty the ledger's claim proves nothing: answered
        before, it is said so; claimed by a delivery still running (or one that ended unanswered) or the database
        unable to say once the ledger forgot, the service is unavailable (running it could send a second code)."""
        assert self.ledger is not None
        durable = _durable_id(self.channel.channel, repeat)
        claim = Claim.TAKEN if answered_before(self.ledger, self.answers, durable) else claim_message(
            self.ledger, self.answers, durable, self.channel.channel)
        if claim is Claim.OURS:
            return None
        if claim is Claim.TAKEN:
            # Kept as this message's answer: the ledger's claim is this delivery's, later repeats read the answer.
            answer = [{"text": _text("answered_before", language)}]
            self.ledger.keep(self.channel.channel, repeat, {"responses": answer})
            return answer
        return [{"text": _text("error", language)}]

    async def _responses(self, tracker: Tracker, latest: Mapping[str, Any], turn: Turn,
                         language: str | None) -> list[dict[str, Any]]:
        """What the bot answers this message (``utter_message`` arguments, in order)."""
        said: list[str] = []
        if turn.customer is None:
            try:
                found = await asyncio.to_thread(self._unverified, RasaMessage(tracker.sender_id, latest), turn,
                                                language or self.engine.flows.menus.default_language)
            except Exception as exc:  # noqa: BLE001 - a store or the outbox is down: say so, keep nothing
                log.error("rasa sign-in failed sender=%s: %s", mask(turn.address), type(exc).__name__)
                return [{"text": _text("error", language)}]
            if isinstance(found, str):
                return [{"text": found}]
            turn, said = found
        responses: list[dict[str, Any]] = [{"text": text} for text in said]
        try:
            reply = await asyncio.to_thread(self.engine.handle, turn)
        except Exception as exc:  # noqa: BLE001 - the engine answers its own failures; this is worse: say sorry
            log.error("rasa hop failed sender=%s: %s", mask(turn.address), type(exc).__name__)
            return [{"text": _text("error", language)}]
        rendered = self.channel.render(reply)
        node = reply.screen.node if reply.screen else "-"
        log.info("rasa hop sender=%s node=%s end=%s", mask(turn.address), node, reply.end)
        if rendered.buttons:
            return [*responses, {"text": rendered.text, "buttons": rendered.buttons}]
        return [*responses, {"text": rendered.text}]

    def _unverified(self, message: RasaMessage, turn: Turn, language: str) -> str | tuple[Turn, list[str]]:
        """A message nobody vouched for: the turn to run (signed in here, or a guest's) with what to say
        first, or the answer to give instead."""
        can_sign_in = self.sign_in is not None and self.sign_in.allowed(turn.address)
        if can_sign_in:
            signed_in = self._signed_in(message, turn, language)
            if signed_in is not None:
                return signed_in
        elif ChatSignIn.names_number(turn.input or ""):
            # A number sent where the chat cannot sign in: say how to get a verified one.
            log.info("rasa message without a verified number sender=%s", mask(turn.address))
            return _text("unverified", language)
        guest = guest_turn(self.engine.flows.menus, turn)
        if guest is not None:
            if self.guests is not None and not self.guests.admit(turn.address):
                log.info("rasa guest conversation over the budget sender=%s", mask(turn.address))
                return _text("guests_busy_sign_in" if can_sign_in else "guests_busy", language)
            return guest, []
        log.info("rasa account journey without a verified number sender=%s", mask(turn.address))
        return _text("ask_number" if can_sign_in else "unverified", language)

    def _signed_in(self, message: RasaMessage, turn: Turn, language: str) -> str | tuple[Turn, list[str]] | None:
        """The turn of a conversation signed in here, with what to say first; or the sign-in's answer;
        ``None`` when the message is nothing to the sign-in (no number, no code awaited): a guest's."""
        assert self.sign_in is not None
        sender = turn.address
        msisdn = self.sign_in.customer(sender)
        if msisdn is not None:
            if (turn.input or "").casefold() in SIGN_OUT_WORDS:
                self.sign_in.sign_out(sender)
                log.info("rasa sign-out sender=%s user=%s", mask(sender), mask(msisdn))
                return _text("signed_out", language)
            return self.channel.parse(message, vouched=msisdn), []
        step = self.sign_in.step(sender, turn.input or "", language, client=self.channel.client_of(message))
        if step.text == "ask_number":
            return None
        if step.customer is None:
            log.info("rasa sign-in step sender=%s: %s", mask(sender), step.text)
            return _text(step.text, language, **step.values)
        log.info("rasa signed in sender=%s user=%s", mask(sender), mask(step.customer))
        # The code is no answer to a menu: the conversation starts at the main menu.
        fresh = replace(self.channel.parse(message, vouched=step.customer), input=None, intent=None)
        return fresh, [_text("signed_in", language)]


def _durable_id(channel: str, repeat: str) -> str:
    """What a chat message is claimed under in the database: a digest of the conversation (which may name the
    customer's number) and the message id."""
    return f"{channel}:{hashlib.sha256(repeat.encode()).hexdigest()[:48]}"


def build_executor(engine: Engine, channel: RasaChannel, sign_in: ChatSignIn | None = None,
                   guests: GuestBudget | None = None, ledger: AnswerLedger | None = None,
                   answers: DurableAnswers | None = None) -> ActionExecutor:
    """An executor holding exactly our actions (registered here, never by importing a package); ``ledger``
    keeps each message's answer, for the chat server's repeats of it, and ``answers`` (the database) whether it
    was answered once the ledger forgot."""
    engine.declare(channel.capabilities, channel.session_policy.idle_seconds,
                   channel.session_policy.key_ends_with_session)
    executor = ActionExecutor()
    executor.register_action(ElecnetTurn(engine, channel, sign_in, guests, ledger, answers))
    return executor
