"""The PIN gate's steps, one at a time, against the real PIN vault and outbox (SQLite): what the customer is
told (right, wrong with tries left, locked and for how long), the SMS they get and the security events.

Quick enough for ``make mutation``; ``tests/channels/test_ussd_pin.py`` walks the same paths over USSD.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.fernet import Fernet

from app.storage import SqlAccountLinks, SqlOutbox, SqlPinVault, make_sessions
from app.storage.outbox_seal import OutboxSeal
from app.storage.throttle import MemoryThrottle
from dialogs.backends import NotFound
from dialogs.codes import hash_code
from dialogs.registry import Deps, DialogRegistry, DialogSettings
from dialogs.security import MAX_PIN_CODE_SENDS, is_weak_pin, lock_label
from dialogs.stores import PinVerdict
from engine.security_audit import SecurityEvent
from engine.steps import StepContext, StepResult

NUMBER = "+221770000001"
PIN = "4821"
ACCOUNT, NEIGHBOUR, UNBILLED = "1000001", "2000002", "3000003"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class Bills:
    """The billing system's last bills: ours (``ACCOUNT``) and a neighbour's; any other account is not found."""

    def __init__(self) -> None:
        self.last = {ACCOUNT: Decimal(12500), NEIGHBOUR: Decimal(8000), UNBILLED: Decimal(0)}

    def verify_last_bill(self, account_number: str, amount: Decimal) -> bool:
        if account_number not in self.last:
            raise NotFound(account_number)
        return self.last[account_number] == amount


class Audit:
    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def record(self, event: SecurityEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.detail) for e in self.events]


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def deps(engine_db: str, audit: Audit) -> Deps:
    sessions = make_sessions(engine_db)
    links = SqlAccountLinks(sessions)
    links.link(NUMBER, ACCOUNT, "billing")
    return Deps(billing=Bills(), links=links, preferences=None, pins=SqlPinVault(sessions),  # type: ignore[arg-type]
                outbox=SqlOutbox(sessions, OutboxSeal([Fernet.generate_key()])), security=audit,
                throttle=MemoryThrottle())


@pytest.fixture
def with_pin(deps: Deps) -> Deps:
    assert deps.pins is not None
    deps.pins.set_pin(NUMBER, PIN)
    return deps


def run(deps: Deps, name: str, data: dict[str, Any] | None = None, secrets: dict[str, str] | None = None,
        now: datetime = NOW, user: str = NUMBER, params: dict[str, Any] | None = None,
        language: str = "fr", channel: str = "ussd", session: str = "ussd:s1") -> StepResult:
    step = DialogRegistry(deps).get(name)
    assert step is not None, name
    return step(StepContext(user_id=user, channel=channel, language=language, session_key=session,
                            data=MappingProxyType(data or {}), params=MappingProxyType(params or {}),
                            secrets=MappingProxyType(secrets or {}), now=now))


def pin(deps: Deps, typed: str, now: datetime = NOW, gate: str = "pay_initiate") -> StepResult:
    return run(deps, "security.check_pin", {"pin_next": gate, "account_number": "1000001"}, {"pin": typed}, now)


def sms(deps: Deps) -> list[tuple[str, dict[str, Any]]]:
    assert isinstance(deps.outbox, SqlOutbox)
    return [(e["kind"], e["payload"]) for e in deps.outbox.pending()]


def test_the_gate_remembers_where_it_leads_and_forgets_an_earlier_pass(deps):
    asked = run(deps, "security.require_pin", {"pin_verified": "pay_initiate"}, params={"next": "pref_pin_new"})
    assert asked.outcome == "ok"
    assert asked.data == {"pin_next": "pref_pin_new", "pin_verified": None}


def test_the_right_pin_opens_the_gate_it_was_asked_for(with_pin, audit):
    passed = pin(with_pin, PIN, gate="pay_initiate")
    assert passed.outcome == "ok"
    assert passed.data == {"pin_verified": "pay_initiate", "pin_attempts_left": None}
    assert audit.events == []


def test_wrong_pins_count_down_then_lock_for_fifteen_minutes_with_one_sms(with_pin, audit):
    assert (pin(with_pin, "0000").outcome, pin(with_pin, "0000").data) == ("wrong", {"pin_attempts_left": 1})
    assert [k for k, _ in audit.kinds()] == ["pin_failed", "pin_failed"]
    assert audit.events[0].subject == NUMBER and audit.events[0].account == "1000001"
    assert audit.events[0].channel == "ussd"
    locked = pin(with_pin, "0000")
    assert locked.outcome == "locked"
    assert locked.data == {"pin_lock": "lock_15m", "pin_locked_until": (NOW + timedelta(minutes=15)).isoformat(),
                           "security_notices": 1}
    assert audit.kinds()[2:] == [("pin_failed", ""), ("pin_locked", "lock_15m")]
    assert sms(with_pin) == [("pin_locked", {"lock": "lock_15m"})]
    # While locked, even the right PIN is not checked, and nothing more is said or sent.
    again = pin(with_pin, PIN, NOW + timedelta(minutes=14))
    assert again.outcome == "locked" and again.data["pin_lock"] == "lock_15m"
    assert len(audit.events) == 4 and len(sms(with_pin)) == 1
    assert pin(with_pin, PIN, NOW + timedelta(minutes=15)).outcome == "ok"


def test_the_first_wrong_pin_leaves_two_tries(with_pin):
    assert pin(with_pin, "0000").data == {"pin_attempts_left": 2}


def test_a_right_pin_gives_back_every_try(with_pin):
    """The planted bug "PIN counter never reset": one mistake a month must never add up to a lock."""
    for _ in range(3):
        assert pin(with_pin, "0000").outcome == "wrong"
        assert pin(with_pin, PIN).outcome == "ok"
    assert pin(with_pin, "0000").data == {"pin_attempts_left": 2}


def test_lockouts_in_a_row_grow_until_only_an_agent_can_unlock(with_pin):
    at, told = NOW, []
    for dial in range(4):
        for _ in range(3):
            last = run(with_pin, "security.check_pin", {"pin_next": "pay_initiate"}, {"pin": "0000"}, at,
                       session=f"ussd:dial{dial}")
        told.append((last.outcome, last.data["pin_lock"]))
        until = last.data["pin_locked_until"]
        at = datetime.fromisoformat(until) + timedelta(seconds=1) if last.outcome == "locked" else at
    assert told == [("locked", "lock_15m"), ("locked", "lock_1h"), ("locked", "lock_24h"), ("locked_agent", "agent")]
    assert [p["lock"] for _, p in sms(with_pin)] == ["lock_15m", "lock_1h", "lock_24h", "agent"]


def test_a_locked_pin_is_said_before_it_is_asked(with_pin):
    assert run(with_pin, "security.pin_status", {"pin_proof": "first"}).data == {"pin_proof": None}
    assert run(with_pin, "security.pin_status").outcome == "set"
    for _ in range(3):
        pin(with_pin, "0000")
    status = run(with_pin, "security.pin_status", now=NOW + timedelta(minutes=1))
    assert (status.outcome, status.data["pin_lock"]) == ("locked", "lock_15m")
    assert run(with_pin, "security.pin_status", now=NOW + timedelta(minutes=16)).outcome == "set"


def test_a_number_without_a_pin_is_asked_to_choose_one(deps):
    assert run(deps, "security.pin_status").outcome == "not_set"
    assert pin(deps, PIN).outcome == "not_set"


@pytest.mark.parametrize(("lockouts", "label"), [(0, "agent"), (1, "lock_15m"), (2, "lock_1h"), (3, "lock_24h"),
                                                 (4, "agent")])
def test_each_lockout_names_how_long_it_lasts(lockouts, label):
    assert lock_label(PinVerdict("locked", lockouts=lockouts)) == label


@pytest.mark.parametrize(("candidate", "weak"), [
    ("1234", True), ("2580", True), ("7777", True), ("3456", True), ("8765", True), ("1987", True),
    ("2011", True), ("0001", True),   # the end of the phone number
    ("6001", True),                   # the end of an account number
    ("4821", False), ("7395", False), ("2100", False), ("9182", False), ("3579", False), ("7337", False)])
def test_a_pin_too_easy_to_guess_is_refused(candidate, weak):
    assert is_weak_pin(candidate, ["+221 77 000 0001", "1006001", ""]) is weak


def test_nothing_typed_for_the_pin_is_a_wrong_pin_and_counts(with_pin, audit):
    missed = run(with_pin, "security.check_pin", {"pin_next": "pay_initiate"}, {})
    assert (missed.outcome, missed.data) == ("wrong", {"pin_attempts_left": 2})
    assert audit.kinds() == [("pin_failed", "")]
    assert pin(with_pin, "0000").data == {"pin_attempts_left": 1}


# ---------------------------------------------------------------- choosing a PIN
def test_a_first_pin_after_the_proof_is_set_told_by_sms_and_opens_the_gate(deps, audit):
    proof = {"pin_proof": "first", "pin_next": "pay_initiate", "account_number": "1000001"}
    assert run(deps, "security.stage_pin", proof, {"new_pin": "1234"}).outcome == "weak"
    assert run(deps, "security.stage_pin", proof, {"new_pin": "6001"}, params={}).outcome == "ok"
    assert run(deps, "security.confirm_pin", proof, {"pin": "6002"}).outcome == "mismatch"
    assert run(deps, "security.stage_pin", proof, {"new_pin": "7395"}).outcome == "ok"
    done = run(deps, "security.confirm_pin", proof, {"pin": "7395"})
    assert done.outcome == "ok"
    assert done.data == {"pin_verified": "pay_initiate", "pin_proof": None, "security_notices": 1}
    assert audit.kinds() == [("pin_set", "")]
    assert sms(deps) == [("pin_set", {})]
    assert pin(deps, "7395").outcome == "ok"


def test_a_pin_ending_like_one_of_the_callers_accounts_is_weak(deps):
    proof = {"pin_proof": "first", "accounts": [{"account_number": "2009173"}, "junk"],
             "reset_account_number": "3004455"}
    assert run(deps, "security.stage_pin", proof, {"new_pin": "9173"}).outcome == "weak"
    assert run(deps, "security.stage_pin", proof, {"new_pin": "4455"}).outcome == "weak"


def test_a_forgotten_pin_reset_unlocks_and_is_audited(with_pin, audit):
    for _ in range(3):
        pin(with_pin, "0000")
    proof = {"pin_proof": "reset", "pin_next": "pay_initiate"}
    assert run(with_pin, "security.stage_pin", proof, {"new_pin": "7395"}).outcome == "ok"
    done = run(with_pin, "security.confirm_pin", proof, {"pin": "7395"}, now=NOW + timedelta(minutes=1))
    assert done.outcome == "reset" and done.data["pin_verified"] == "pay_initiate"
    assert audit.kinds()[-2:] == [("pin_reset", ""), ("pin_unlocked", "reset by the holder")]
    assert [k for k, _ in sms(with_pin)] == ["pin_locked", "pin_reset"]
    assert pin(with_pin, "7395", NOW + timedelta(minutes=2)).outcome == "ok"


def test_a_pin_changed_twice_is_two_sms(with_pin, audit):
    passed = {"pin_next": "pref_pin_new", "pin_verified": "pref_pin_new"}
    for at, new in ((NOW, "7395"), (NOW + timedelta(hours=1), "9182")):
        assert run(with_pin, "security.stage_pin", passed, {"new_pin": new}, now=at).outcome == "ok"
        done = run(with_pin, "security.confirm_pin", passed, {"pin": new}, now=at)
        assert done.outcome == "ok"
        passed["security_notices"] = done.data["security_notices"]   # kept by the session between the two
    assert audit.kinds() == [("pin_changed", ""), ("pin_changed", "")]
    assert [k for k, _ in sms(with_pin)] == ["pin_changed", "pin_changed"]


def test_a_confirmation_run_again_answers_as_before_and_tells_no_one_else_what_the_pin_is(with_pin, audit):
    passed = {"pin_next": "pref_pin_new", "pin_verified": "pref_pin_new"}
    assert run(with_pin, "security.stage_pin", passed, {"new_pin": "7395"}).outcome == "ok"
    first = run(with_pin, "security.confirm_pin", passed, {"pin": "7395"})
    # The same hop again, its session as before it (the save lost): the same answer, nothing done twice.
    again = run(with_pin, "security.confirm_pin", passed, {"pin": "7395"})
    assert (again.outcome, again.data) == (first.outcome, first.data)
    assert audit.kinds() == [("pin_changed", "")] and [k for k, _ in sms(with_pin)] == ["pin_changed"]
    # Nothing staged elsewhere says nothing of the PIN: another conversation, or this one once saved.
    assert run(with_pin, "security.confirm_pin", passed, {"pin": "7395"}, session="ussd:s2").outcome == "mismatch"
    saved = {**passed, **first.data, "pin_verified": "pref_pin_new"}
    assert run(with_pin, "security.confirm_pin", saved, {"pin": "7395"}).outcome == "mismatch"
    assert run(with_pin, "security.confirm_pin", passed, {"pin": "6002"}).outcome == "mismatch"
    assert pin(with_pin, "0000").data == {"pin_attempts_left": 2}     # none of these counted a try


def test_a_pin_ending_like_the_current_account_is_weak(deps):
    proof = {"pin_proof": "first", "account_number": "2009173"}
    assert run(deps, "security.stage_pin", proof, {"new_pin": "9173"}).outcome == "weak"
    assert run(deps, "security.stage_pin", proof, {"new_pin": "7395"}).outcome == "ok"


def test_nothing_typed_for_a_new_pin_is_refused_as_weak_and_nothing_is_staged(deps):
    proof = {"pin_proof": "first", "pin_next": "pay_initiate"}
    assert run(deps, "security.stage_pin", proof, {}).outcome == "weak"
    assert run(deps, "security.confirm_pin", proof, {"pin": ""}).outcome == "mismatch"
    assert run(deps, "security.pin_status").outcome == "not_set"


def test_nothing_typed_to_confirm_a_new_pin_is_a_mismatch_and_the_old_pin_stays(with_pin, audit):
    passed = {"pin_next": "pref_pin_new", "pin_verified": "pref_pin_new"}
    assert run(with_pin, "security.stage_pin", passed, {"new_pin": "7395"}).outcome == "ok"
    assert run(with_pin, "security.confirm_pin", passed, {}).outcome == "mismatch"
    assert audit.events == [] and sms(with_pin) == []
    assert pin(with_pin, PIN).outcome == "ok"


# ---------------------------------------------------------------- the last bill as proof (first PIN, reset)
def prove(deps: Deps, data: dict[str, Any], purpose: str | None = None, user: str = NUMBER) -> StepResult:
    return run(deps, "security.prove_holder", data, params={"purpose": purpose} if purpose else {}, user=user)


def test_a_first_pin_needs_the_last_bill_of_the_current_account(deps, audit):
    wrong = prove(deps, {"account_number": ACCOUNT, "pin_proof_amount": "12000"}, "first")
    assert (wrong.outcome, wrong.data) == ("mismatch", {"pin_proof": None})
    assert audit.kinds() == [("link_refused", "pin first: last bill not matched")]
    assert (audit.events[0].subject, audit.events[0].account) == (NUMBER, ACCOUNT)
    right = prove(deps, {"account_number": ACCOUNT, "pin_proof_amount": "12500"})   # "first" when unsaid
    assert (right.outcome, right.data) == ("ok", {"pin_proof": "first", "pin_proven": "first:1000001:12500"})
    assert len(audit.events) == 1


def test_a_first_pin_without_a_current_account_is_not_proved(deps, audit):
    assert prove(deps, {"pin_proof_amount": "12500"}, "first").outcome == "mismatch"
    assert audit.kinds() == [("link_refused", "pin first: last bill not matched")]
    assert audit.events[0].account == ""          # the refusal names no account


def test_no_amount_typed_proves_nothing_even_for_an_account_whose_last_bill_was_zero(deps, audit):
    assert prove(deps, {"account_number": UNBILLED}, "first").outcome == "mismatch"
    assert audit.kinds() == [("link_refused", "pin first: last bill not matched")]


def test_a_reset_without_an_account_typed_is_not_proved(deps, audit):
    assert prove(deps, {"account_number": ACCOUNT, "pin_proof_amount": "12500"}, "reset").outcome == "mismatch"
    assert audit.kinds() == [("link_refused", "pin reset: last bill not matched")]
    assert audit.events[0].account == ""          # not the current account: no account was typed


def test_a_reset_needs_one_of_the_callers_own_accounts_and_its_last_bill(deps, audit):
    # The neighbour's account with its right amount: not the caller's, answered as a wrong amount.
    theirs = prove(deps, {"account_number": ACCOUNT, "reset_account_number": NEIGHBOUR, "pin_proof_amount": "8000"},
                   "reset")
    assert (theirs.outcome, theirs.data) == ("mismatch", {"pin_proof": None})
    assert audit.kinds() == [("link_refused", "pin reset: last bill not matched")]
    assert audit.events[0].account == NEIGHBOUR
    assert prove(deps, {"reset_account_number": ACCOUNT, "pin_proof_amount": "12000"}, "reset").outcome == "mismatch"
    ours = prove(deps, {"reset_account_number": ACCOUNT, "pin_proof_amount": "12500"}, "reset")
    assert (ours.outcome, ours.data) == ("ok", {"pin_proof": "reset", "pin_proven": "reset:1000001:12500"})
    # The neighbour, calling from their own number, may not reset with our account either.
    assert prove(deps, {"reset_account_number": ACCOUNT, "pin_proof_amount": "12500"}, "reset",
                 user="+221770000002").outcome == "mismatch"


def test_last_bill_proofs_are_throttled_per_phone_even_with_the_right_amount(deps, audit):
    for _ in range(6):
        assert prove(deps, {"reset_account_number": ACCOUNT, "pin_proof_amount": "1"}, "reset").outcome == "mismatch"
    late = prove(deps, {"reset_account_number": ACCOUNT, "pin_proof_amount": "12500"}, "reset")
    assert (late.outcome, late.data) == ("locked", {"pin_proof": None})
    assert audit.kinds()[-1] == ("link_refused", "pin reset: throttled")


def test_last_bill_proofs_are_throttled_per_account_whatever_the_phone(deps, audit):
    # Six phones each guess the account's last bill once: the account's day is spent, for a seventh phone
    # too, even with the right amount (and for its holder: the cap protects the account, not the caller).
    for n in range(6):
        guess = prove(deps, {"account_number": ACCOUNT, "pin_proof_amount": str(1000 + n)}, "first",
                      user=f"+22177000010{n}")
        assert guess.outcome == "mismatch"
    seventh = prove(deps, {"account_number": ACCOUNT, "pin_proof_amount": "12500"}, "first", user="+221770000199")
    assert (seventh.outcome, seventh.data) == ("locked", {"pin_proof": None})
    assert prove(deps, {"account_number": ACCOUNT, "pin_proof_amount": "12500"}, "first").outcome == "locked"
    assert audit.kinds()[-2:] == [("link_refused", "pin first: throttled")] * 2
    # Another account's proof is not held back by this one's guesses.
    assert prove(deps, {"account_number": NEIGHBOUR, "pin_proof_amount": "8000"}, "first",
                 user="+221770000002").outcome == "ok"


# ---------------------------------------------------------------- a code by SMS for a first PIN
def test_a_code_by_sms_proves_the_phone_three_codes_at_most(deps: Deps, audit: Audit) -> None:
    data: dict[str, Any] = {}
    for sends in range(1, MAX_PIN_CODE_SENDS + 1):             # each once the one before has expired
        sent = run(deps, "security.send_pin_code", data, now=NOW + timedelta(minutes=10 * sends))
        assert sent.outcome == "sent"
        assert (sent.data["pin_code_sends"], sent.data["pin_code_tries"]) == (sends, 0)
        assert "$" in sent.data["pin_code_hash"]
        data = {**data, **sent.data}
    codes = sms(deps)
    assert [k for k, _ in codes] == ["pin_code"] * 3 and len({p["code"] for _, p in codes}) >= 2
    assert all(len(p["code"]) == 6 and p["code"].isdigit() for _, p in codes)
    over = run(deps, "security.send_pin_code", data, now=NOW + timedelta(minutes=50))
    assert (over.outcome, over.data) == ("locked", {"pin_code_hash": None})
    # Each code sent is audited once; the fourth, refused, is the failure.
    assert audit.kinds() == [("code_sent", "first-PIN code sent")] * 3 + [("pin_failed", "first-PIN codes exhausted")]
    assert len(sms(deps)) == 3


def test_a_code_still_valid_is_not_sent_again_when_the_conversation_comes_back_to_it(deps):
    # A resumed conversation enters the step again: a second code would void the one the customer holds.
    sent = run(deps, "security.send_pin_code", {})
    again = run(deps, "security.send_pin_code", dict(sent.data), now=NOW + timedelta(minutes=2))
    assert (again.outcome, again.data) == ("sent", {})
    assert len(sms(deps)) == 1
    later = run(deps, "security.send_pin_code", dict(sent.data), now=NOW + timedelta(minutes=3))
    assert later.outcome == "sent" and later.data["pin_code_sends"] == 2 and len(sms(deps)) == 2


def test_the_code_says_it_works_as_long_as_the_conversation_that_asked_for_it(deps):
    # The hash stays in the conversation: a code asked in a 5-minute conversation is valid 5 minutes, one asked
    # where a conversation lasts 3 minutes (or on a channel not listed: the default) 3, a part minute counted.
    deps = replace(deps, settings=DialogSettings(session_seconds={"chat": 300, "slow": 181},
                                                 default_session_seconds=180))
    for sent, channel in enumerate(("chat", "ussd", "slow")):
        assert run(deps, "security.send_pin_code", {"pin_code_sends": sent}, channel=channel).outcome == "sent"
    assert [(kind, sorted(p), p["minutes"]) for kind, p in sms(deps)] == [
        ("pin_code", ["code", "minutes"], 5), ("pin_code", ["code", "minutes"], 3),
        ("pin_code", ["code", "minutes"], 4)]


def test_a_number_gets_its_codes_of_the_day_over_every_session_then_none(deps, audit):
    # Each new session starts its own count of 3; the number's day does not: 6 (the default), then none.
    sent = [run(deps, "security.send_pin_code", {"account_number": "3000001"}, session=f"ussd:s{n}").outcome
            for n in range(8)]
    assert sent == ["sent"] * 6 + ["capped"] * 2
    assert len(sms(deps)) == 6
    capped = run(deps, "security.send_pin_code", {"pin_code_sends": 1, "pin_code_hash": "x"})
    assert (capped.outcome, capped.data) == ("capped", {"pin_code_hash": None})   # the session's sends unchanged
    once = "first-PIN codes: more than 6 today for this number: refused till the day ends"
    # Six codes sent, each audited once; the refusal once, however many redials.
    assert audit.kinds() == [("code_sent", "first-PIN code sent")] * 6 + [("pin_failed", once)]
    assert {(e.subject, e.account) for e in audit.events} == {(NUMBER, "3000001")}
    assert run(deps, "security.send_pin_code", user="+221770000033").outcome == "sent"   # another number
    more = replace(deps, settings=DialogSettings(pin_codes_per_day=20))     # PIN_CODES_PER_DAY raised
    assert run(more, "security.send_pin_code").outcome == "sent"


def test_no_code_is_sent_to_nobody(deps):
    assert run(deps, "security.send_pin_code", user="").outcome == "locked"
    assert sms(deps) == []


def test_the_steps_cannot_be_wired_without_their_counter(deps):
    # The last bill's amount, the PIN codes by SMS, the e-mail and undo codes are guessed against limits the
    # throttle counts: a wiring that forgets it fails when it is built, before any caller can guess uncapped.
    with pytest.raises(TypeError):
        Deps(billing=Bills(), links=deps.links, preferences=None)  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError, match="Deps.throttle must be a Throttle"):
        replace(deps, throttle=None)
    assert sms(deps) == []


def test_the_code_typed_back_gives_the_first_pin_proof(deps, audit):
    data = {"pin_code_hash": hash_code("123456"), "pin_code_tries": 0}
    ok = run(deps, "security.check_pin_code", data, {"pin_code": "123456"})
    assert (ok.outcome, ok.data) == ("ok", {"pin_proof": "first", "pin_code_hash": None, "pin_code_tries": None,
                                            "pin_code_tries_left": None})
    assert audit.events == []


def test_three_wrong_codes_lock_the_first_pin(deps: Deps, audit: Audit) -> None:
    data: dict[str, Any] = {"pin_code_hash": hash_code("123456")}
    for tries in (1, 2):
        wrong = run(deps, "security.check_pin_code", data, {"pin_code": "654321"})
        assert (wrong.outcome, wrong.data) == ("wrong", {"pin_code_tries": tries, "pin_code_tries_left": 3 - tries})
        data["pin_code_tries"] = tries
    last = run(deps, "security.check_pin_code", data, {"pin_code": "000000"})
    assert (last.outcome, last.data) == ("locked", {"pin_code_hash": None})
    assert audit.kinds() == [("pin_failed", "wrong first-PIN code")] * 3
    data["pin_code_tries"] = 3
    for context in (data, {}):   # past the tries, or no code sent: locked, and no code kept
        late = run(deps, "security.check_pin_code", context, {"pin_code": "123456"})
        assert (late.outcome, late.data) == ("locked", {"pin_code_hash": None})


def test_nothing_typed_for_the_code_is_a_wrong_code(deps):
    wrong = run(deps, "security.check_pin_code", {"pin_code_hash": hash_code("123456")}, {})
    assert (wrong.outcome, wrong.data) == ("wrong", {"pin_code_tries": 1, "pin_code_tries_left": 2})


def test_the_code_and_the_lock_sms_speak_the_customers_language(with_pin):
    assert run(with_pin, "security.send_pin_code", language="en").outcome == "sent"
    for _ in range(3):
        run(with_pin, "security.check_pin", {"pin_next": "pay_initiate"}, {"pin": "0000"}, language="en")
    assert with_pin.outbox is not None
    assert [(e["kind"], e["language"], e["msisdn"]) for e in with_pin.outbox.pending()] == [
        ("pin_code", "en", NUMBER), ("pin_locked", "en", NUMBER)]
