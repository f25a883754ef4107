"""A handset texting the SMS short code through Africa's Talking: each ``send`` is one incoming
message POSTed to the product like the provider does, and answers what the provider's fake SMS
API was asked to deliver back to that handset meanwhile (the HTTP answer is not the reply)."""

from __future__ import annotations

import itertools

from flask.testing import FlaskClient

from tests.support.fake_africastalking import FakeAfricasTalking

_ids = itertools.count(1)


class SmsPhone:
    def __init__(self, client: FlaskClient, fake: FakeAfricasTalking, msisdn: str, short_code: str = "21212",
                 token: str = "") -> None:
        self.client, self.fake, self.msisdn, self.short_code, self.token = client, fake, msisdn, short_code, token
        self.last_id = ""
        self.last_status = 0

    def send(self, text: str, message_id: str | None = None) -> list[str]:
        """Every SMS sent back to this phone while the message was handled."""
        self.last_id = message_id or f"ATXid_in_{next(_ids):06d}"
        before = len(self.fake.messages_to(self.msisdn))
        response = self.client.post(
            "/sms/africastalking" + (f"?token={self.token}" if self.token else ""),
            data={"from": self.msisdn, "to": self.short_code, "text": text, "date": "2026-11-26 10:00:00",
                  "id": self.last_id, "linkId": "SampleLinkId123", "networkCode": "99999"})
        self.last_status = response.status_code
        return self.fake.messages_to(self.msisdn)[before:]

    def say(self, text: str) -> str:
        """The one reply to ``text``."""
        replies = self.send(text)
        assert len(replies) == 1, replies
        return replies[0]
