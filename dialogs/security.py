"""The PIN gate in front of sensitive steps (payment, deferral, token purchase, PIN change).

A journey sends the customer through the shared ``pin_gate`` nodes with
``security.require_pin`` (param ``next``: the node to reach once the PIN is right). The
protected step then calls ``pin_passed(ctx, "<its node>")`` and clears the mark, so each
sensitive action needs its own PIN entry. PIN values only ever travel in ``ctx.secrets``.

Choosing a PIN needs a proof: the PIN gate itself (a change), or the amount of the last bill
(a first PIN, a forgotten PIN) under the same throttle as account linking. A locked PIN is
announced before the PIN is asked. The customer is told by SMS (an outbox row) when a PIN is
set, changed, reset or locked; each of these is a security event.

A prepaid meter's first PIN rests on a code by SMS to the number instead: 3 a session, and
``DialogSettings.pin_codes_per_day`` a day to one number across its sessions (a redial would otherwise buy
3 more SMS each time, to one's own phone or a SIM-swapped one). Past the day's, no SMS goes, the caller is
sent to customer service, and the first refusal of the day is a security event (``engine.audit_once``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.audit_once import record_once
from engine.masking import mask
from engine.security_audit import SecurityEvent
from engine.steps import StepContext, StepResult

from .account import last_bill_proof
from .codes import code_matches, code_still_out, hash_code, issue_code
from .registry import Deps, step
from .stores import PinVerdict

# Each step is marked by ``step(...)(function)`` after its definition, not by a decorator: mutmut
# (``make mutation``) leaves decorated functions unmutated, and these steps are the money and identity
# paths it guards.
__all__ = ["WEAK_PINS", "is_weak_pin", "lock_label", "pin_passed"]

WEAK_PINS = frozenset({"0000", "1111", "2222", "3333", "4444", "5555", "6666", "7777", "8888", "9999",
                       "1234", "4321", "0123", "1212", "2580"})
_ASCENDING, _DESCENDING = "0123456789", "9876543210"


def is_weak_pin(pin: str, known_numbers: list[str]) -> bool:
    """Too easy to guess: a listed PIN, one digit repeated, a run up or down, a year 19xx/20xx, or the
    last digits of the phone or an account number (``known_numbers``)."""
    if pin in WEAK_PINS or len(set(pin)) == 1 or pin in _ASCENDING or pin in _DESCENDING:
        return True
    if pin[:2] in ("19", "20"):
        return True
    digits = ["".join(c for c in n if c.isdigit()) for n in known_numbers]
    return any(d.endswith(pin) for d in digits if d)


def lock_label(verdict: PinVerdict) -> str:
    """The label key naming how long the lock lasts; ``agent`` when only an agent can lift it."""
    return {1: "lock_15m", 2: "lock_1h", 3: "lock_24h"}.get(verdict.lockouts, "agent")


def pin_passed(ctx: StepContext, gate: str) -> bool:
    """True when the PIN was checked in this session for the protected node ``gate``."""
    return ctx.data.get("pin_verified") == gate


def _may_choose_pin(ctx: StepContext, deps: Deps) -> bool:
    """A new PIN needs the last-bill proof (first PIN, reset) or, to change it, the PIN gate passed."""
    assert deps.pins is not None
    if ctx.data.get("pin_proof") in ("first", "reset"):
        return True
    return deps.pins.is_set(ctx.user_id) and ctx.data.get("pin_verified") == "pref_pin_new"


def _event(ctx: StepContext, deps: Deps, kind: str, detail: str = "") -> None:
    deps.security.record(SecurityEvent(kind, ctx.channel, ctx.user_id, ctx.data.get("account_number"), detail))


def _tell(ctx: StepContext, deps: Deps, kind: str, payload: dict[str, str]) -> dict[str, int]:
    """Tell the customer of a security event; what the session keeps of it (to merge into the step's result).

    Keyed on the event: this conversation and the notices it gave before (a counter in the session), as
    ``pin_code`` is, not on the hop's time (a hop run again has another) nor on the session key (a chat
    channel's is the sender's, used again by each of their conversations)."""
    told = _next_notice(ctx)
    if deps.outbox is not None:
        deps.outbox.add(kind=kind, msisdn=ctx.user_id, language=ctx.language, payload=payload,
                        dedupe_key=_notice_key(ctx, kind, told))
    return {"security_notices": told}


def _next_notice(ctx: StepContext) -> int:
    return int(ctx.data.get("security_notices", 0)) + 1


def _notice_key(ctx: StepContext, kind: str, told: int) -> str:
    return f"{kind}:{ctx.conversation_id}:{told}"


def _locked(verdict: PinVerdict, told: dict[str, int] | None = None) -> StepResult:
    label = lock_label(verdict)
    until = verdict.locked_until.isoformat() if isinstance(verdict.locked_until, datetime) else None
    return StepResult("locked_agent" if label == "agent" else "locked",
                      {"pin_lock": label, "pin_locked_until": until, **(told or {})})


def require_pin(ctx: StepContext, deps: Deps) -> StepResult:
    return StepResult("ok", {"pin_next": str(ctx.params["next"]), "pin_verified": None})


step("security.require_pin", outcomes={"ok"})(require_pin)


def pin_status(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    locked = deps.pins.lock_state(ctx.user_id, ctx.now)
    if locked is not None:   # said before the PIN is asked: a locked PIN is not worth typing
        return _locked(locked)
    return StepResult("set" if deps.pins.is_set(ctx.user_id) else "not_set", {"pin_proof": None})


step("security.pin_status", outcomes={"set", "not_set", "locked", "locked_agent"})(pin_status)


def check_pin(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    verdict = deps.pins.verify(ctx.user_id, ctx.secrets.get("pin", ""), ctx.now)
    if verdict.result == "ok":
        return StepResult("ok", {"pin_verified": ctx.data.get("pin_next"), "pin_attempts_left": None})
    if verdict.result == "wrong":
        _event(ctx, deps, "pin_failed")
        return StepResult("wrong", {"pin_attempts_left": verdict.attempts_left})
    if verdict.result == "locked":
        if verdict.newly_locked:
            _event(ctx, deps, "pin_failed")
            _event(ctx, deps, "pin_locked", lock_label(verdict))
            return _locked(verdict, _tell(ctx, deps, "pin_locked", {"lock": lock_label(verdict)}))
        return _locked(verdict)
    return StepResult("not_set")


step("security.check_pin", outcomes={"ok", "wrong", "locked", "locked_agent", "not_set"})(check_pin)


def prove_holder(ctx: StepContext, deps: Deps) -> StepResult:
    """The amount of the account's last bill, before a first PIN (param purpose ``first``: the current
    account) or a reset (``reset``: the account number typed, which must be one of the caller's)."""
    purpose = str(ctx.params.get("purpose", "first"))
    if purpose == "reset":
        number = str(ctx.data.get("reset_account_number", ""))
        # Not one of the caller's accounts: counted, and answered as a wrong amount.
        allowed = number in {link.account_number for link in deps.links.accounts_for(ctx.user_id)}
    else:
        number, allowed = str(ctx.data.get("account_number", "")), True
    amount = ctx.data.get("pin_proof_amount", "")
    claim = f"{purpose}:{number}:{amount}"
    if ctx.data.get("pin_proof") == purpose and ctx.data.get("pin_proven") == claim:
        # Already proven in this conversation: a resumed one enters this step again, which must not
        # count a second try against the account (its tries are few a day).
        return StepResult("ok", {})
    verdict = last_bill_proof(ctx, deps, number, amount, f"pin {purpose}", allowed=allowed and bool(number))
    if verdict == "ok":
        return StepResult("ok", {"pin_proof": purpose, "pin_proven": claim})
    return StepResult(verdict, {"pin_proof": None})


step("security.prove_holder", outcomes={"ok", "mismatch", "locked"})(prove_holder)


MAX_PIN_CODE_SENDS, MAX_PIN_CODE_TRIES = 3, 3
_DAY = 86_400


def send_pin_code(ctx: StepContext, deps: Deps) -> StepResult:
    """A first PIN where no bill can vouch (a prepaid meter): a one-time code by SMS to the number
    itself, proving the caller holds the phone. Only a salted hash of it stays in the session, so the code
    works as long as the session: the SMS says so, and is not sent once that time passed (``minutes``).
    ``capped`` when the number had its codes of the day, whatever the session (nothing is sent)."""
    if code_still_out(ctx.data, "pin_code_hash", "pin_code_sent", ctx.now, deps.settings.code_minutes(ctx.channel)):
        # Entered again (a resumed conversation): three drops must not use up the customer's sends.
        return StepResult("sent", {})
    return _new_pin_code(ctx, deps, again=False)


step("security.send_pin_code", outcomes={"sent", "locked", "capped"})(send_pin_code)


def resend_pin_code(ctx: StepContext, deps: Deps) -> StepResult:
    """"Send the code again" on the code screen (an SMS that never came): a new code, the one before void,
    within the same caps as the first (3 a session, ``pin_codes_per_day`` a day). Past either, ``capped``:
    nothing is sent, and the code already sent still works."""
    if not ctx.data.get("pin_code_hash"):
        return StepResult("locked")
    return _new_pin_code(ctx, deps, again=True)


step("security.resend_pin_code", outcomes={"sent", "locked", "capped"})(resend_pin_code)


def _new_pin_code(ctx: StepContext, deps: Deps, *, again: bool) -> StepResult:
    sends = int(ctx.data.get("pin_code_sends", 0)) + 1
    # Never a code uncounted: the number's day counter unreachable (its Redis down) is ``backend_down``.
    if deps.outbox is None or not ctx.user_id or (sends > MAX_PIN_CODE_SENDS and not again):
        _event(ctx, deps, "pin_failed", "first-PIN codes exhausted")
        return StepResult("locked", {"pin_code_hash": None})
    if sends > MAX_PIN_CODE_SENDS:
        # Asked once past the cap: the screen that says so offers no other resend.
        _event(ctx, deps, "pin_failed", "first-PIN code not sent again: the session's codes are spent")
        return StepResult("capped")
    per_day, key = deps.settings.pin_codes_per_day, f"pin_code:phone:{ctx.user_id}"
    if not deps.throttle.hit(key, per_day, _DAY):
        # One row a day per number, however often it redials: the audit is no second thing to fill.
        record_once(deps.security, deps.throttle, key, SecurityEvent(
            "pin_failed", ctx.channel, ctx.user_id, ctx.data.get("account_number"),
            f"first-PIN codes: more than {per_day} today for this number: refused till the day ends"))
        # A code asked again keeps the one already sent; a first one has none to keep.
        return StepResult("capped", {} if again else {"pin_code_hash": None})
    # The code made from its message's key (``issue_code``): the hop run again after a failed save keeps the
    # code the caller was sent. Per conversation: a chat channel's session key is the sender's, used again.
    dedupe_key = f"pin_code:{ctx.conversation_id}:{sends}"
    code, minutes = issue_code(deps.settings.code_key, dedupe_key), deps.settings.code_minutes(ctx.channel)
    if deps.outbox.add(kind="pin_code", msisdn=ctx.user_id, language=ctx.language,
                       payload={"code": code, "minutes": minutes}, dedupe_key=dedupe_key):
        # Every code sent is audited, once per message queued (a hop run again queues nothing new).
        _event(ctx, deps, "code_sent", "first-PIN code sent again" if again else "first-PIN code sent")
    # The screen says the same minutes as the SMS; a new code gets its own tries.
    return StepResult("sent", {"pin_code_hash": hash_code(code), "pin_code_tries": 0, "pin_code_sends": sends,
                               "pin_code_tries_left": None, "code_minutes": minutes, "pin_code_to": mask(ctx.user_id),
                               "pin_code_sent": ctx.now.isoformat()})


def check_pin_code(ctx: StepContext, deps: Deps) -> StepResult:
    """The code sent by ``security.send_pin_code``, typed back: the proof a first PIN needs."""
    tries = int(ctx.data.get("pin_code_tries", 0)) + 1
    stored = str(ctx.data.get("pin_code_hash") or "")
    if not stored or tries > MAX_PIN_CODE_TRIES:
        return StepResult("locked", {"pin_code_hash": None})
    if not code_matches(ctx.secrets.get("pin_code", ""), stored):
        _event(ctx, deps, "pin_failed", "wrong first-PIN code")
        if tries >= MAX_PIN_CODE_TRIES:
            return StepResult("locked", {"pin_code_hash": None})
        return StepResult("wrong", {"pin_code_tries": tries, "pin_code_tries_left": MAX_PIN_CODE_TRIES - tries})
    return StepResult("ok", {"pin_proof": "first", "pin_code_hash": None, "pin_code_tries": None,
                             "pin_code_tries_left": None})


step("security.check_pin_code", outcomes={"ok", "wrong", "locked"})(check_pin_code)


def stage_pin(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    if not _may_choose_pin(ctx, deps):
        return StepResult("denied")
    pin = ctx.secrets.get("new_pin", "")
    known = [ctx.user_id, str(ctx.data.get("account_number", "")), str(ctx.data.get("reset_account_number", ""))]
    known += [str(a.get("account_number", "")) for a in ctx.data.get("accounts") or [] if isinstance(a, dict)]
    if is_weak_pin(pin, known):
        return StepResult("weak")
    deps.pins.stage_pin(ctx.user_id, pin)
    return StepResult("ok")


step("security.stage_pin", outcomes={"ok", "weak", "denied"})(stage_pin)


def confirm_pin(ctx: StepContext, deps: Deps) -> StepResult:
    assert deps.pins is not None
    if not _may_choose_pin(ctx, deps):
        return StepResult("denied")
    proof, pin = ctx.data.get("pin_proof"), ctx.secrets.get("pin", "")
    had_pin = deps.pins.is_set(ctx.user_id)
    was_locked = deps.pins.lock_state(ctx.user_id, ctx.now) is not None
    if not deps.pins.confirm_pin(ctx.user_id, pin):
        if _confirmed_before(ctx, deps, pin):
            # Its session's save was lost after this very confirmation set the PIN: the same answer again,
            # and nothing done twice (the PIN's event audited and told once, no try counted).
            return _pin_chosen(ctx, proof, {"security_notices": _next_notice(ctx)})
        return StepResult("mismatch")
    kind = "pin_reset" if proof == "reset" else "pin_changed" if had_pin else "pin_set"
    _event(ctx, deps, kind)
    if was_locked:
        _event(ctx, deps, "pin_unlocked", "reset by the holder")
    told = _tell(ctx, deps, kind, {})
    if deps.outbox is None:
        # No notice to know this confirmation by when it runs again: a mark of it instead, for as long as a
        # conversation lives (in the throttle's store: the embedded default's is this process, as its sessions).
        deps.throttle.hit(_chosen_mark(ctx, told["security_notices"]), 1, deps.settings.code_minutes(ctx.channel) * 60)
    return _pin_chosen(ctx, proof, told)


def _pin_chosen(ctx: StepContext, proof: Any, told: dict[str, int]) -> StepResult:
    # After a first PIN or a reset the customer goes on to the task the gate guarded; a change spends
    # its pass: another change in the same session asks the current PIN again.
    data = {"pin_verified": ctx.data.get("pin_next") if proof else None, "pin_proof": None, **told}
    return StepResult("reset" if proof == "reset" else "ok", data)


def _confirmed_before(ctx: StepContext, deps: Deps, pin: str) -> bool:
    """Whether this hop is this very confirmation run again: the gateway's retry of a hop whose session's
    save was lost after the PIN was set, so the session still counts the notices it gave before it. Known
    by the notice that confirmation queued (its key names this conversation and that count), or without an
    outbox by its mark (``_chosen_mark``), and only then ``pin`` compared with the PIN set: no other caller,
    nor this one later, learns whether a PIN is the customer's, and no try is counted for the one who just
    chose it."""
    assert deps.pins is not None
    if not ctx.user_id:
        return False
    told = _next_notice(ctx)
    if deps.outbox is None:
        chosen = deps.throttle.count(_chosen_mark(ctx, told)) > 0
    else:
        chosen = any(deps.outbox.queued(_notice_key(ctx, kind, told)) for kind in _PIN_CHOSEN)
    return chosen and deps.pins.is_current(ctx.user_id, pin)


def _chosen_mark(ctx: StepContext, told: int) -> str:
    """The mark of the confirmation that set a PIN, named as its notice is: this conversation and that count."""
    return f"pin_chosen:{ctx.conversation_id}:{told}"


_PIN_CHOSEN = ("pin_set", "pin_changed", "pin_reset")


step("security.confirm_pin", outcomes={"ok", "reset", "mismatch", "denied"})(confirm_pin)
