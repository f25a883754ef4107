"""The outbox as a delivery queue: claiming rows, recording what the provider said, crash recovery.

Several workers on several machines share the queue: a row is claimed (``sending``, held
until ``claimed_until``) in one short transaction, with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so two workers never take the same row (SQLite, the embedded default, runs one
worker). The provider call happens outside any transaction.

A worker killed between the provider's acceptance and the status update leaves a row in
``sending`` past its claim. Nothing tells whether the provider took it, except the
provider's delivery reports, kept in ``delivery_reports`` even when no row knows their
message id: a stale row adopts a report for its number that arrived after its claim (it
was sent: never send it twice; a WhatsApp "outside the window" report sends it again by SMS); with no such report after ``settle_seconds`` the message
never left (send it again: never lose it). One report is adopted by one row (``delivery_reports.adopted_by``),
also once the row it sent again by SMS has forgotten its message id. A message sent by SMS from a later part on
(WhatsApp delivered the first ones) keeps its parts' ids: an earlier part reported undelivered after that SMS went
follows by SMS in a row of its own, once. A reply a webhook sent at once is recorded as a sent row
(``record_sent``), so a status about it acts on it as on any other.

A row's sealed secrets (``sealed``, see ``outbox_seal``) are erased as soon as the row is sent, failed
or suppressed: only a message still to be sent holds one, except a message sent on a channel that may
still report it undeliverable for a reason SMS does not share (WhatsApp outside the 24-hour window): its
secrets are kept (``sent(keep_sealed=True)``) until its delivery is final (delivered or read, failed, or
sent again by SMS: ``record_report``), or until the dispatcher's bound passes (``kept_secrets``,
``erase_secrets``). Every stamp (sent, next try, a report's arrival) is on the product's clock
(``Settings.clock``), the one the claims are compared with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..settings import utc_now
from .models import DeliveryReportRow, OutboxEventRow, OutboxPartRow, stored_dedupe_key

__all__ = ["AS_TEMPLATE", "ONLY_CHANNEL", "PARTS_SENT", "SEND_MARKERS", "SMS_PARTS", "TEMPLATE_NEXT",
           "ClaimedMessage", "SqlDeliveryQueue", "without_send_markers"]

# A payload field naming the one channel a message may still go by (set when it is sent again by SMS).
ONLY_CHANNEL: Final = "only_channel"
# Payload fields of a kind with a WhatsApp template sent as free text inside the customer's 24-hour window:
# set when it is sent so (a late "outside the window" then sends it again as the template, not by SMS), and
# then on the row pending again for that (the template whatever the window, SMS if the template is refused).
TEMPLATE_NEXT: Final = "whatsapp_template_next"
AS_TEMPLATE: Final = "whatsapp_as_template"
# A payload field of a message that goes out as several provider messages (a long WhatsApp reply): the ids
# the provider gave the parts already taken, in order, so a pass that retries it sends only the rest.
PARTS_SENT: Final = "parts_sent"
# A payload field of a message in several parts whose later part WhatsApp could not deliver for a reason SMS does
# not share (outside the 24-hour window): the parts (their numbers, from 0) that SMS still has to bring, the
# customer having read the others on WhatsApp. The dispatcher sends those only, said to be a continuation.
SMS_PARTS: Final = "sms_parts"
# What the last send decided from WhatsApp's window (the form sent, the one channel left) and how far it got:
# a message an agent sends again goes whole, by what the customer chose and the window as they are then, so
# these go (``without_send_markers``).
SEND_MARKERS: Final = (ONLY_CHANNEL, TEMPLATE_NEXT, AS_TEMPLATE, PARTS_SENT, SMS_PARTS)


def without_send_markers(payload: str) -> str:
    """The stored payload (JSON) without ``SEND_MARKERS``; unchanged when it has none."""
    fields = json.loads(payload)
    if not isinstance(fields, dict) or not any(marker in fields for marker in SEND_MARKERS):
        return payload
    return json.dumps({k: v for k, v in fields.items() if k not in SEND_MARKERS}, default=str)

# The provider's delivery words, as our statuses.
_DELIVERED = frozenset({"Success", "delivered", "read"})
_FAILED = frozenset({"Failed", "Rejected", "AbsentSubscriber", "Expired", "failed", "undelivered"})


def delivery_status(provider_status: str) -> str:
    if provider_status in _DELIVERED:
        return "delivered"
    if provider_status in _FAILED:
        return "failed"
    return "sent"


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    kind: str
    msisdn: str
    language: str
    channel: str
    payload: dict[str, Any]
    attempts: int          # including this one
    sealed: str | None = None   # the payload's secret fields, sealed (opened by the dispatcher)
    created_at: datetime | None = None   # when it was queued (the product's clock)


class SqlDeliveryQueue:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utc_now) -> None:
        self._sessions, self._clock = sessions, clock

    def claim(self, now: datetime, lease: timedelta, limit: int = 50,
              urgent_kinds: Collection[str] = (), only_kinds: Collection[str] | None = None) -> list[ClaimedMessage]:
        """Take up to ``limit`` due rows for this worker until ``now + lease``: urgent kinds first;
        only rows of ``only_kinds`` when given (quiet hours leave the others waiting)."""
        with self._sessions.begin() as db:
            due = (OutboxEventRow.status == "pending") & (
                OutboxEventRow.next_attempt_at.is_(None) | (OutboxEventRow.next_attempt_at <= now))
            if only_kinds is not None:
                due = due & OutboxEventRow.kind.in_(list(only_kinds))
            order: list[Any] = [OutboxEventRow.id]
            if urgent_kinds:
                order.insert(0, case((OutboxEventRow.kind.in_(list(urgent_kinds)), 0), else_=1))
            rows = db.scalars(select(OutboxEventRow).where(due).order_by(*order).limit(limit)
                              .with_for_update(skip_locked=True)).all()
            claimed = []
            for row in rows:
                row.status, row.claimed_until = "sending", now + lease
                row.attempts = (row.attempts or 0) + 1
                claimed.append(ClaimedMessage(row.id, row.kind, row.msisdn, row.language, row.channel or "sms",
                                              json.loads(row.payload), row.attempts, row.sealed,
                                              _aware(row.created_at)))
            return claimed

    def sent(self, row_id: int, *, channel: str, message_id: str, now: datetime, keep_sealed: bool = False,
             template_next: bool = False, sms_parts: list[int] | None = None) -> None:
        """Taken by the provider. Its sealed secrets are erased, unless ``keep_sealed`` (a late failure may
        still send it another way): then they stay until a final report, or ``erase_secrets``.
        ``template_next``: free text went in place of its WhatsApp template (the window was open); if the
        provider reports the window closed after all, the template goes next (``TEMPLATE_NEXT``).
        ``sms_parts``: the parts of a message in several that this SMS brought from a later part on (``SMS_PARTS``),
        WhatsApp having delivered or taken the ones before: an earlier one WhatsApp reports undelivered (now or
        later) still goes by SMS."""
        with self._sessions.begin() as db:
            values: dict[str, Any] = {"status": "sent", "channel": channel, "provider_message_id": message_id,
                                      "sent_at": now, "delivery_status": "sent", "claimed_until": None,
                                      "last_error": None}
            if not keep_sealed:
                values["sealed"] = None
            marks: dict[str, Any] = ({TEMPLATE_NEXT: True} if template_next else {}) | (
                {SMS_PARTS: sms_parts} if sms_parts else {})
            if marks:
                row = db.get(OutboxEventRow, row_id)
                if row is not None:
                    values["payload"] = json.dumps({**json.loads(row.payload), **marks}, default=str)
            db.execute(update(OutboxEventRow).where(OutboxEventRow.id == row_id).values(**values))
            # Reports that came before this record (the provider's status outran our commit) apply now.
            settled = self._settle(db, row_id, message_id)
            if channel == "sms" and sms_parts and (parts := self._part_ids(db, row_id)):
                # An earlier part reported undelivered while this SMS was on its way: it follows by SMS.
                self._earlier_parts_by_sms(db, row_id, parts)
        if keep_sealed and settled in (None, "sent"):
            # On PostgreSQL a report committed while this transaction ran is seen by neither side (its
            # recorder found no row with this id yet, this transaction read the reports before it): one more
            # look once committed, so that a late "outside the window" still sends the secret by SMS.
            with self._sessions.begin() as db:
                row = db.scalars(select(OutboxEventRow).where(
                    OutboxEventRow.id == row_id, OutboxEventRow.provider_message_id == message_id)
                    .with_for_update()).first()
                if row is not None:
                    self._settle(db, row.id, message_id)

    def record_sent(self, *, kind: str, msisdn: str, language: str, payload: dict[str, Any], sealed: str | None,
                    dedupe_key: str, channel: str, message_ids: list[str]) -> bool:
        """A message its channel sent at once, outside the worker (a webhook's own reply), recorded as a sent row:
        the database then knows it answered, and a status report about it, or about any of its parts
        (``message_ids``, in order), finds it and acts as on any other (outside the window: by SMS); reports that
        came before this record apply now. ``sealed`` is kept as a sent WhatsApp message's is (``erase_secrets``).
        ``False`` when ``dedupe_key`` is recorded already."""
        now, dedupe_key = self._clock(), stored_dedupe_key(dedupe_key)
        ids = [message_id[:64] for message_id in message_ids]
        if len(ids) > 1:
            payload = {**payload, PARTS_SENT: ids}
        try:
            with self._sessions.begin() as db:
                if db.scalars(select(OutboxEventRow.id).where(OutboxEventRow.dedupe_key == dedupe_key)).first():
                    return False
                row = OutboxEventRow(dedupe_key=dedupe_key, kind=kind, msisdn=msisdn, language=language,
                                     payload=json.dumps(payload, default=str), sealed=sealed, status="sent",
                                     attempts=1, channel=channel, created_at=now, sent_at=now,
                                     provider_message_id=ids[0], delivery_status="sent")
                db.add(row)
                db.flush()
                for index, message_id in enumerate(ids if len(ids) > 1 else []):
                    db.add(OutboxPartRow(outbox_id=row.id, part=index, provider_message_id=message_id))
                db.flush()
                self._settle(db, row.id, ids[0])
        except IntegrityError:   # recorded meanwhile by another process (a redelivery)
            return False
        return True

    def parts_sent(self, row_id: int, message_ids: list[str]) -> None:
        """The provider took the first ``len(message_ids)`` parts of this message (their ids, in order; none yet:
        the row is marked as sent in parts before the first): kept in the row at once, so a retry, or the
        recovery of a worker that died mid-way (``recover``), sends only the others."""
        with self._sessions.begin() as db:
            row = db.get(OutboxEventRow, row_id, with_for_update=True)
            if row is not None:
                row.payload = json.dumps({**json.loads(row.payload), PARTS_SENT: list(message_ids)}, default=str)
                # Each part's id, so that a status report about part 2 or later finds this row (``record_report``).
                known = {part.part: part for part in db.scalars(select(OutboxPartRow).where(
                    OutboxPartRow.outbox_id == row_id))}
                for index, message_id in enumerate(message_ids):
                    if index not in known:
                        db.add(OutboxPartRow(outbox_id=row_id, part=index, provider_message_id=message_id[:64]))
                    elif known[index].provider_message_id != message_id[:64]:   # the row sent anew (an agent)
                        known[index].provider_message_id = message_id[:64]

    def retry(self, row_id: int, *, error: str, at: datetime) -> None:
        with self._sessions.begin() as db:
            db.execute(update(OutboxEventRow).where(OutboxEventRow.id == row_id).values(
                status="pending", next_attempt_at=at, claimed_until=None, last_error=error[:120]))

    def failed(self, row_id: int, *, error: str) -> None:
        with self._sessions.begin() as db:
            db.execute(update(OutboxEventRow).where(OutboxEventRow.id == row_id).values(
                status="failed", delivery_status="failed", claimed_until=None, last_error=error[:120],
                sealed=None))

    def suppress(self, row_id: int, *, reason: str) -> None:
        """Not sent on purpose (the customer sent STOP): kept with the reason, never sent later."""
        self._close(row_id, "suppressed", reason)

    def expire(self, row_id: int, *, reason: str) -> None:
        """Out of date before it could be sent: kept with the reason (``expired``), never sent later."""
        self._close(row_id, "expired", reason)

    def _close(self, row_id: int, status: str, reason: str) -> None:
        with self._sessions.begin() as db:
            db.execute(update(OutboxEventRow).where(OutboxEventRow.id == row_id).values(
                status=status, claimed_until=None, last_error=reason[:120], sealed=None))

    def release(self, row_ids: Collection[int]) -> None:
        """Give claimed rows back untouched (the provider's pace is used up): not an attempt."""
        if not row_ids:
            return
        with self._sessions.begin() as db:
            db.execute(update(OutboxEventRow).where(OutboxEventRow.id.in_(list(row_ids)),
                                                    OutboxEventRow.status == "sending").values(
                status="pending", claimed_until=None, attempts=OutboxEventRow.attempts - 1))

    def record_report(self, *, provider: str, message_id: str, msisdn: str, status: str,
                      failure_reason: str | None = None, sms_again: str | None = None) -> bool:
        """Keep a delivery report (once) and apply it to the row that sent that message, if any.
        ``sms_again``: this report is a failure SMS does not share (WhatsApp outside the 24-hour window),
        and the reason to keep for agents as the row is sent again by SMS (``send_again_by_sms``), its
        sealed secrets kept for that send. Any other final report (delivered, failed) erases them.
        Both are kept with the report: one that arrives before the row is recorded as ``sent`` (the
        provider's status outran the worker's commit) is applied then, the same way.
        Returns whether a row knows the message."""
        with self._sessions() as db:
            # The time is ours, to the microsecond: recovery compares it with a claim's (a server default
            # would be whole seconds on SQLite).
            db.add(DeliveryReportRow(provider=provider, provider_message_id=message_id[:64], msisdn=msisdn[:20],
                                     status=status[:24], failure_reason=(failure_reason or None) and
                                     failure_reason[:80], sms_again=(sms_again or None) and sms_again[:120],
                                     received_at=self._clock()))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
        with self._sessions.begin() as db:
            # Locked: the worker recording this send may be looking at the same reports (``sent``).
            row = db.scalars(select(OutboxEventRow).where(OutboxEventRow.provider_message_id == message_id)
                             .with_for_update()).first()
            if row is None:
                # Part 2 or later of a message in several: the row keeps the first part's id, its parts table each.
                row = db.scalars(select(OutboxEventRow).join(
                    OutboxPartRow, OutboxPartRow.outbox_id == OutboxEventRow.id).where(
                    OutboxPartRow.provider_message_id == message_id[:64]).with_for_update()).first()
            if row is None:
                return False
            self._settle(db, row.id, message_id)
            return True

    def send_again_by_sms(self, message_id: str, *, reason: str) -> bool:
        """A WhatsApp message the provider took, then could not deliver for a reason SMS does not share
        (Meta: outside the 24-hour window): pending again at once, for SMS only (``ONLY_CHANNEL`` in its
        payload), ``reason`` kept for agents. ``False`` when no sent WhatsApp row has that id (or it was
        sent again already)."""
        with self._sessions.begin() as db:
            row = db.scalars(select(OutboxEventRow).where(
                OutboxEventRow.provider_message_id == message_id, OutboxEventRow.channel == "whatsapp",
                OutboxEventRow.status == "sent").with_for_update()).first()
            return row is not None and self._again_by_sms(db, row, reason)

    def _again_by_sms(self, db: Session, row: OutboxEventRow, reason: str, parts: list[int] | None = None,
                      delivered: Collection[int] = ()) -> bool:
        """The row pending again by SMS, or, when it was free text standing for its WhatsApp template
        (``TEMPLATE_NEXT``), as that template once (SMS still after it, if the template is refused).
        ``parts``: a message in several parts of which WhatsApp delivered some: SMS brings only these
        (``SMS_PARTS``); a row still pending for that adds them (an earlier part's report came later) and drops
        those reported ``delivered`` since."""
        payload = json.loads(row.payload)
        if parts is not None and row.status == "pending" and payload.get(ONLY_CHANNEL) == "sms" \
                and isinstance(payload.get(SMS_PARTS), list):
            payload[SMS_PARTS] = sorted((set(payload[SMS_PARTS]) | set(parts)) - set(delivered))
            row.payload, row.delivery_status = json.dumps(payload, default=str), None
            return True
        if row.channel != "whatsapp" or row.status != "sent":
            return False
        template_next = payload.pop(TEMPLATE_NEXT, None)
        if parts is not None and not (template_next and parts[:1] == [0]):
            # The customer read the other parts on WhatsApp: SMS brings these, not the whole text again.
            payload[ONLY_CHANNEL], payload[SMS_PARTS], channel = "sms", parts, "sms"
        elif template_next:
            payload[AS_TEMPLATE] = True
            # The reason as reported ("...outside the 24-hour window (meta 131047); sent again by SMS"), its
            # consequence ours.
            reason, channel = reason.split("; ")[0] + "; sent again as its template", "whatsapp"
        else:
            payload[ONLY_CHANNEL], channel = "sms", "sms"
        row.payload = json.dumps(payload, default=str)
        if row.provider_message_id:
            # The row forgets the message id below: its reports say whose they are, for crash recovery.
            ids = [row.provider_message_id, *self._part_ids(db, row.id)]
            db.execute(update(DeliveryReportRow).where(
                DeliveryReportRow.provider_message_id.in_(ids),
                DeliveryReportRow.adopted_by.is_(None)).values(adopted_by=row.id))
        row.status, row.channel, row.next_attempt_at = "pending", channel, self._clock()
        row.provider_message_id, row.delivery_status, row.last_error = None, None, reason[:120]
        return True

    def kept_secrets(self) -> list[tuple[ClaimedMessage, datetime]]:
        """The sent rows still holding sealed secrets (``sent(keep_sealed=True)``, no final report yet) and
        when each was sent; the secrets themselves stay sealed (not in the result)."""
        with self._sessions() as db:
            # Oldest first, as the partial index ix_outbox_events_kept_secrets holds them (read alone).
            rows = db.scalars(select(OutboxEventRow).where(OutboxEventRow.status == "sent",
                                                           OutboxEventRow.sealed.is_not(None))
                              .order_by(OutboxEventRow.sent_at)).all()
            return [(ClaimedMessage(r.id, r.kind, r.msisdn, r.language, r.channel, json.loads(r.payload),
                                    r.attempts, None, _aware(r.created_at)), _aware(r.sent_at or r.created_at))
                    for r in rows]

    def erase_secrets(self, row_ids: Collection[int]) -> int:
        """Erase the sealed secrets of these rows if they are still sent (not pending again for SMS meanwhile);
        how many were erased."""
        if not row_ids:
            return 0
        with self._sessions.begin() as db:
            result = db.execute(update(OutboxEventRow).where(
                OutboxEventRow.id.in_(list(row_ids)), OutboxEventRow.status == "sent",
                OutboxEventRow.sealed.is_not(None)).values(sealed=None))
            return int(getattr(result, "rowcount", 0) or 0)

    def recover(self, now: datetime, lease: timedelta, settle: timedelta,
                template_kinds: Collection[str] = ()) -> tuple[int, int]:
        """Rows left ``sending`` past their claim (a worker died): adopt a delivery report that shows
        the provider took the message, or send again once ``settle`` passed with none.
        ``template_kinds``: the kinds with a WhatsApp template; such a row adopting an "outside the window"
        report (that had not gone as its template) goes again as the template, as it would have had the worker
        recorded its send (``sent(template_next=True)``), not by SMS.
        Returns (adopted, requeued)."""
        adopted = requeued = 0
        with self._sessions.begin() as db:
            stale = db.scalars(select(OutboxEventRow).where(OutboxEventRow.status == "sending",
                                                            OutboxEventRow.claimed_until < now)
                               .with_for_update(skip_locked=True)).all()
            for row in stale:
                assert row.claimed_until is not None
                if PARTS_SENT in json.loads(row.payload):
                    # A message in parts: a report shows one part went, not that the others did. Sent again
                    # after ``settle``, only the parts not recorded as taken go (``parts_sent``).
                    if now - _aware(row.claimed_until) >= settle:
                        row.status, row.claimed_until, row.next_attempt_at = "pending", None, now
                        row.last_error = "worker stopped during the send of its parts; the rest sent again"
                        requeued += 1
                    continue
                # A second of slack: SQLite stamps reports with CURRENT_TIMESTAMP (whole seconds, compared as
                # text), and a fast provider's report can arrive in the very second of the claim.
                claimed_at = (_aware(row.claimed_until) - lease).replace(microsecond=0) - timedelta(seconds=1)
                known = select(OutboxEventRow.provider_message_id).where(
                    OutboxEventRow.provider_message_id.is_not(None))
                parts = select(OutboxPartRow.provider_message_id)    # another row's part 2 is not this row's
                report = db.scalars(select(DeliveryReportRow).where(
                    DeliveryReportRow.msisdn == row.msisdn, DeliveryReportRow.received_at >= claimed_at,
                    DeliveryReportRow.provider_message_id.not_in(known),
                    DeliveryReportRow.provider_message_id.not_in(parts), DeliveryReportRow.adopted_by.is_(None))
                    .order_by(DeliveryReportRow.id)).first()
                if report is not None and not self._adopt(db, report.provider_message_id, row.id):
                    report = None   # another worker's recovery took it first
                if report is not None:
                    row.status, row.provider_message_id = "sent", report.provider_message_id
                    row.sent_at, row.claimed_until = report.received_at, None
                    if report.sms_again:    # only a WhatsApp provider's report says so: it went by WhatsApp
                        row.channel = "whatsapp"
                        payload = json.loads(row.payload)
                        if row.kind in template_kinds and not payload.get(AS_TEMPLATE):
                            # The dead worker's record would have said which form it sent; the report says
                            # enough: an approved template is never refused as outside the window (that is
                            # what it is for), so what WhatsApp refused was the free text standing for it.
                            row.payload = json.dumps({**payload, TEMPLATE_NEXT: True}, default=str)
                    # Outside the window it goes again by SMS with its secrets; otherwise they are erased.
                    if self._settle(db, row.id, report.provider_message_id) is not None and row.status == "sent":
                        row.sealed = None
                    adopted += 1
                elif now - _aware(row.claimed_until) >= settle:
                    row.status, row.claimed_until, row.next_attempt_at = "pending", None, now
                    row.last_error = "worker stopped during the send; no delivery report"
                    requeued += 1
        return adopted, requeued

    @staticmethod
    def _adopt(db: Session, message_id: str, row_id: int) -> bool:
        """Take the reports of ``message_id`` for ``row_id``, unless a row took them first: one report, one row
        (two stale rows of a number would otherwise both adopt it; on PostgreSQL a concurrent recovery waits
        here for this one's commit and then finds them taken)."""
        result = db.execute(update(DeliveryReportRow).where(
            DeliveryReportRow.provider_message_id == message_id, DeliveryReportRow.adopted_by.is_(None))
            .values(adopted_by=row_id))
        return bool(getattr(result, "rowcount", 0))

    def get(self, row_id: int) -> dict[str, Any]:
        """One row as a mapping (for agents and tests)."""
        with self._sessions() as db:
            row = db.get(OutboxEventRow, row_id)
            if row is None:
                raise KeyError(row_id)
            return {c.name: getattr(row, c.name) for c in OutboxEventRow.__table__.columns}

    @staticmethod
    def _part_ids(db: Session, row_id: int) -> list[str]:
        """The provider ids of the row's parts, in order (none: a message in one part)."""
        return list(db.scalars(select(OutboxPartRow.provider_message_id).where(OutboxPartRow.outbox_id == row_id)
                               .order_by(OutboxPartRow.part)))

    def _settle(self, db: Session, row_id: int, message_id: str) -> str | None:
        """Apply to the row every report on its message (every part of a message in several): its delivery status
        (None: no report yet, returned); a failure SMS does not share (a report's ``sms_again``) sends a sent row
        again by SMS (of a message in several, the parts from the first one refused so, but those reported
        delivered), its sealed secrets kept for that send; any other final word (delivered, failed) erases them."""
        parts = self._part_ids(db, row_id)
        ids = parts if message_id[:64] in parts else [message_id]
        if parts and ids is parts:   # a part of a message in several (WhatsApp may have taken one only so far)
            current = db.scalar(select(OutboxEventRow.provider_message_id).where(OutboxEventRow.id == row_id))
            if current not in (None, parts[0]):
                # The row went again another way since: as its template, these parts are past; by SMS from a later
                # part on, an earlier one WhatsApp reports undelivered now still has to reach the customer.
                return self._earlier_parts_by_sms(db, row_id, parts)
        reports = db.execute(select(DeliveryReportRow.provider_message_id, DeliveryReportRow.status,
                                    DeliveryReportRow.sms_again).where(
            DeliveryReportRow.provider_message_id.in_(ids)).order_by(DeliveryReportRow.id)).all()
        row = db.get(OutboxEventRow, row_id) if reports else None   # read only when a report came first
        if row is None:
            return None
        words = {pid: [(delivery_status(status), again) for i, status, again in reports if i == pid] for pid in ids}
        # A final word (delivered/failed) wins over an intermediate "sent", whatever the order of arrival.
        final = {pid: next((s for s, _ in reversed(said) if s != "sent"), "sent") for pid, said in words.items()}
        if len(ids) == 1:
            status = final[ids[0]]
        else:   # every part delivered, or one failed: the message's word
            status = "failed" if "failed" in final.values() else (
                "delivered" if all(s == "delivered" for s in final.values()) else "sent")
        row.delivery_status = status
        refused = [(index, reason) for index, pid in enumerate(ids) for s, reason in words[pid]
                   if s == "failed" and reason and final[pid] == "failed"]
        if refused:
            first, again = refused[0]
            rest = None if len(ids) == 1 else [i for i in range(first, len(ids)) if final[ids[i]] != "delivered"]
            delivered = [i for i, pid in enumerate(ids) if final[pid] == "delivered"]
            if self._again_by_sms(db, row, again, rest, delivered):
                return status
        if row.status == "sent" and status != "sent" and all(s != "sent" for s in final.values()) \
                and not self._parts_on_whatsapp_pending(db, row):
            row.sealed = None    # final: nothing will send it again, its code is no longer needed
        return status

    @staticmethod
    def _sms_continuation(row: OutboxEventRow) -> tuple[dict[str, Any], set[int]] | None:
        """A row sent by SMS from a later part on (``SMS_PARTS``): its payload and the parts SMS brought."""
        if row.channel != "sms" or row.status != "sent":
            return None
        payload = json.loads(row.payload)
        brought = payload.get(SMS_PARTS)
        if not isinstance(brought, list) or not brought:
            return None
        return payload, {i for i in brought if isinstance(i, int)}

    def _words_on_parts(self, db: Session, parts: list[str]) -> dict[int, tuple[str, str | None]]:
        """Each part's final word (``delivered``/``failed``, ``sent`` while none) and the reason a failure sends it
        by SMS (a report's ``sms_again``)."""
        reports = db.execute(select(DeliveryReportRow.provider_message_id, DeliveryReportRow.status,
                                    DeliveryReportRow.sms_again).where(
            DeliveryReportRow.provider_message_id.in_(parts)).order_by(DeliveryReportRow.id)).all()
        words: dict[int, tuple[str, str | None]] = {}
        for index, pid in enumerate(parts):
            said = [(delivery_status(status), again) for i, status, again in reports if i == pid]
            final = next(((s, again) for s, again in reversed(said) if s != "sent"), ("sent", None))
            words[index] = final
        return words

    def _parts_on_whatsapp_pending(self, db: Session, row: OutboxEventRow) -> bool:
        """Whether a row sent by SMS from a later part on still waits for WhatsApp's word on an earlier part (its
        sealed text is kept for that part's SMS)."""
        continuation = self._sms_continuation(row)
        if continuation is None:
            return False
        words = self._words_on_parts(db, self._part_ids(db, row.id))
        return any(word == "sent" for index, (word, _) in words.items() if index not in continuation[1])

    def _earlier_parts_by_sms(self, db: Session, row_id: int, parts: list[str]) -> str | None:
        """A message WhatsApp delivered in part and SMS continued from a later part: parts before it that WhatsApp
        now reports undelivered for a reason SMS does not share go by SMS too, once, in a row of their own (the
        first SMS has gone: its row keeps its id and status), with the sealed text kept for it. Returns the row's
        delivery status, unchanged."""
        row = db.get(OutboxEventRow, row_id)
        continuation = self._sms_continuation(row) if row is not None else None
        if row is None or continuation is None:
            return None
        payload, brought = continuation
        words = self._words_on_parts(db, parts)
        late = sorted(i for i, (word, again) in words.items() if word == "failed" and again and i not in brought)
        if late:
            reason = words[late[0]][1] or ""
            payload[SMS_PARTS] = sorted(brought | set(late))     # never queued twice
            row.payload = json.dumps(payload, default=str)
            again = {k: v for k, v in payload.items() if k != PARTS_SENT} | {ONLY_CHANNEL: "sms", SMS_PARTS: late}
            db.add(OutboxEventRow(dedupe_key=f"{row.dedupe_key[:90]}:{row.id}:{late[0]}"[:120], kind=row.kind,
                                  msisdn=row.msisdn, language=row.language, payload=json.dumps(again, default=str),
                                  sealed=row.sealed, status="pending", attempts=0, channel="sms",
                                  next_attempt_at=self._clock(), created_at=self._clock(),
                                  last_error=(f"part {late[0] + 1}: " + reason)[:120]))
        if not any(word == "sent" for i, (word, _) in words.items() if i not in brought | set(late)):
            row.sealed = None    # WhatsApp's last word on every part is in: nothing needs the text again
        return row.delivery_status

def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns: they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
