"""WhatsApp notifications through Meta: the ``LetterSender`` the dispatcher uses for the ``whatsapp``
channel when Meta's Cloud API is configured.

Meta delivers free text only inside the 24-hour customer-service window; an approved template at any
time. So a kind that has a template (``whatsapp_template`` in ``config/notifications.yaml``: outage
alerts, power back, receipts ...) always goes as that template, filled from its payload, in the
message's language: an alert reaches a customer who has not written for days. A kind without one goes
as free text (the customer is usually in a conversation with us: a code they just asked for); Meta
refusing it (``131047``, outside the window) is a ``Rejected`` and the dispatcher sends it by SMS,
as it does when Twilio refuses.
"""

from __future__ import annotations

from collections.abc import Callable

from backend_clients.meta_notifier import OUTSIDE_WINDOW, MetaWhatsAppNotifier
from backend_clients.meta_whatsapp import SentMessage
from channels.sms_delivery import DeliveryReport

from .notify import Letter
from .storage.delivery import SqlDeliveryQueue

__all__ = ["MetaWhatsAppLetters", "meta_status_recorder"]


class MetaWhatsAppLetters:
    def __init__(self, notifier: MetaWhatsAppNotifier) -> None:
        self._notifier = notifier

    def send(self, to: str, text: str) -> SentMessage:
        return self._notifier.send(to, text)

    def send_letter(self, to: str, text: str, letter: Letter) -> SentMessage:
        template = letter.template
        if template is None:
            return self._notifier.send(to, text)
        return self._notifier.send_template(to, template.name, template.language, template.params)


def meta_status_recorder(queue: SqlDeliveryQueue) -> Callable[[DeliveryReport], bool]:
    """What Meta's ``statuses[]`` do to the outbox: recorded like any delivery report; a notification that
    failed outside the 24-hour window is sent again by SMS."""
    def record(report: DeliveryReport) -> bool:
        known = queue.record_report(provider="meta", message_id=report.message_id, msisdn=report.msisdn,
                                    status=report.status, failure_reason=report.failure_reason)
        if known and report.status == "failed" and report.failure_reason == OUTSIDE_WINDOW:
            queue.send_again_by_sms(report.message_id, reason=f"whatsapp: not delivered, outside the 24-hour "
                                                              f"window (Meta {OUTSIDE_WINDOW}); sent again by SMS")
        return known
    return record
