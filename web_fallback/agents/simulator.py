"""``/simulator/``: agents and flow designers play any flow through the one engine, as a phone shows it.

The simulator is a sandbox: its engine is built by the app factory against the demo back office and
a database of its own (so no real money moves and no real customer's records change); its sessions
are keyed to the agent (``sim:<agent>:<run>``), never to a customer's gateway session; only the demo
numbers configured may be played. Each screen is shown with its wire form (USSD ``CON``/``END``), its
length against the channel's limit and whether it fits GSM-7 or needs UCS-2. The page also lists
the menu linter's report for the loaded menus.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from engine import ChannelCapabilities, Engine, Reply, Turn
from engine.charset import gsm7_length, is_gsm7, sms_segments

from .auth import csrf_token, current_agent, requires
from .ports import AgentAudit, AuditEntry

__all__ = ["SimChannel", "SimulatorConfig", "measure_screen", "simulator_blueprint"]

_RUN = "agent_sim"
_MAX_INPUT = 160
_KEPT_SCREENS = 6


@dataclass(frozen=True)
class SimChannel:
    """One channel the simulator can play, as its adapter declares it."""

    name: str
    label: str
    capabilities: ChannelCapabilities
    wire: Callable[[Reply], str]          # the adapter's render: what the phone receives
    entry: str = "*"                      # the service code or short code dialled
    opens_with_text: bool = False         # SMS, WhatsApp, web: each message is a hop of its own
    writes_first: bool = True             # ... and the customer's message opens it (the web's sign-in shows a page)


@dataclass(frozen=True)
class SimulatorConfig:
    numbers: Sequence[tuple[str, str]]    # (demo number, who it is)
    languages: Sequence[str] = ("fr", "en")
    unavailable: str | None = None        # why no sandbox can be played (no demo back office configured)


def measure_screen(text: str, channel: SimChannel) -> dict[str, Any]:
    """What a phone would make of ``text``: characters (GSM-7 septets), the limit, the charset, SMS parts."""
    caps = channel.capabilities
    gsm = is_gsm7(text)
    size = gsm7_length(text) if gsm else len(text)
    limit = caps.max_chars if gsm or not caps.ucs2_max_chars else caps.ucs2_max_chars
    facts: dict[str, Any] = {"chars": size, "limit": limit, "charset": "GSM-7" if gsm else "UCS-2",
                             "fits": size <= limit}
    if caps.name == "sms":
        facts["parts"] = sms_segments(text)
    return facts


def simulator_blueprint(engine_for: Callable[[], Engine], channels: Sequence[SimChannel], config: SimulatorConfig,
                        audit: AgentAudit, lint_report: Callable[[], list[dict[str, str]]]) -> Blueprint:
    """``engine_for()`` builds (once) the sandbox engine; ``lint_report()`` the linter's problems."""
    bp = Blueprint("agents_simulator", __name__)
    by_name = {c.name: c for c in channels}
    numbers = dict(config.numbers)

    def agent_tag(subject: str) -> str:
        return hashlib.sha256(subject.encode()).hexdigest()[:16]

    def play(run: dict[str, Any], text: str | None) -> dict[str, Any]:
        channel = by_name[run["channel"]]
        key = f"sim:{run['agent']}:{run['id']}"
        if channel.opens_with_text:
            # A chat-style channel: each message is one hop of its own.
            turn = Turn(channel=channel.name, address=run["number"], customer=run["number"], session_key=key,
                        input=text, hop_id=f"sim-{secrets.token_hex(8)}", entry=channel.entry,
                        language_hint=run["language"])
        else:
            # As the USSD gateway posts it: the whole history so far, the newest input last.
            inputs = [*run.get("inputs", []), *([text] if text is not None else [])]
            run["inputs"] = inputs
            turn = Turn(channel=channel.name, address=run["number"], customer=run["number"], session_key=key,
                        input=inputs[-1] if inputs else None, hop_id="*".join(inputs), dialed=tuple(inputs),
                        entry=channel.entry, language_hint=run["language"], cumulative=True)
        reply = engine_for().handle(turn)
        wire = channel.wire(reply)
        screen = {"sent": text if text is not None else "(dial)", "wire": wire, "end": reply.end,
                  "node": reply.screen.node if reply.screen else "-", "page": f"{reply.page + 1}/{reply.pages}",
                  **measure_screen(wire, channel)}
        run["hops"] = int(run.get("hops", 0)) + 1
        run["ended"] = reply.end
        run["screens"] = ([*run.get("screens", []), screen])[-_KEPT_SCREENS:]
        return screen

    @bp.get("/simulator/")
    @requires("agent", "designer", "supervisor")
    def home() -> str:
        who = current_agent()
        run = session.get(_RUN)
        return render_template("agents/simulator.html", agent=who, csrf=csrf_token(), channels=channels,
                               numbers=config.numbers, languages=config.languages,
                               run=run if isinstance(run, dict) else None, lint=lint_report(),
                               unavailable=config.unavailable)

    @bp.post("/simulator/start")
    @requires("agent", "designer", "supervisor")
    def start() -> ResponseReturnValue:
        who = current_agent()
        assert who is not None
        if config.unavailable:
            abort(503, config.unavailable)
        channel, language = request.form.get("channel", ""), request.form.get("language", "")
        number = request.form.get("number", "")
        if channel not in by_name or language not in config.languages:
            abort(400, "Pick one of the channels and languages offered.")
        if number not in numbers:
            # Never a real customer: only the configured demo numbers are played.
            abort(400, "The simulator plays only the demo customers listed.")
        first = " ".join(request.form.get("text", "").split())[:_MAX_INPUT] or None
        if by_name[channel].opens_with_text and by_name[channel].writes_first and not first:
            abort(400, f"On {by_name[channel].label} the customer writes first: type their first message "
                       "(e.g. SOLDE, HELP or Bonjour).")
        run: dict[str, Any] = {"id": secrets.token_hex(6), "agent": agent_tag(who.subject), "channel": channel,
                               "language": language, "number": number, "hops": 0, "screens": []}
        play(run, first)
        session[_RUN] = run
        audit.record(AuditEntry(who.subject, who.role, "simulator_start", detail=f"{channel}/{language} demo {number}"))
        return redirect(url_for("agents_simulator.home"))

    @bp.post("/simulator/answer")
    @requires("agent", "designer", "supervisor")
    def answer() -> ResponseReturnValue:
        run = session.get(_RUN)
        if not isinstance(run, dict) or run.get("channel") not in by_name:
            abort(400, "Start a session first.")
        text = request.form.get("text", "")
        if len(text) > _MAX_INPUT or any(ord(c) < 32 for c in text):
            abort(400, f"Type at most {_MAX_INPUT} characters, on one line.")
        if run.get("ended") and not by_name[run["channel"]].opens_with_text:
            abort(400, "This USSD session has ended: start a new one.")
        play(run, text.strip())
        session[_RUN] = run
        return redirect(url_for("agents_simulator.home"))

    @bp.post("/simulator/reset")
    @requires("agent", "designer", "supervisor")
    def reset() -> ResponseReturnValue:
        session.pop(_RUN, None)
        return redirect(url_for("agents_simulator.home"))

    return bp
