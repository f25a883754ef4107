# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""Signing in inside the chat: a web chat visitor with no front-channel claim sends a phone number, gets a
code by SMS (through the outbox and the fake Africa's Talking on loopback), types it, and reaches the
account; until the conversation idles out, signs out, or the number signs in to another conversation.
The Rasa server's calls go to our action server as in ``test_rasa_actions``; conversations read like chats."""

from __future__ import annotations

import logging

# The chat visitor's fixtures, shared with test_rasa_guests (pytest finds them by name here).
from .rasa_visitor import AWA, GUEST_FR, action_app, chat_settings, code_in, security_events, sms, visitor  # noqa: F401


def test_a_visitor_signs_in_with_a_code_by_sms_reads_the_balance_and_signs_out(visitor, sms):
    awa = visitor()
    assert awa.say("mon solde", intent="check_balance") == (
        "Pour accéder à votre compte, envoyez votre numéro de téléphone : nous vous enverrons un code par SMS.")
    assert awa.say("77 000 00 01") == ("Un code a été envoyé par SMS au +2217*****001. Tapez-le ici "
                                       "(valable 5 minutes).")
    message = sms(AWA)[-1]
    assert message.startswith("ElecNet: votre code pour la discussion en ligne est ")
    code = code_in(message)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert awa.say(wrong) == "Code incorrect. Vérifiez le SMS et réessayez."
    assert awa.say("quoi ?") == ("Tapez le code à 6 chiffres envoyé par SMS au +2217*****001 (valable 5 minutes), "
                                 "ou envoyez un autre numéro.")
    assert awa.answers(code) == ["Numéro vérifié. Envoyez « déconnexion » pour quitter.", "ElecNet - 1000001"]
    assert awa.press("Solde et factures").startswith("Compte 1000001\nÀ payer: 12 500 FCFA")
    assert awa.say("déconnexion") == "Vous êtes déconnecté. Envoyez votre numéro pour vous reconnecter."
    assert awa.say("1") == GUEST_FR     # a guest's menu again: what needs no account
    # The code worked once: typed again after signing out, it opens nothing.
    assert awa.say(code).startswith("Ce numéro n'est pas valide")


def test_in_english_with_the_number_in_international_form(visitor, sms):
    awa = visitor(language="en")
    assert awa.say("+221 77 000 00 01") == "A code was sent by SMS to +2217*****001. Type it here (valid 5 minutes)."
    assert awa.answers(code_in(sms(AWA)[-1]))[0] == 'Number verified. Send "logout" to leave.'
    assert awa.say("logout") == "You are signed out. Send your number to sign in again."


def test_three_wrong_codes_and_the_code_is_given_up(visitor, sms):
    awa = visitor()
    awa.say("770000001")
    code = code_in(sms(AWA)[-1])
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    assert awa.say(wrong).startswith("Code incorrect")
    assert awa.say(wrong).startswith("Code incorrect")
    assert awa.say(wrong) == ("Ce code n'est plus valable. Envoyez à nouveau votre numéro pour recevoir un "
                              "nouveau code.")
    assert awa.say(code).startswith("Ce numéro n'est pas valide")


def test_the_chat_server_sending_a_message_again_gets_the_same_answer_and_no_second_code(visitor, sms):
    awa = visitor()
    sent = "Un code a été envoyé par SMS au +2217*****001. Tapez-le ici (valable 5 minutes)."
    assert awa.say("77 000 00 01", message_id="number-1") == sent
    assert awa.say("77 000 00 01", message_id="number-1") == sent      # the chat server's repeat
    [message] = sms(AWA)                                                  # one SMS: its code is the live one
    code = code_in(message)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    # One wrong try, however often it is repeated: three would have given the code up.
    for _ in range(3):
        assert awa.say(wrong, message_id="wrong-1") == "Code incorrect. Vérifiez le SMS et réessayez."
    signed_in = ["Numéro vérifié. Envoyez « déconnexion » pour quitter.", "ElecNet - 1000001"]
    assert awa.answers(code, message_id="code-1") == signed_in
    assert awa.answers(code, message_id="code-1") == signed_in
    assert len(sms(AWA)) == 1


def test_a_number_abroad_or_no_number_gets_no_sms(visitor, sms, provider):
    stranger = visitor()
    assert stranger.say("+33 6 12 34 56 78") == ("Les codes ne sont envoyés qu'aux numéros du pays. Envoyez "
                                                "votre numéro local.")
    assert stranger.say("1234567") == "Ce numéro n'est pas valide. Envoyez votre numéro de téléphone."
    assert stranger.say("12") == GUEST_FR
    assert stranger.say("mon solde", intent="check_balance").startswith("Pour accéder à votre compte")
    sms(AWA)
    assert provider.sent == []


def test_codes_for_one_number_are_limited_across_conversations(visitor, sms, action_app):
    for _ in range(3):
        assert visitor().say("770000001").startswith("Un code a été envoyé")
    for _ in range(20):
        assert visitor().say("770000001") == "Trop de tentatives. Merci de réessayer dans 15 minutes."
    assert len(sms(AWA)) == 3
    # Each refusal counted in the metrics; one row in the audit for the number's window.
    assert [e for e in security_events(action_app, AWA) if e[0] == "sign_in_throttled"] == [
        ("sign_in_throttled", "rasa", "code request: more than 3 for this number in 15 min: refused till it ends")]
    assert action_app.ctx.metrics.registry.get_sample_value(
        "sign_in_throttled_total", {"channel": "rasa", "attempt": "request"}) == 20


def test_the_chat_sign_in_is_audited_under_the_webs_names_with_the_channel_saying_it_was_the_chat(
        visitor, sms, action_app):
    awa = visitor()
    awa.say("770000001")
    code = code_in(sms(AWA)[-1])
    awa.say(f"{(int(code) + 1) % 1_000_000:06d}")
    awa.answers(code)
    awa.say("déconnexion")
    assert security_events(action_app, AWA) == [
        ("code_sent", "rasa", ""), ("sign_in_refused", "rasa", "wrong code"), ("sign_in", "rasa", ""),
        ("sign_out", "rasa", "")]


def test_signing_in_to_another_conversation_closes_the_first(visitor, sms):
    laptop, phone = visitor(), visitor()
    laptop.say("770000001")
    laptop.answers(code_in(sms(AWA)[-1]))
    assert laptop.press("Solde et factures").startswith("Compte 1000001")
    phone.say("770000001")
    assert phone.answers(code_in(sms(AWA)[-1]))[1] == "ElecNet - 1000001"
    assert laptop.say("1") == GUEST_FR
    assert laptop.say("solde", intent="check_balance").startswith("Pour accéder à votre compte")


def test_a_short_conversation_id_cannot_be_signed_in_and_a_claim_still_works(visitor, sms, provider):
    # A platform's user id (short, and sendable by anyone through another channel of the same Rasa server).
    guessable = visitor(sender_id="12345678")
    assert guessable.say("770000001").startswith("Pour consulter votre compte ici, ouvrez la discussion")
    sms(AWA)
    assert provider.sent == []


def test_the_code_and_the_number_are_in_no_log_line(visitor, sms, caplog):
    caplog.set_level(logging.DEBUG)
    awa = visitor()
    awa.say("770000001")
    code = code_in(sms(AWA)[-1])
    awa.answers(code)
    # Ours: the back office's own server (the utility's system, in this process for the test) logs its way.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert code not in logged
    assert "770000001" not in logged and awa.sender_id not in logged
