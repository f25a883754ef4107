"""The agents' side of the product's database: who signed in (``agents``), what each did
(``agent_audit``), and a customer's records as the console reads them (``SqlCustomerRecords``).

Customers appear in the audit only as the same pseudonym the security events use
(HMAC-SHA256 of the number under ``SECRET_KEY``), so the two trails join without naming anyone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from dialogs.backends import BackendError, BillingBackend
from dialogs.registry import Deps
from dialogs.stores import IdentityCache
from engine.masking import mask
from engine.security_audit import SecurityAudit
from web_fallback.agents.ports import AgentIdentity, AuditEntry, CustomerFile, PaymentOutcome, Row

from ..agent_actions import (
    check_unresolved_payment,
    close_billing_refusal,
    repost_to_billing,
    settle_unresolved_payment,
    unlock_pin,
    vend_owed_token,
)
from .consent import SqlConsent
from .delivery import without_send_markers
from .models import (
    AccountLinkRow,
    Base,
    MismatchedCallbackRow,
    OutboxEventRow,
    PaymentIntentRow,
    PendingTicketRow,
    PinCredentialRow,
    PreferenceRow,
    SessionAuditRow,
    SmsInboxRow,
    WhatsAppWindowRow,
)
from .security_audit import SqlSecurityAudit, pseudonym

__all__ = ["AgentAuditRow", "AgentRow", "SqlAgentAudit", "SqlCustomerRecords"]

log = logging.getLogger("agents")

_RECENT = 20
_WHATSAPP_WINDOW = timedelta(hours=24)     # WhatsApp's customer-service window
_KEPT_CHANNELS = {("sms", "africastalking"): "SMS", ("whatsapp", "twilio"): "WhatsApp (Twilio)",
                  ("whatsapp", "meta"): "WhatsApp (Meta)"}


class AgentRow(Base):
    """An agent who signed in once: the identity provider's subject, name, roles, sign-in times."""

    __tablename__ = "agents"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    roles: Mapped[str] = mapped_column(String(120))
    via: Mapped[str] = mapped_column(String(20))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AgentAuditRow(Base):
    """One agent action; the customer is a pseudonym."""

    __tablename__ = "agent_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    agent: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(200))


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(moment: datetime | None) -> str:
    aware = _aware(moment)
    return aware.strftime("%Y-%m-%d %H:%M UTC") if aware else "-"


class SqlAgentAudit:
    def __init__(self, sessions: sessionmaker[Session], key: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._sessions = sessions
        self._key = key
        self._clock = clock

    def seen(self, agent: AgentIdentity) -> None:
        now = self._clock()
        with self._sessions.begin() as db:
            row = db.get(AgentRow, agent.subject[:200])
            if row is None:
                db.add(AgentRow(subject=agent.subject[:200], name=agent.name[:120], roles=",".join(agent.roles),
                                via=agent.via, first_seen=now, last_seen=now))
            else:
                row.name, row.roles, row.via, row.last_seen = agent.name[:120], ",".join(agent.roles), agent.via, now

    def record(self, entry: AuditEntry) -> None:
        customer_id = pseudonym(self._key, entry.customer) if entry.customer else None
        # The log line names the customer by a short pseudonym, never the number.
        log.info("agent=%s role=%s action=%s customer=%s outcome=%s", entry.agent, entry.role, entry.action,
                 customer_id[:12] if customer_id else "-", entry.outcome)
        try:
            with self._sessions.begin() as db:
                db.add(AgentAuditRow(at=self._clock(), agent=entry.agent[:200], role=entry.role[:20],
                                     action=entry.action[:40], customer_id=customer_id,
                                     outcome=entry.outcome[:20], detail=entry.detail[:200]))
        except Exception:   # the audit must not turn an agent's page into a 500; the log line above stays
            log.exception("could not store the agent audit row of %s", entry.action)

    def recent(self, *, agent: str | None = None, customer: str | None = None, limit: int = 50) -> list[AuditEntry]:
        query = select(AgentAuditRow).order_by(AgentAuditRow.id.desc()).limit(limit)
        if agent is not None:
            query = query.where(AgentAuditRow.agent == agent)
        if customer is not None:
            query = query.where(AgentAuditRow.customer_id == pseudonym(self._key, customer))
        with self._sessions() as db:
            return [AuditEntry(r.agent, r.role, r.action, r.outcome, None, r.detail, _aware(r.at), r.customer_id)
                    for r in db.scalars(query).all()]


# Why a payment is to resolve, by its status (``LocalPayment.status``).
_TO_RESOLVE = {
    "unresolved": "the provider may have started it; never recorded: counted as on its way",
    "unanswered": "never sent, and the provider never answered about it: the customer was told nothing was charged",
}


class SqlCustomerRecords:
    """A customer's records for the console; ``billing`` adds the billing system's view of the accounts;
    ``deps`` (the product's ledger, payment client and outbox) lets agents resolve payments."""

    def __init__(self, sessions: sessionmaker[Session], security: SqlSecurityAudit, identity: IdentityCache,
                 billing: BillingBackend | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 whatsapp_window: timedelta = timedelta(minutes=1410), deps: Deps | None = None):
        self._sessions = sessions
        self._deps = deps
        self._whatsapp_window = whatsapp_window     # how long after the customer wrote alerts go as free text
        self._security = security
        self._identity = identity
        self._billing = billing
        self._consent = SqlConsent(sessions)
        self._clock = clock

    def numbers_for_account(self, account_number: str) -> list[str]:
        with self._sessions() as db:
            found = list(dict.fromkeys(db.scalars(select(AccountLinkRow.msisdn)
                                                  .where(AccountLinkRow.account_number == account_number)
                                                  .order_by(AccountLinkRow.id))))
        if self._billing is not None:
            try:
                phone = self._billing.account(account_number).phone
            except BackendError:
                phone = None
            if phone and phone not in found:
                found.append(phone)
        return found

    def file(self, msisdn: str) -> CustomerFile:
        found = CustomerFile(msisdn=msisdn)
        with self._sessions() as db:
            preference = db.get(PreferenceRow, msisdn)
            found.language = preference.language if preference else None
            for link in db.scalars(select(AccountLinkRow).where(AccountLinkRow.msisdn == msisdn)
                                   .order_by(AccountLinkRow.id)):
                found.accounts.append({"account": link.account_number, "link": link.source,
                                       "since": _when(link.created_at)})
            found.sessions = [{"started": _when(r.started_at), "channel": r.channel, "flow": r.flow or "-",
                               "path": " > ".join(r.nodes.split(",")[-6:]) if r.nodes else "-",
                               "outcome": r.outcome or "-", "gateway": r.gateway_status or "-"}
                              for r in db.scalars(select(SessionAuditRow)
                                                  .where(SessionAuditRow.user_masked == mask(msisdn))
                                                  .order_by(SessionAuditRow.started_at.desc()).limit(_RECENT))]
            payments = db.scalars(select(PaymentIntentRow).where(PaymentIntentRow.msisdn == msisdn)
                                  .order_by(PaymentIntentRow.id.desc()).limit(_RECENT)).all()
            # "Réf." is the payment id the customer's screen and receipt quote (PAY-...): the one they read to an
            # agent on the phone; "reference" is the provider's transaction id, once paid.
            found.payments = [{"created": _when(p.created_at), "account": p.account_number, "purpose": p.purpose,
                               "amount": f"{p.amount} {p.currency}", "wallet": p.wallet or "-", "status": p.status,
                               "customer's Réf.": p.provider_payment_id or "-",
                               "reference": p.reference or "-", "reason": p.failure_reason or "-"} for p in payments]
            # All of them, however old: each stays on the customer's balance until an agent settles it.
            found.unresolved = [{"created": _when(p.created_at), "account": p.account_number, "purpose": p.purpose,
                                 "amount": f"{p.amount} {p.currency}", "wallet": p.wallet or "-",
                                 "key": p.idempotency_key, "questions": str(p.status_checks),
                                 "why": _TO_RESOLVE[p.status]}
                                for p in db.scalars(select(PaymentIntentRow)
                                                    .where(PaymentIntentRow.msisdn == msisdn,
                                                           PaymentIntentRow.status.in_(_TO_RESOLVE))
                                                    .order_by(PaymentIntentRow.id))]
            found.billing_refused = [{"settled": _when(p.updated_at), "account": p.account_number,
                                      "amount": f"{p.amount} {p.currency}", "reference": p.provider_payment_id or "-",
                                      "billing said": p.billing_said or "-", "key": p.idempotency_key}
                                     for p in db.scalars(select(PaymentIntentRow)
                                                         .where(PaymentIntentRow.msisdn == msisdn,
                                                                PaymentIntentRow.billing_post == "refused")
                                                         .order_by(PaymentIntentRow.id))]
            found.tokens_owed = [{"settled": _when(p.updated_at), "account": p.account_number,
                                  "amount": f"{p.amount} {p.currency}", "reference": p.provider_payment_id or "-",
                                  "token": "owed: the worker asks the vending system again" if p.vend == "due"
                                  else "owed: refused by the vending system",
                                  "tries": str(p.vend_tries or 0), "next try": _when(p.vend_next_at),
                                  "vending system said": p.vend_said or "-", "key": p.idempotency_key}
                                 for p in db.scalars(select(PaymentIntentRow)
                                                     .where(PaymentIntentRow.msisdn == msisdn,
                                                            PaymentIntentRow.vend.in_(("due", "refused")))
                                                     .order_by(PaymentIntentRow.id))]
            provider_ids = [p.provider_payment_id for p in payments if p.provider_payment_id]
            if provider_ids:
                found.mismatches = [_mismatch_row(m) for m in db.scalars(
                    select(MismatchedCallbackRow).where(MismatchedCallbackRow.provider_payment_id.in_(provider_ids))
                    .order_by(MismatchedCallbackRow.id.desc()))]
            found.tickets = [{"created": _when(t.created_at), "account": t.account_number, "kind": t.kind,
                              "category": t.category, "status": t.status,
                              "ticket": t.ticket_reference or "-", "refusal": t.refusal or "-"}
                             for t in db.scalars(select(PendingTicketRow).where(PendingTicketRow.msisdn == msisdn)
                                                 .order_by(PendingTicketRow.id.desc()).limit(_RECENT))]
            found.notifications = [{"id": str(n.id), "created": _when(n.created_at), "kind": n.kind,
                                    "channel": n.channel, "status": n.status,
                                    "delivery": n.delivery_status or "-", "attempts": str(n.attempts),
                                    "error": n.last_error or "-"}
                                   for n in db.scalars(select(OutboxEventRow).where(OutboxEventRow.msisdn == msisdn)
                                                       .order_by(OutboxEventRow.id.desc()).limit(_RECENT))]
            # What the customer wrote stays sealed: an agent sees that a message waits, never its text.
            found.kept = [{"received": _when(k.received_at), "channel": _KEPT_CHANNELS.get(
                               (k.channel, k.provider), f"{k.channel} ({k.provider})"),
                           "status": "waiting: the worker answers it once it can run it",
                           "tries": str(k.attempts), "next try": _when(k.next_attempt_at),
                           "message": "sealed (not shown)"}
                          for k in db.scalars(select(SmsInboxRow).where(SmsInboxRow.msisdn == msisdn,
                                                                        SmsInboxRow.status == "pending")
                                              .order_by(SmsInboxRow.id).limit(_RECENT))]
            found.whatsapp = [self._window(provider, number, at) for provider, number, at in db.execute(
                select(WhatsAppWindowRow.provider, WhatsAppWindowRow.business_number, WhatsAppWindowRow.last_inbound_at)
                .where(WhatsAppWindowRow.msisdn == msisdn)
                .order_by(WhatsAppWindowRow.provider, WhatsAppWindowRow.business_number))]
            pin = db.get(PinCredentialRow, msisdn)
            locked_until = _aware(pin.locked_until) if pin else None
            found.pin = {"set": "yes" if pin is not None and pin.pin_hash else "no",
                         "failed tries": str(pin.failed_attempts if pin else 0),
                         "lockouts in a row": str(pin.lockouts if pin else 0),
                         "locked": f"until {_when(locked_until)}" if locked_until and locked_until > self._clock()
                         else "no"}
        # Where the customer said it and, for an opt-in, where its alerts go: two facts the regulator asks apart.
        found.consent = [{"at": _when(c.at), "action": c.action, "topic": c.topic or "(all)", "scope": c.scope or "-",
                          "said on": c.channel or "-", "source": c.source, "alerts go by": c.delivery or "-"}
                         for c in reversed(self._consent.history(msisdn))][:_RECENT * 2]
        found.stopped = self._consent.is_stopped(msisdn)
        found.security = [{"at": _when(e.occurred_at), "kind": e.kind, "channel": e.channel,
                           "account": e.account_number or "-", "detail": e.detail}
                          for e in self._security.for_subject(msisdn, limit=_RECENT)]
        self._billing_view(found)
        return found

    def _window(self, provider: str, number: str, wrote: datetime) -> dict[str, str]:
        """One business number's window: WhatsApp's 24 hours from the customer's last message to it, and ours (less
        a margin) during which an alert with a template goes as free text (from the configured number)."""
        now, wrote = self._clock(), _aware(wrote) or wrote
        closes, free_until = wrote + _WHATSAPP_WINDOW, wrote + self._whatsapp_window
        # Our own number, not the customer's: shown whole. '' is a row from before numbers were kept (v1_wa3).
        sender = _KEPT_CHANNELS.get(("whatsapp", provider), f"WhatsApp ({provider})")
        return {"sender": f"{sender} {number or '(configured number)'}",
                "customer last wrote": _when(wrote),
                "24-hour window": f"open until {_when(closes)}" if now < closes else f"closed since {_when(closes)}",
                "alerts with a template go as": f"free text until {_when(free_until)}" if now < free_until
                else "the template"}

    def _billing_view(self, found: CustomerFile) -> None:
        if self._billing is None:
            return
        try:
            registered = self._billing.accounts_for_phone(found.msisdn)
        except BackendError as exc:
            found.backoffice_error = f"billing system unavailable ({type(exc).__name__})"
            return
        linked = {row["account"] for row in found.accounts}
        for account in registered:
            if account.account_number not in linked:
                found.accounts.append({"account": account.account_number, "link": "registered in billing",
                                       "since": "-"})
        by_number = {a.account_number: a for a in registered}
        for row in found.accounts:
            known = by_number.get(row["account"])
            if known is not None:
                row.update({"holder": known.customer_name, "kind": f"{known.category}, {known.kind}",
                            "zone": known.zone})

    def unlock_pin(self, msisdn: str, agent: str) -> bool:
        return unlock_pin(self._sessions, self._identity, self._security, msisdn, by=f"agent {agent}")

    def check_payment(self, msisdn: str, key: str) -> PaymentOutcome:
        if self._deps is None or self._deps.ledger is None or self._deps.payments is None:
            return PaymentOutcome("unreachable")
        return check_unresolved_payment(self._deps, msisdn, key)

    def settle_payment(self, msisdn: str, key: str, *, paid: bool, reference: str | None, reason: str,
                       agent: str) -> PaymentOutcome:
        if self._deps is None or self._deps.ledger is None or self._deps.outbox is None:
            return PaymentOutcome("unreachable")
        return settle_unresolved_payment(self._deps, msisdn, key, paid=paid, reference=reference, reason=reason,
                                         by=f"agent {agent}")

    def repost_to_billing(self, msisdn: str, key: str, agent: str) -> PaymentOutcome:
        if self._deps is None or self._deps.ledger is None:
            return PaymentOutcome("unreachable")
        return repost_to_billing(self._deps, msisdn, key, by=f"agent {agent}")

    def close_billing_refusal(self, msisdn: str, key: str, reason: str, agent: str) -> PaymentOutcome:
        if self._deps is None or self._deps.ledger is None:
            return PaymentOutcome("unreachable")
        return close_billing_refusal(self._deps, msisdn, key, reason=reason, by=f"agent {agent}")

    def vend_token(self, msisdn: str, key: str, agent: str) -> PaymentOutcome:
        if self._deps is None or self._deps.ledger is None or self._deps.outbox is None:
            return PaymentOutcome("unreachable")
        return vend_owed_token(self._deps, msisdn, key, by=f"agent {agent}")

    def resend(self, msisdn: str, notification_id: int) -> bool:
        """The notification pending again, as if new: where and in which form it goes (free text or template,
        WhatsApp or SMS) is decided when it is sent, by the customer's channel and WhatsApp window then, not by
        how the failed send went (``without_send_markers``)."""
        with self._sessions.begin() as db:
            row = db.scalars(select(OutboxEventRow)
                             .where(OutboxEventRow.id == notification_id, OutboxEventRow.msisdn == msisdn,
                                    # failed to send, or sent and reported failed by the provider
                                    or_(OutboxEventRow.status == "failed", OutboxEventRow.delivery_status == "failed"))
                             .with_for_update()).first()
            if row is None:
                return False
            row.payload = without_send_markers(row.payload)
            row.status, row.attempts, row.next_attempt_at, row.claimed_until = "pending", 0, None, None
            row.last_error, row.delivery_status = None, None
            return True


def _mismatch_row(kept: MismatchedCallbackRow) -> Row:
    """A kept provider result as the console lists it. The provider's payment id and the amount have columns of
    their own, outside the free text an agent reads with long numbers masked: neither names a customer, and the
    provider's id (``PAY-`` and hex, often with a run of digits) is what the agent quotes to the provider."""
    fields = _fields(kept.received)
    provider_id = str(fields.pop("payment_id", None) or kept.provider_payment_id)
    amount = fields.pop("amount", None)
    return {"received": _when(kept.received_at), "payment": kept.provider_payment_id,
            "provider's payment id": provider_id, "amount": "-" if amount is None else str(amount),
            "source": kept.source, "reasons": kept.reasons, "status": kept.status,
            "fields": ", ".join(f"{k}={v}" for k, v in fields.items())[:200] if fields else kept.received[:120]}


def _fields(raw: str) -> dict[str, Any]:
    try:
        fields = json.loads(raw)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def records_type_check(records: SqlCustomerRecords, audit: SqlAgentAudit, security: SecurityAudit) -> None:
    """Nothing: lets mypy check the SQL classes against the ports they fill."""
    from web_fallback.agents.ports import AgentAudit, CustomerRecords

    _records: CustomerRecords = records
    _audit: AgentAudit = audit
