"""The conversation engine: one hop in, one reply out, for any channel.

``Engine.handle(turn)`` loads the session under its lock, answers a replayed hop from
the idempotency record, otherwise applies navigation (``0`` back, ``00`` home, ``98``/``99``
pages), checks the input against the node, moves through the compiled flow running
``action`` and ``router`` nodes until a node that shows something, renders it for the
channel and saves the session. It never raises: any failure becomes a polite closing
screen in the user's language, logged with the user masked.

A session is its caller's alone: a hop from another number gets a polite end, reads and
changes nothing, and is reported as a ``caller_mismatch`` security event. The replay record
is an HMAC of caller and hop under the server key (``engine.hop_digest``). Resuming a dropped
session follows ``engine.resume``: offered only mid-task, never past a gate, and to the same customer only.
A verified customer on a session held for nobody (a guest's, its conversation key now signed in) or for another
customer starts afresh as themselves: nothing of that session runs on, its replay record included. On a channel
that keys a session on its provider's session id (USSD), a hop on an ended session other than the retry of
its last one gets a polite end (``session_over``) and is a ``session_reused`` security event; so does
a hop on such a key long after its session expired (for ``ended_marker_seconds``: the store keeps a
marker of the spent key, written with the session's first save and its last, or alone when a first hop
fails before anything is saved). The retry of the hop that ended the session with an END gets that END
again, from the session's replay record or, once it has expired, from the marker, which keeps it only
``ended_replay_seconds`` (the gateway's retries). A hop that fails unexpectedly ends its session with its
error END the same way, whether it was the first hop or a later one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from types import MappingProxyType
from typing import Any, Protocol

from menus.keywords import normalise_word
from menus.schema import (
    BACK,
    HOME,
    NAVIGATION_KEYS,
    NEXT_PAGE,
    PREVIOUS_PAGE,
    ActionNode,
    InputNode,
    Node,
    OptionSpec,
)

from .audit import AuditSink, NullAuditSink, SessionRecord
from .entry import Start, find_start
from .flow import CompiledFlow, FlowSet
from .formatting import TextFormatter
from .hop_digest import HopDigest
from .kept import ended_ttl, kept_data
from .masking import mask, mask_numbers
from .render import PageLabels, render_pages
from .resume import carried_data, is_mid_task, is_secret_prompt, note_proofs, track_gate
from .security_audit import LoggingSecurityAudit, SecurityAudit, SecurityEvent
from .session import Session
from .steps import StepContext, StepRegistry, StepResult
from .store import Caller, EndedMarker, LockedSession, SessionBusy, SessionStore, StoreUnavailable
from .turnstile import Turnstile
from .types import ChannelCapabilities, Option, Reply, Screen, Turn
from .validators import InvalidInput, validate

__all__ = ["Engine", "EngineLimits", "HopObserver"]

log = logging.getLogger("engine")

_NAVIGATION = NAVIGATION_KEYS
# The gateway's end-of-session event waits this long at most for a hop still holding the lock.
_FINISH_LOCK_WAIT_SECONDS = 2.0
_LAID_OUT_LIMIT = 2048   # screens kept laid out (each a few hundred bytes)
_CALLER_TAGS_KEPT = 10_000   # callers' marker tags kept (about 150 bytes each)
# A hop whose session another hop holds tries again after these pauses, doubling (as a store would).
_BUSY_FIRST_PAUSE_SECONDS = 0.002
_BUSY_LAST_PAUSE_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class EngineLimits:
    max_steps_per_hop: int = 25
    max_retries: int = 3
    session_ttl_seconds: int = 180
    ended_ttl_seconds: int = 120
    # How long a spent USSD session id stays refused once its session is gone (a marker of 120 bytes in
    # Redis, where an ended session takes over a kilobyte). A day: well past any gateway's retries and the network's own
    # session limit (a few minutes), and the day a captured request is most likely replayed; later,
    # payment idempotency still stands.
    ended_marker_seconds: int = 86_400
    # How long the END that closed a session (a payment's confirmation, its amount) is kept with the spent id
    # for the gateway's retry of that hop, which comes within seconds to a couple of minutes; past it, the
    # retry is refused like any other hop on the spent id (the id itself stays spent a day).
    ended_replay_seconds: int = 300
    # A hop that finds its session locked is mostly the gateway retrying a slow hop: wait for the
    # first to finish (a hop never runs steps past the deadline) and answer from its record.
    lock_wait_seconds: float = 9.0
    history_limit: int = 30
    resume_window_seconds: int = 120   # 0 turns resuming a dropped session off
    # The gateway gives up after 10-15 s: past this, no further dialog step starts in the hop.
    hop_deadline_seconds: float = 8.0
    visited_limit: int = 200
    channel_ttl_seconds: Mapping[str, int] = field(default_factory=dict)

    def ttl(self, channel: str) -> int:
        return self.channel_ttl_seconds.get(channel, self.session_ttl_seconds)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hop_digest(digest: HopDigest, turn: Turn) -> str:
    # The hop id may carry what the user typed (USSD sends the whole history, PINs included):
    # keep only a keyed digest of it, bound to the caller, in the saved session.
    return digest.digest(turn.user_id, turn.hop_id)


def _compact_screen(screen: Screen, language: str) -> dict[str, Any]:
    """A screen as the replay record keeps it: short names, empty parts left out."""
    out: dict[str, Any] = {"n": screen.node, "b": list(screen.blocks)}
    if screen.language != language:
        out["l"] = screen.language
    if screen.options:
        out["o"] = [[o.key, o.label] for o in screen.options]
    if screen.nav:
        out["v"] = [[o.key, o.label] for o in screen.nav]
    if screen.error:
        out["e"] = screen.error
    if screen.end:
        out["x"] = True
    return out


def _screen_of(record: Mapping[str, Any], language: str) -> Screen:
    found = record.get("s")
    raw: Mapping[str, Any] = found if isinstance(found, dict) else {}
    return Screen(str(raw.get("n", "")), str(raw.get("l", language)), tuple(str(b) for b in raw.get("b") or ()),
                  tuple(Option(str(k), str(v)) for k, v in raw.get("o") or ()),
                  tuple(Option(str(k), str(v)) for k, v in raw.get("v") or ()),
                  raw.get("e") if isinstance(raw.get("e"), str) else None, bool(raw.get("x")))


def _log_failure(message: str, *args: object, exc: BaseException) -> None:
    """Log a failure with its traceback, every long number in it masked (exception texts carry numbers)."""
    trace = mask_numbers("".join(traceback.format_exception(exc)).rstrip())
    log.error(message + "\n%s", *args, trace)


def _rewind(session: Session, node_id: str, home: str) -> None:
    """Landing on a screen already in the history goes back to it (a screen that returns to
    itself, a "try again"): Back then leads where the customer came from, in one press. The main
    menu is the root: reaching it, however, leaves nothing to go back to. A page remembered for a
    screen no longer in the history is forgotten (the session stays small, and a later visit of
    that screen starts on its first page)."""
    history = session.history
    if node_id == home:
        history.clear()
    elif node_id in history:
        del history[history.index(node_id):]
    if session.back_pages:   # most sessions never page a list: nothing to prune on their hops
        session.back_pages = {shown: page for shown, page in session.back_pages.items() if shown in history}


def _screen_now(flow: CompiledFlow, node_id: str) -> str | None:
    """The screen ``node_id`` of an older version of the menus is in ``flow``: itself, the main menu when
    ``home`` was that menu and now names the router before it, or none (gone, or showing nothing now)."""
    node = flow.spec.nodes.get(node_id)
    if node is not None and node.shows:
        return node_id
    return flow.root if node_id == flow.spec.home else None


def _history_now(flow: CompiledFlow, history: list[str]) -> list[str]:
    """A history kept under an older version of the menus, as screens of ``flow`` (``_screen_now``)."""
    return [shown for shown in map(partial(_screen_now, flow), history) if shown]


class HopObserver(Protocol):
    """Told about every hop once answered (the app turns this into metrics)."""

    def observe(self, *, channel: str, seconds: float, step_seconds: float, wait_seconds: float,
                end: bool, cpu_seconds: float) -> None:
        """``seconds`` in the engine in all; ``step_seconds`` of it in dialog steps (back ends),
        ``wait_seconds`` waiting (for the engine's turnstile, or for a session another hop held).
        ``cpu_seconds``: the CPU the hop's thread spent on the engine's own work (its steps' left out): the
        part of the own time (``seconds - step_seconds - wait_seconds``) that faster code would shorten; the
        rest is the session store's round trip and the time the thread waited for a CPU."""


class _EndNow(Exception):
    """Close the conversation with a system text (``too_many_errors``, ``backend_down`` ...)."""

    def __init__(self, text_key: str, outcome: str) -> None:
        super().__init__(text_key)
        self.text_key, self.outcome = text_key, outcome


@dataclass(frozen=True, slots=True)
class _Choice:
    key: str
    label: str
    target: str
    item: Any = None


class _PassThrough:
    """The engine's side of ``menus.schema.Resolver`` while a hop runs through action and router nodes."""

    __slots__ = ("engine", "flow", "secrets", "session")

    def __init__(self, engine: Engine, session: Session, flow: CompiledFlow, secrets: dict[str, str]) -> None:
        self.engine, self.session, self.flow, self.secrets = engine, session, flow, secrets

    def run_step(self, node: ActionNode) -> str:
        result = self.engine._run_step(self.session, node, self.secrets)
        if node.commits(result.outcome):
            # The journey up to here is closed: Back and Home lead to the main menu.
            self.session.history[:] = [self.flow.root]
        target = node.outcomes.get(result.outcome)
        if target is None:
            down = result.outcome == "backend_down"
            raise _EndNow("backend_down" if down else "error", result.outcome)
        return target

    def holds(self, when: str) -> bool:
        return self.flow.conditions[when].holds(self.session.data)


class Engine:
    def __init__(self, flows: FlowSet, store: SessionStore, steps: StepRegistry, *,
                 audit: AuditSink | None = None, limits: EngineLimits | None = None,
                 clock: Callable[[], datetime] = _utcnow, observer: HopObserver | None = None,
                 security: SecurityAudit | None = None, hop_key: bytes | None = None,
                 channels: Mapping[str, ChannelCapabilities] | None = None,
                 timer: Callable[[], float] = time.perf_counter, serial: bool = True,
                 cpu_timer: Callable[[], float] = time.thread_time) -> None:
        """``hop_key``: the server key behind replay records (``SECRET_KEY``); every process serving
        the same sessions needs the same one. Without it, a random key for this instance.
        ``channels``: what each channel can show, as its adapter declares it (``declare`` adds more).
        ``clock``: now, aware; the one clock of the engine: session times, resume window, and the
        ``now`` every dialog step reads (due dates, day windows), so a test can set the date.
        ``timer``: seconds for durations (the hop deadline, time spent in steps, metrics).
        ``cpu_timer``: the calling thread's CPU seconds (the hop's own CPU, ``HopObserver``).
        ``serial``: the engine's own work of one hop at a time in this process (``engine.turnstile``);
        ``False`` lets the threads of a worker interleave it."""
        self.flows = flows
        self.store = store
        self.steps = steps
        self.audit = audit or NullAuditSink()
        self.limits = limits or EngineLimits()
        self.clock = clock
        self.timer = timer
        self.cpu_timer = cpu_timer
        self._steps_cpu = threading.local()   # this thread's hop: CPU seconds spent in its dialog steps
        self.observer = observer
        self.security = security or LoggingSecurityAudit()
        self._hop_digest = HopDigest(hop_key)
        self._caller_tags: dict[str, str] = {}
        self._turnstile = Turnstile(serial, timer)
        self._formatters: dict[str, TextFormatter] = {}
        self._channels: dict[str, ChannelCapabilities] = dict(channels or {})
        self._idle: dict[str, int] = {}
        self._key_ends: dict[str, bool] = {}
        # Screens laid out per channel and language: most screens are the same text for everyone
        # (menus, prompts), so a hop seldom lays one out again. Bounded: emptied when full.
        self._laid_out: dict[tuple[Screen, str, str], list[str]] = {}
        self._laid_out_menus = flows.menus

    # ------------------------------------------------------------ public
    def declare(self, capabilities: ChannelCapabilities, idle_seconds: int | None = None,
                key_ends_with_session: bool = False) -> None:
        """A channel adapter says what its channel can show (the engine pages screens to fit) and,
        for a channel keyed by user, how long a conversation may stay idle. ``key_ends_with_session``:
        the channel keys a session on its provider's session id (USSD), which never carries another
        conversation once ended; on a channel keyed by user, a message after an end starts anew."""
        self._channels[capabilities.name] = capabilities
        self._key_ends[capabilities.name] = key_ends_with_session
        self._laid_out.clear()
        if idle_seconds is not None:
            self._idle[capabilities.name] = idle_seconds

    def _user_idle(self, channel: str) -> int | None:
        """The idle window of a channel keyed by user; ``None`` for one keyed on its provider's session."""
        return None if self._key_ends.get(channel, False) else self._idle.get(channel)

    def capabilities(self, channel: str) -> ChannelCapabilities:
        declared = self._channels.get(channel)
        if declared is not None:
            return declared
        spec = self.flows.menus.channels.get(channel)
        if spec is None:
            return ChannelCapabilities(channel, max_chars=4096)
        return ChannelCapabilities(channel, spec.max_chars, spec.charset, spec.ucs2_max_chars, spec.prefix_budget)

    def language_for(self, hint: str | None) -> str:
        menus = self.flows.menus
        return hint if hint in menus.languages else menus.default_language

    def system_text(self, language: str, key: str) -> str:
        texts = self.flows.menus.system_texts.get(key, {})
        return texts.get(language) or texts.get(self.flows.menus.default_language) or key

    def in_turn(self) -> AbstractContextManager[None]:
        """The engine's turnstile for a caller's whole request (``engine.turnstile``): an adapter whose work
        around ``handle`` is the CPU's alone (parsing the request, rendering and logging the answer) does it
        in the hop's turn, not interleaved with other threads' hops; the hop's waits still give it back."""
        return self._turnstile.hold()

    def handle(self, turn: Turn) -> Reply:
        """Answer one hop. Never raises."""
        started, cpu_started = self.timer(), self.cpu_timer()
        self._turnstile.start()
        self._steps_cpu.seconds = 0.0
        reply, step_seconds = self._handle_safely(turn)
        if self.observer is not None:
            cpu = self.cpu_timer() - cpu_started - self._steps_cpu.seconds
            self.observer.observe(channel=turn.channel, seconds=self.timer() - started,
                                  step_seconds=step_seconds, wait_seconds=self._turnstile.waited, end=reply.end,
                                  cpu_seconds=max(0.0, cpu))
        return reply

    def _handle_safely(self, turn: Turn) -> tuple[Reply, float]:
        language = self.language_for(turn.language_hint)
        try:
            return self._locked_hop(turn, Caller(turn.channel, turn.user_id, turn.customer))
        except SessionBusy:
            log.warning("session busy channel=%s user=%s", turn.channel, mask(turn.user_id))
            return replace(self._closing(turn.channel, language, "busy"), transient=True), 0.0
        except StoreUnavailable as exc:
            log.error("session store unavailable channel=%s user=%s: %s", turn.channel, mask(turn.user_id),
                      type(exc).__name__)
            return replace(self._closing(turn.channel, language, "error"), transient=True), 0.0
        except Exception as exc:  # noqa: BLE001 - the hop's safety net: a polite closing, never a 500
            _log_failure("hop failed channel=%s user=%s", turn.channel, mask(turn.user_id), exc=exc)
            if self._key_ends.get(turn.channel, False):
                return self._spend_failed(turn, language), 0.0
            return self._closing(turn.channel, language, "error"), 0.0

    def _locked_hop(self, turn: Turn, caller: Caller) -> tuple[Reply, float]:
        """The hop in the turnstile, with its session locked; while another hop holds the session (the
        gateway retrying a slow hop), it waits outside the turnstile, up to ``lock_wait_seconds``."""
        deadline = time.monotonic() + self.limits.lock_wait_seconds   # real seconds, whatever the engine's timer
        delay = _BUSY_FIRST_PAUSE_SECONDS
        turnstile = self._turnstile
        while True:
            # Only taking the lock raises SessionBusy: inside, a redial's take-over of an old session
            # answers it itself, and a dialog step's exceptions are the flow's error outcome.
            turnstile.enter()   # not a ``with``: a hop goes through here once or twice, every cycle counts
            try:
                with self.store.locked(turn.session_key, 0.0, caller,
                                       self._key_ends.get(turn.channel, False)) as held:
                    return self._handle_locked(turn, held)
            except SessionBusy:
                if time.monotonic() >= deadline:
                    raise
            finally:
                turnstile.leave()
            pause = min(delay, max(0.0, deadline - time.monotonic()))
            outer = turnstile.pause()   # a caller holding the turnstile for the whole request (``in_turn``)
            time.sleep(pause)
            turnstile.note_wait(pause)
            turnstile.resume(outer)
            delay = min(delay * 2, _BUSY_LAST_PAUSE_SECONDS)

    def _spend_failed(self, turn: Turn, language: str) -> Reply:
        """A hop failed before its session was saved: the session ends with the "error" END (in the session's
        language; ``language`` for a first hop), and its key is spent as an ended session's is, keeping the END
        for the gateway's retry of the hop (the same caller, the same hop). Any other hop on the key is refused,
        never run again from what an earlier hop saved nor followed as a new dial. A first hop has no session
        yet: its key's marker is written alone; a later hop's session is saved ended. Off the hop path: one
        more lock and write, on a failure only."""
        reply = self._closing(turn.channel, language, "error")
        try:
            # outside the turnstile: it may wait for the lock (and a caller may hold the turnstile, ``in_turn``)
            with self._turnstile.outside(), \
                    self.store.locked(turn.session_key, _FINISH_LOCK_WAIT_SECONDS, marked=True) as held:
                session = held.session
                if session is not None and session.user_id == turn.user_id and session.language != language:
                    reply = self._closing(turn.channel, session.language, "error")
                screen = reply.screen
                if screen is None:
                    return reply
                hop_id = _hop_digest(self._hop_digest, turn)
                if session is None and held.marker is None:
                    record = {"s": _compact_screen(screen, screen.language)}
                    self.store.spend(turn.session_key, self._ended_marker(screen.language, turn.user_id, hop_id,
                                                                          record))
                elif session is not None and not session.ended and session.user_id == turn.user_id:
                    session.ended, session.outcome = True, "error"
                    session.last_hop_id, session.last_reply = hop_id, {"s": _compact_screen(screen, session.language)}
                    held.save(session, self.limits.ended_ttl_seconds, marker=self._marker(session))
        except Exception as exc:  # noqa: BLE001 - still the safety net: the hop is answered all the same
            log.warning("failed hop's session id not marked spent channel=%s user=%s: %s", turn.channel,
                        mask(turn.user_id), type(exc).__name__)
        return reply

    def finish(self, *, channel: str, session_key: str, user_id: str, status: str,
               duration_ms: int | None = None, error: str | None = None, hops: int | None = None) -> None:
        """The gateway says the session is over (its end-of-session notification). Idempotent.

        ``Success`` is a normal end: the session is closed, so a redial is not offered to resume
        it. Any other status (the network dropped it) leaves it open to a resume."""
        self.audit.complete(session_key, channel=channel, user_masked=mask(user_id), status=status,
                            duration_ms=duration_ms, error=error, hops=hops)
        if status == "Success":
            self._close_normally(channel, session_key, user_id)

    def _close_normally(self, channel: str, session_key: str, user_id: str) -> None:
        try:
            with self.store.locked(session_key, _FINISH_LOCK_WAIT_SECONDS) as held:
                session = held.session
                if session is None or session.ended:
                    return
                if session.user_id != user_id:
                    self._report_mismatch(channel, user_id, "end-of-session event for another caller's session")
                    return
                session.ended = True
                held.save(session, self.limits.ended_ttl_seconds, marker=self._marker(session))
        except (SessionBusy, StoreUnavailable) as exc:
            log.warning("end of session not marked channel=%s user=%s: %s", channel, mask(user_id),
                        type(exc).__name__)

    def _security_event(self, event: SecurityEvent) -> None:
        with self._turnstile.outside():   # a write to the security audit (SQL): other hops go on meanwhile
            self.security.record(event)

    def _report_mismatch(self, channel: str, user_id: str, detail: str) -> None:
        log.warning("caller mismatch channel=%s user=%s: %s", channel, mask(user_id), detail)
        self._security_event(SecurityEvent("caller_mismatch", channel, subject=user_id, detail=detail))

    def _caller_tag(self, user_id: str) -> str:
        """A short keyed tag of the caller for a spent key's marker: which caller it was, and no number.
        Every dial writes one: the tags of recent callers are kept (an HMAC per dial saved)."""
        tag = self._caller_tags.get(user_id)
        if tag is None:
            tag = self._hop_digest.digest(user_id, "\x00spent")[:8]
            if len(self._caller_tags) >= _CALLER_TAGS_KEPT:
                self._caller_tags.clear()
            self._caller_tags[user_id] = tag
        return tag

    def _marker(self, session: Session) -> EndedMarker | None:
        """A marker that the session's key is spent, on a channel whose key ends with its session: written
        with its first save (a session dropped, never ended, expires too) and its last (the end's language;
        and, when that last hop was answered with an END, its digest and answer: see ``_ended_marker``)."""
        if (session.hops == 1 or session.ended) and self._key_ends.get(session.channel, False):
            record = session.last_reply if session.ended else None
            return self._ended_marker(session.language, session.user_id, session.last_hop_id, record)
        return None

    def _ended_marker(self, language: str, user_id: str, hop_id: str | None,
                      record: Mapping[str, Any] | None) -> EndedMarker:
        """``language:tag`` for a day; and, when the last hop was answered with an END, ``digest:record`` for
        ``ended_replay_seconds``: the gateway may retry that hop after the ended session is gone
        (``ended_ttl_seconds``) and must get its END again (a payment's confirmation), not "session over";
        past its retries, the END (an amount, a reference) is not kept. The record is the replay record (the
        END's screen, a few hundred bytes at most in JSON). A session closed without an END of its own (the
        gateway's report of a normal end, a redial's take-over) has none to give again. Read back joined,
        ``language:tag:digest:record``: the form the previous release kept whole for a day, read the same."""
        value = f"{language}:{self._caller_tag(user_id)}"
        screen = record.get("s") if record is not None else None
        if hop_id and isinstance(screen, dict) and screen.get("x") and self.limits.ended_replay_seconds > 0:
            replay = f"{hop_id}:{json.dumps(record, ensure_ascii=False, separators=(',', ':'))}"
            return EndedMarker(value, self.limits.ended_marker_seconds, replay, self.limits.ended_replay_seconds)
        return EndedMarker(value, self.limits.ended_marker_seconds)

    def _spent(self, turn: Turn, marker: str, hop_id: str) -> Reply:
        """A hop on a key whose session is gone but whose marker is kept: refused, as if the session were there;
        the retry of the hop that ended it gets that END again, as from the session's own replay record."""
        language, _, rest = marker.partition(":")
        tag, _, rest = rest.partition(":")
        if tag != self._caller_tag(turn.user_id):
            self._report_mismatch(turn.channel, turn.user_id, "hop on another caller's ended session")
            return self._closing(turn.channel, self.language_for(turn.language_hint), "error")
        digest, _, kept = rest.partition(":")
        if kept and digest == hop_id:
            try:
                record = json.loads(kept)
            except ValueError:
                record = None   # unreadable (written by another release): refused like any other hop
            if isinstance(record, dict):
                # Laid out for the channel and language as the session's own replay is; nothing of it is saved.
                shown = Session(key=turn.session_key, channel=turn.channel, user_id=turn.address, flow="",
                                version="", node="", language=self.language_for(language), created_at=0.0,
                                updated_at=0.0)
                return self._replayed(shown, record)
        self._report_reuse(turn)
        return self._closing(turn.channel, self.language_for(language), "session_over")

    def _refuse_guest(self, turn: Turn, flow: str) -> Reply:
        """A hop nobody vouched for, in a flow not open to guests: nothing runs (a step would act for a
        customer it does not have); a wrongly wired entry point is reported, not served."""
        log.warning("hop without a customer refused channel=%s user=%s flow=%s", turn.channel, mask(turn.user_id),
                    flow)
        self._security_event(SecurityEvent("guest_refused", turn.channel, subject=turn.user_id,
                                           detail=f"flow {flow} is not open to guests"))
        return self._closing(turn.channel, self.language_for(turn.language_hint), "error")

    def _report_reuse(self, turn: Turn) -> None:
        log.warning("hop on an ended session channel=%s user=%s", turn.channel, mask(turn.user_id))
        self._security_event(SecurityEvent("session_reused", turn.channel, subject=turn.user_id,
                                           detail="hop on an ended session"))

    # ------------------------------------------------------------ hop
    def _handle_locked(self, turn: Turn, held: LockedSession) -> tuple[Reply, float]:
        session = held.session
        if session is not None and session.user_id != turn.user_id:
            # Checked before anything of the session is used: its replay record included.
            self._report_mismatch(turn.channel, turn.user_id, "hop on another caller's session")
            return self._closing(turn.channel, self.language_for(turn.language_hint), "error"), 0.0
        if session is not None and turn.guest and (session.customer is not None
                                                   or not self.flows.get(session.flow, session.version).spec.guests):
            # A guest's hop on a customer's session (its key wrongly shared): not even its replay record.
            return self._refuse_guest(turn, session.flow), 0.0
        hop_id = _hop_digest(self._hop_digest, turn)
        # A verified customer on a session held for nobody (a guest's, under the same conversation key: the
        # guest signed in) or for another customer: nothing of it goes on, its replay record included. The
        # customer starts afresh as themselves, keeping nothing of it (engine.kept); never as the guest.
        newcomer = session is not None and turn.customer is not None and session.customer != turn.customer
        if newcomer:
            log.info("verified customer on a session held for another channel=%s user=%s: started afresh",
                     turn.channel, mask(turn.user_id))
        elif session is not None and session.last_reply is not None and session.last_hop_id == hop_id:
            # Only the identical hop (the provider's retry) gets the recorded answer again.
            return self._replayed(session, session.last_reply), 0.0
        if session is not None and session.ended and self._key_ends.get(turn.channel, False):
            # A gateway never sends another hop on a session it ended (its retry of the last hop was
            # answered just above): a replay or a broken gateway. Answered with a polite end; nothing
            # of the old session runs again, is shown or changes (its own retry still gets its end).
            self._report_reuse(turn)
            return self._closing(turn.channel, session.language, "session_over"), 0.0
        if session is None and held.marker is not None:
            return self._spent(turn, held.marker, hop_id), 0.0   # the same, once the ended session has expired
        hop_input = turn.input
        if session is not None and not session.ended and turn.cumulative:
            continues, hop_input = self._added_input(session, turn)
            if not continues:
                return self._out_of_order(session, turn), 0.0
        previous = None
        if session is not None and (newcomer or session.ended or self._restarts(session, turn)):
            # A new message after an end, or a new command on a chat channel: a new session,
            # which keeps what its flow declares of this one (engine.kept).
            previous, session = session, None
        hop_now = self.clock()
        now = hop_now.timestamp()
        hop_started = self.timer()
        answered_secret = False
        if session is None:
            start = find_start(self.flows.menus, turn.channel, turn.entry,
                               None if turn.dialed else turn.input, turn.intent)
            flow = self.flows.current(start.flow)
            if turn.guest and not flow.spec.guests:
                return self._refuse_guest(turn, flow.name), 0.0
            language = start.language if start.language in self.flows.menus.languages else \
                self.language_for(turn.language_hint)
            session = Session(key=turn.session_key, channel=turn.channel, user_id=turn.address,
                              customer=turn.customer, flow=flow.name, version=flow.version, node=flow.spec.start,
                              language=language, created_at=now, updated_at=now)
            if previous is not None:
                session.data.update(kept_data(previous, flow.spec.keeps, flow=flow.name, customer=turn.customer,
                                              now=now, idle_seconds=self._user_idle(turn.channel)))
            session.hop_started, session.hop_now = hop_started, hop_now
            screen = self._offer_resume(session, flow, turn, held) or self._open(session, flow, turn.dialed, start)
        elif session.resume_from is not None:
            session.hop_started, session.hop_now = hop_started, hop_now
            screen = self._resume(session, self.flows.get(session.flow, session.version), (hop_input or "").strip())
        else:
            session.hop_started, session.hop_now = hop_started, hop_now
            flow = self.flows.get(session.flow, session.version)
            text = self._navigation_word(turn.channel, (hop_input or "").strip())
            current = flow.spec.nodes.get(session.node)
            answered_secret = current is not None and is_secret_prompt(current) and text not in _NAVIGATION
            screen = self._answer(session, flow, text)
        flow = self.flows.get(session.flow, session.version)
        track_gate(session, flow, screen.node, answered_secret)
        session.hops += 1
        session.updated_at = now
        reply = self._reply(session, screen)
        session.last_hop_id = hop_id
        session.seen = len(turn.hop_id) if turn.cumulative else None
        # The replay record: the screen and the page shown (the text is laid out again from them).
        record: dict[str, Any] = {"s": _compact_screen(reply.screen or screen, session.language)}
        if reply.page:
            record["p"] = reply.page
        session.last_reply = record
        ttl = ended_ttl(session, flow.spec.keeps, self.limits.ended_ttl_seconds, self._user_idle(turn.channel)) \
            if reply.end else self._idle.get(turn.channel) or self.limits.ttl(turn.channel)
        # A redial offers to continue only a session left mid-task: only such a session is pointed at.
        resumable = (not reply.end and self.limits.resume_window_seconds > 0
                     and is_mid_task(flow, session.node))
        held.save(session, ttl, resumable, self._marker(session))
        if reply.end:
            self._record(session)
        return reply, session.step_seconds

    def _added_input(self, session: Session, turn: Turn) -> tuple[bool, str | None]:
        """What a hop carrying the whole input history (``Turn.cumulative``) adds to the text the session last
        answered: ``(True, the customer's reply)``, ``*`` in it included (the newest segment alone would cut it);
        ``(False, None)`` when its text is no longer than that one (an older hop arriving after a newer one, or
        one sent beside it). Read from the text's length: a gateway's history only grows, and the text itself is
        not kept (it holds PINs); its digest (``last_hop_id``) is the server key's, which a process started
        with another key would not match, so the prefix is not compared."""
        seen, text = session.seen, turn.hop_id
        if seen is None:
            return True, turn.input   # saved before the text's length was kept (a release ago): the newest input
        if len(text) <= seen or (seen and text[seen] != "*"):
            return False, None
        return True, text[seen + 1:] if seen else text

    def _out_of_order(self, session: Session, turn: Turn) -> Reply:
        """A hop whose text does not continue the session's: a gateway never sends one (it waits for each
        screen), so it is a late copy of an earlier hop or one sent beside another. Applying its input would
        apply an input twice or out of order: the session's last answer is given again, nothing changes."""
        log.warning("hop out of order (its text does not continue the session's) channel=%s user=%s node=%s",
                    turn.channel, mask(turn.user_id), session.node)
        if session.last_reply is None:
            return self._closing(turn.channel, session.language, "error")
        return self._replayed(session, session.last_reply)

    def last_answer(self, key: str, user_id: str) -> Reply | None:
        """The last answer of ``user_id``'s session ``key``, laid out again (a page reloaded, the page after a
        form was posted); ``None`` when there is none, or when the session is another caller's."""
        session = self.store.load(key)
        if session is None or session.user_id != user_id or session.last_reply is None:
            return None
        return self._replayed(session, session.last_reply)

    def _replayed(self, session: Session, record: Mapping[str, Any]) -> Reply:
        """The recorded answer of a hop, laid out again from its Screen, marked as a replay."""
        screen = _screen_of(record, session.language)
        pages = self._pages(session, screen)
        page = min(int(record.get("p", 0)), len(pages) - 1)
        return Reply(pages[page], screen.end, screen, page, len(pages), replayed=True)

    def _offer_resume(self, session: Session, flow: CompiledFlow, turn: Turn, held: LockedSession) -> Screen | None:
        """A new session of a user whose previous one dropped mid-journey: offer to continue it."""
        if turn.dialed or turn.input or self.limits.resume_window_seconds <= 0:
            return None
        # Read with the lock, in the same round trip, by a store that can.
        previous_key = held.latest if held.known_latest else self.store.latest(turn.channel, turn.user_id)
        if not previous_key or previous_key == session.key:
            return None
        previous = self.store.load(previous_key)
        if (previous is None or previous.ended or previous.user_id != session.user_id
                or previous.customer != session.customer or previous.flow != flow.name
                or session.created_at - previous.updated_at > self.limits.resume_window_seconds
                or not is_mid_task(self.flows.get(previous.flow, previous.version), previous.node)):
            return None
        session.resume_from = previous_key
        session.language = previous.language
        return self._resume_screen(session, previous)

    def _resume_screen(self, session: Session, previous: Session | None, error: str | None = None) -> Screen:
        text = partial(self.system_text, session.language)
        return Screen("resume", session.language, (self._resume_question(session, previous),),
                      (Option("1", text("yes")), Option("2", text("no"))), error=error)

    def _resume_question(self, session: Session, previous: Session | None) -> str:
        """The offer, naming the dropped task as its menu file does: ``resume:`` on the node it was on, else
        on the gate it must pass again, else on the latest screen of its way there (a PIN chosen after a
        payment's confirmation: the payment), filled from its context; the plain question when none is named."""
        if previous is not None and previous.user_id == session.user_id:
            nodes = self.flows.get(previous.flow, previous.version).spec.nodes
            for node_id in (previous.node, previous.gate, *reversed(previous.history)):
                node = nodes.get(node_id) if node_id else None
                if node is not None and node.resume:
                    return self._text(previous, node.resume)
        return self.system_text(session.language, "resume")

    def _resume(self, session: Session, flow: CompiledFlow, text: str) -> Screen:
        previous_key, session.resume_from = session.resume_from, None
        # Either answer settles the dropped session: continued here, or declined; both close it on its old id,
        # which also takes the caller's redial pointer off it (a save drops only its own session's pointer).
        previous = self._take_over(previous_key, session.user_id) if text in ("1", "2") and previous_key else None
        if text == "1" and previous is not None:
            continued = self.flows.get(previous.flow, previous.version)
            nodes = continued.spec.nodes
            if previous.node in nodes and (previous.gate is None or previous.gate in nodes):
                session.flow, session.version, session.node = previous.flow, continued.version, previous.node
                session.data, session.history = carried_data(previous), _history_now(continued, previous.history)
                session.back_pages = previous.back_pages
                session.visited = previous.visited + ["resumed"]
                if previous.gate is None:
                    return self._screen(session, continued, session.node)
                try:  # behind a gate: through the gate again, its steps run and its secret is asked
                    return self._enter(session, continued, previous.gate, {}, moved=True)
                except _EndNow as end:
                    return self._end_screen(session, end)
        if text in ("1", "2"):
            return self._open(session, flow, ())
        session.retries += 1
        if session.retries >= self.limits.max_retries:
            return self._end_screen(session, _EndNow("too_many_errors", "too_many_errors"))
        session.resume_from = previous_key
        # a wrong answer (rare) reads the dropped session again to name its task; a normal hop never does
        return self._resume_screen(session, self.store.load(previous_key) if previous_key else None,
                                   self.system_text(session.language, "invalid_choice"))

    def _take_over(self, key: str, user_id: str) -> Session | None:
        """``user_id``'s dropped session ``key``, closed under its lock as another continues it: a late or
        replayed hop on its old id never runs its task a second time. ``None`` when it is gone, another
        caller's, or closed meanwhile (the gateway reported a normal end, another redial took it over)."""
        try:
            with self._turnstile.outside(), self.store.locked(key, _FINISH_LOCK_WAIT_SECONDS) as held:
                previous = held.session
                if previous is None or previous.ended or previous.user_id != user_id:
                    return None
                previous.ended = True
                held.save(previous, self.limits.ended_ttl_seconds, marker=self._marker(previous))
                return previous
        except SessionBusy:
            return None   # a hop still runs on it: not continued twice

    def _open(self, session: Session, flow: CompiledFlow, dialed: tuple[str, ...],
              start: Start | None = None) -> Screen:
        if start is not None and start.usage is not None:
            return self._usage_screen(session, start.usage)
        try:
            if start is not None and start.store:
                session.data[start.store] = start.value
            if start is not None and start.node and start.direct:
                return self._enter(session, flow, start.node, {}, moved=True)
            screen = self._enter(session, flow, flow.spec.start, {}, moved=True)
            if start is not None and start.node and not screen.end:
                # A keyword is a start with an argument: its node once the main menu is reached.
                if session.node != flow.root:
                    session.pending_node = start.node
                    return screen
                return self._jump(session, flow, start.node)
            if not dialed or screen.end:
                return screen
            if session.node != flow.root:
                # The customer must answer first (choose an account, link one): what they dialled
                # is kept and followed once the main menu is reached.
                session.pending = list(dialed)
                return screen
            return self._follow(session, flow, dialed, screen)
        except _EndNow as end:
            return self._end_screen(session, end)

    def _follow(self, session: Session, flow: CompiledFlow, dialed: Sequence[str], screen: Screen) -> Screen:
        """Inputs dialled with the service code, from the main menu: a declared shortcut jumps
        straight to its node, anything else is answered one input at a time."""
        target = flow.shortcuts.get("*".join(dialed))
        if target is not None and not self._hidden_choice(session, flow, dialed[0]):
            return self._jump(session, flow, target)
        for step_input in dialed:
            screen = self._answer(session, flow, step_input.strip())
            if screen.end or screen.error:
                break
        return screen

    def _jump(self, session: Session, flow: CompiledFlow, target: str) -> Screen:
        """A shortcut or a keyword is a jump, like Back: not an edge of the graph."""
        session.history.append(session.node)
        return self._enter(session, flow, target, {}, moved=True)

    def _navigation_word(self, channel: str, text: str) -> str:
        """A word the channel's users type for a navigation key (``menu`` on SMS) is that key."""
        words = self.capabilities(channel).navigation_words
        return words.get(normalise_word(text), text) if words and text else text

    def _restarts(self, session: Session, turn: Turn) -> bool:
        """On a chat channel, a message that the current screen cannot take but that is a command
        keyword starts over (``CONSO`` sent while the balance is shown). So does a stray word on a
        menu (``merci``) where the channel answers unknown first messages (``unknown:``, the help)."""
        text = (turn.input or "").strip()
        points = self.flows.menus.entry_points.get(turn.channel)
        if turn.dialed or not text or points is None or session.resume_from is not None:
            return False
        if not points.keywords and not (turn.intent and turn.intent in points.intents):
            return False
        start = find_start(self.flows.menus, turn.channel, turn.entry, text, turn.intent)
        if start.keyword is None and not points.unknown:
            return False
        flow = self.flows.get(session.flow, session.version)
        node = flow.spec.nodes.get(session.node)
        if node is None or text in _NAVIGATION or self._accepts(node, text):
            return False
        choices = self._choices(session, flow, session.node, labels=False)
        if start.keyword is None and not (self._stray_word(node, turn.channel, text)
                                          or self._nothing_to_choose(node, turn.channel, text, choices)):
            return False
        return all(choice.key != text for choice in choices)

    def _stray_word(self, node: Node, channel: str, text: str) -> bool:
        """Whether ``text`` is a word where the screen expects a number (``merci`` on a menu). A wrong
        number stays an invalid choice; an input screen re-asks with its own hint (``Répondez OUI ...``);
        a navigation word (``menu``) navigates."""
        return not (text.isdigit() or node.takes_value or self._navigation_word(channel, text) in _NAVIGATION)

    def _nothing_to_choose(self, node: Node, channel: str, text: str, choices: Sequence[_Choice]) -> bool:
        """Whether ``text`` is a number sent to a screen that offers none (by SMS, "Aucune demande sur ce compte."
        lists neither choices nor Back/Home): not an "invalid choice" of a list the customer never saw, but a
        message the channel answers as it answers a stray word (the help)."""
        return (text.isdigit() and not choices and not node.takes_value
                and not self.capabilities(channel).show_navigation)

    def _hidden_choice(self, session: Session, flow: CompiledFlow, key: str) -> bool:
        """Whether ``key`` is an option of the current screen hidden by its condition: a hidden
        option is reachable neither by its number nor by the shortcut that starts with it."""
        if all(numbered.key != key for numbered in flow.options[session.node]):
            return False
        return all(choice.key != key for choice in self._choices(session, flow, session.node, labels=False))

    def _answer(self, session: Session, flow: CompiledFlow, text: str) -> Screen:
        try:
            if flow.version != session.version:
                return self._menus_changed(session, flow)
            node = flow.spec.nodes[session.node]
            if text in (NEXT_PAGE, PREVIOUS_PAGE) and not self._accepts(node, text):
                # Paging is never an error: past either end of the pages, the customer stays put.
                screen = self._shown(session) or self._current(session, flow)
                pages = len(self._pages(session, self._as_shown(session.channel, screen)))
                session.page = max(0, min(pages - 1, session.page + (1 if text == NEXT_PAGE else -1)))
                return screen
            if text in (BACK, HOME) and not session.history and not node.takes_value:
                # On the root (the main menu, or the first screen of a session) Back and Home stay.
                return self._current(session, flow)
            if text == BACK and session.history:
                session.node = session.history.pop()
                # Back lands on the page the customer left that screen from, not on its first.
                session.page = session.back_pages.pop(session.node, 0)
                session.retries = 0
                return self._screen(session, flow, session.node)
            if text == HOME and session.history:
                return self._enter(session, flow, flow.move(session.node, None), {}, moved=True)
            secrets: dict[str, str] = {}
            target = self._target(session, flow, node, text, secrets)
            if target is None:
                session.retries += 1
                if session.retries >= self.limits.max_retries:
                    raise _EndNow("too_many_errors", "too_many_errors")
                session.page = 0
                return self._current(session, flow)
            if not node.is_secret():
                # Back never leads into a PIN prompt again.
                session.history.append(session.node)
                if session.page:
                    session.back_pages[session.node] = session.page
                del session.history[:-self.limits.history_limit]
            screen = self._enter(session, flow, target, secrets)
            if session.pending and session.node == flow.root and not screen.end:
                dialed, session.pending = session.pending, []
                return self._follow(session, flow, dialed, screen)
            if session.pending_node and session.node == flow.root and not screen.end:
                target, session.pending_node = session.pending_node, None
                return self._jump(session, flow, target)
            return screen
        except _EndNow as end:
            return self._end_screen(session, end)

    def _chosen(self, session: Session, flow: CompiledFlow, text: str) -> bool:
        """Whether ``text`` is the key of a choice the current screen shows."""
        return any(choice.key == text for choice in self._choices(session, flow, session.node, labels=False))

    @staticmethod
    def _accepts(node: Node, text: str) -> bool:
        """Whether an input node takes ``text`` as its value (then ``98`` is an answer, not paging)."""
        if not isinstance(node, InputNode):  # the one kind with a validator
            return False
        try:
            validate(node.validator, text)
        except InvalidInput:
            return False
        return True

    @staticmethod
    def _shown(session: Session) -> Screen | None:
        """The screen the customer is on, from the replay record, when the record is that screen: a page turn
        lays it out again without filling its texts again (a list of bills is a dozen labels to format)."""
        record = session.last_reply
        if record is None:
            return None
        raw = record.get("s")
        # The record is the current screen when it is of this node, not an end, and carries an error line
        # exactly when the screen has one (after a wrong input; not a one-off notice such as menus changed).
        if (not isinstance(raw, dict) or raw.get("n") != session.node or raw.get("x")
                or ("e" in raw) != bool(session.retries)):
            return None
        return _screen_of(record, session.language)

    def _current(self, session: Session, flow: CompiledFlow) -> Screen:
        """The screen the customer is on, as last shown: with its error line after a wrong input."""
        node = flow.spec.nodes[session.node]
        error = self._error_text(session, node, node.error_key) if session.retries else None
        return self._screen(session, flow, session.node, error=error)

    def _menus_changed(self, session: Session, flow: CompiledFlow) -> Screen:
        """The session's menu version is unknown here (menus reloaded, another process): the input
        could mean something else now, so it is not applied. The customer sees the same screen in
        the new version, or the main menu if it is gone, under a short notice."""
        session.version = flow.version
        session.history = _history_now(flow, session.history)
        session.page = session.retries = 0
        if _screen_now(flow, session.node) == session.node:
            screen = self._screen(session, flow, session.node)
        else:
            session.history.clear()
            screen = self._enter(session, flow, flow.spec.start, {}, moved=True)
        return replace(screen, error=self.system_text(session.language, "menu_changed"))

    def _target(self, session: Session, flow: CompiledFlow, node: Node, text: str,
                secrets: dict[str, str]) -> str | None:
        """Where valid input leads from a node that shows something; ``None`` if not valid."""
        if isinstance(node, InputNode) and not (flow.options[session.node] and self._chosen(session, flow, text)):
            # The one kind with a validator and a store; a choice it shows beside its field (the linter
            # checks the validator never takes its key) is answered as on a menu, below.
            try:
                value = validate(node.validator, text)
            except InvalidInput:
                return None
            if node.sensitive:
                secrets[node.store] = value
            else:
                session.data[node.store] = value
            return node.next
        for choice in self._choices(session, flow, session.node, labels=False):
            if choice.key == text:
                listed = node.item_list()
                if choice.item is not None and listed is not None:
                    session.data[listed.store] = choice.item
                return choice.target
        return None

    def _enter(self, session: Session, flow: CompiledFlow, node_id: str, secrets: dict[str, str],
               moved: bool = False) -> Screen:
        """Move to ``node_id`` and run action/router nodes until one that shows something."""
        current = session.node
        session.entered = node_id  # where this run started: the gate, if it ends on a secret prompt
        for _ in range(self.limits.max_steps_per_hop):
            if not moved:
                node_id = flow.move(current, node_id)
            moved = False
            current = node_id
            session.visited.append(node_id)
            del session.visited[:-self.limits.visited_limit]
            node = flow.spec.nodes[node_id]
            if not node.shows:
                node_id = node.resolve(_PassThrough(self, session, flow, secrets))
                continue
            session.node = node_id
            session.page = session.retries = 0
            _rewind(session, node_id, flow.root)
            return self._screen(session, flow, node_id)
        raise RuntimeError(f"more than {self.limits.max_steps_per_hop} steps in one hop at {node_id}")

    def _conversation(self, session: Session) -> str:
        """``StepContext.conversation``: the key, and on a channel keyed by user when this conversation began
        (as saved: to the millisecond, so every hop of it says the same)."""
        if self._key_ends.get(session.channel, False):
            return session.key
        return f"{session.key}@{session.created_at:.3f}"

    def _run_step(self, session: Session, node: ActionNode, secrets: dict[str, str]) -> StepResult:
        step = self.steps.get(node.step)
        if step is None:
            raise RuntimeError(f"unknown dialog step '{node.step}'")
        if self.timer() - session.hop_started > self.limits.hop_deadline_seconds:
            log.warning("hop deadline passed before step %s user=%s", node.step, mask(session.user_id))
            raise _EndNow("backend_down", "deadline")
        context = StepContext(user_id=session.customer or "", channel=session.channel, language=session.language,
                              session_key=session.key, data=MappingProxyType(session.data), params=node.params,
                              secrets=MappingProxyType(secrets), now=session.hop_now or self.clock(),
                              address=session.user_id, conversation=self._conversation(session))
        started, cpu_started = self.timer(), self.cpu_timer()
        turnstile = self._turnstile
        paused = turnstile.pause()   # a back-end call: other hops go on meanwhile
        try:
            result = step(context)
        except Exception as exc:  # noqa: BLE001 - a raising step is the flow's error outcome
            _log_failure("dialog step %s failed user=%s", node.step, mask(session.user_id), exc=exc)
            result = StepResult("error")
        finally:
            # The step's time ends here: the wait to take the turnstile back is the turnstile's to count
            # (``waited``), and counted in both it would be taken twice off the hop's own time.
            session.step_seconds += self.timer() - started
            self._steps_cpu.seconds = getattr(self._steps_cpu, "seconds", 0.0) + self.cpu_timer() - cpu_started
            turnstile.resume(paused)
        note_proofs(session, result.data, bool(secrets))
        for key, value in result.data.items():
            if value is None:
                session.data.pop(key, None)
            else:
                session.data[key] = value
        if result.language in self.flows.menus.languages:
            session.language = result.language
        return result

    # ------------------------------------------------------------ screens
    def _formatter(self, language: str) -> TextFormatter:
        formatter = self._formatters.get(language)
        if formatter is None:
            formatter = self._formatters[language] = TextFormatter(language, self.flows.menus.labels)
        return formatter

    def _text(self, session: Session, texts: Mapping[str, str], extra: Mapping[str, Any] | None = None) -> str:
        raw = texts.get(session.language) or texts.get(self.flows.menus.default_language) or ""
        context = {**session.data, **extra} if extra else session.data
        return self._formatter(session.language).fill(raw, context)

    def _choices(self, session: Session, flow: CompiledFlow, node_id: str, labels: bool = True) -> list[_Choice]:
        """The numbered choices shown now; ``labels=False`` skips formatting them (to match input)."""
        choices: list[_Choice] = []
        after: list[OptionSpec] = []
        for numbered in flow.options[node_id]:
            option = numbered.option
            if option.when and not flow.conditions[option.when].holds(session.data):
                continue
            if not numbered.key:   # ``after_items``: shown, and numbered, under the list's items
                after.append(option)
                continue
            choices.append(_Choice(numbered.key, self._text(session, option.label) if labels else "", option.target))
        listed = flow.spec.nodes[node_id].item_list()
        if listed is not None:
            items = session.data.get(listed.source) or []
            items = items if isinstance(items, list) else []
            first = flow.first_items[node_id]
            for number, item in enumerate(items, first):
                extra = item if isinstance(item, dict) else {"item": item}
                label = self._text(session, listed.label, extra) if labels else ""
                choices.append(_Choice(str(number), label, listed.target, item))
            for number, option in enumerate(after, first + len(items)):
                choices.append(_Choice(str(number), self._text(session, option.label) if labels else "", option.target))
        return choices

    def _error_text(self, session: Session, node: object, key: str) -> str:
        custom = getattr(node, "error", None)
        return self._text(session, custom) if custom else self.system_text(session.language, key)

    def _screen(self, session: Session, flow: CompiledFlow, node_id: str, error: str | None = None) -> Screen:
        node = flow.spec.nodes[node_id]
        blocks = (self._text(session, node.body_after_error() if error else node.body()),)
        if node.ends:
            session.ended, session.outcome = True, node_id
            return Screen(node_id, session.language, blocks, end=True)
        options = tuple(Option(c.key, c.label) for c in self._choices(session, flow, node_id))
        nav = []
        if session.history:
            nav.append(Option(BACK, self.system_text(session.language, "back")))
        if session.history and node_id != flow.root:
            nav.append(Option(HOME, self.system_text(session.language, "home")))
        return Screen(node_id, session.language, blocks, options, tuple(nav), error)

    def _usage_screen(self, session: Session, usage: Mapping[str, str]) -> Screen:
        """A keyword written without its argument, or with a wrong one: how to write it, and the end."""
        session.ended, session.outcome = True, "keyword_usage"
        text = usage.get(session.language) or usage.get(self.flows.menus.default_language) or next(iter(usage.values()))
        return Screen(session.node, session.language, (text,), end=True)

    def _end_screen(self, session: Session, end: _EndNow) -> Screen:
        session.ended, session.outcome = True, end.outcome
        return Screen(session.node, session.language, (self.system_text(session.language, end.text_key),), end=True)

    def _pages(self, session: Session, screen: Screen) -> list[str]:
        if self._laid_out_menus is not self.flows.menus:   # menus reloaded: labels may have changed
            self._laid_out.clear()
            self._laid_out_menus = self.flows.menus
        key = (screen, session.channel, session.language)
        pages = self._laid_out.get(key)
        if pages is None:
            labels = PageLabels(self.system_text(session.language, "more"),
                                self.system_text(session.language, "previous"))
            pages = render_pages(screen, self.capabilities(session.channel), labels)
            if len(self._laid_out) >= _LAID_OUT_LIMIT:
                self._laid_out.clear()
            self._laid_out[key] = pages
        return pages

    def _as_shown(self, channel: str, screen: Screen) -> Screen:
        """The screen as the channel shows it: without Back/Home on a channel that lists none."""
        if screen.nav and not self.capabilities(channel).show_navigation:
            return replace(screen, nav=())
        return screen

    def _reply(self, session: Session, screen: Screen) -> Reply:
        screen = self._as_shown(session.channel, screen)
        pages = self._pages(session, screen)
        page = min(session.page, len(pages) - 1)
        return Reply(pages[page], screen.end, screen, page, len(pages))

    def _closing(self, channel: str, language: str, key: str) -> Reply:
        text = self.system_text(language, key)
        screen = Screen("", language, (text,), end=True)
        pages = render_pages(screen, self.capabilities(channel), PageLabels("", ""))
        # No page follows a closing screen: a text too long for one shows its first page, without a paging line.
        return Reply(pages[0].rpartition("\n")[0] if len(pages) > 1 else pages[0], True, screen)

    def _record(self, session: Session) -> None:
        try:
            with self._turnstile.outside():   # a write to the audit trail (SQL): other hops go on meanwhile
                self.audit.record(SessionRecord(
                    session_key=session.key, channel=session.channel, user_masked=mask(session.user_id),
                    flow=session.flow, version=session.version, nodes=tuple(session.visited),
                    outcome=session.outcome or session.node, started_at=session.created_at,
                    ended_at=session.updated_at, hops=session.hops))
        except Exception:
            log.exception("audit record failed session user=%s", mask(session.user_id))
