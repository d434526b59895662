"""Text messages that carry a phone's verification code, through a pluggable sender.

PORTAL_SMS_SENDER picks one:
- `webhook`: POSTs `{"to", "text", "reference"}` as JSON to the organisation's SMS gateway at
  PORTAL_SMS_WEBHOOK_URL, signed with PORTAL_SMS_WEBHOOK_SECRET exactly as the webhook store
  protocol signs its calls (`X-Portal-Timestamp`, `X-Portal-Signature: sha256=<hex HMAC-SHA256 of
  "<timestamp>.<body>">`, see docs/webhook-protocol.md), so the gateway can refuse forged or
  replayed calls with the same check. Any answer other than 2xx is a failure.
- `console` (the demo's default): keeps the message with the demo's mail, encrypted, for the
  staff console's Mail page (`requests.mailbox`), and in this process's `outbox` (the last
  OUTBOX_SIZE, for tests); the log says only that a message was kept, never the number or code.

A sender is anything with `send(message: SmsMessage) -> None` that raises SmsError on failure;
`register_sender(name, sender)` adds one.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import httpx
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from requests.connectors.webhook import sign

log = logging.getLogger(__name__)

OUTBOX_SIZE = 100
WEBHOOK_TIMEOUT_SECONDS = 10


class SmsError(Exception):
    """The message could not be handed to the gateway (never names the number)."""


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    text: str
    reference: str


class SmsSender(Protocol):
    def send(self, message: SmsMessage) -> None: ...


outbox: deque[SmsMessage] = deque(maxlen=OUTBOX_SIZE)


class ConsoleSender:
    def send(self, message: SmsMessage) -> None:
        from requests.models import DemoMail

        outbox.append(message)
        DemoMail.objects.create(
            content={
                "from": "SMS",
                "to": [message.to],
                "subject": _("Text message (demo: not sent)"),
                "body": message.text,
            }
        )
        log.info("text message kept for the staff console's Mail page (console sender)")


class WebhookSender:
    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret

    def send(self, message: SmsMessage) -> None:
        body = json.dumps(
            {"to": message.to, "text": message.text, "reference": message.reference}
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Portal-Timestamp": timestamp,
            "X-Portal-Signature": sign(self.secret, timestamp, body),
        }
        try:
            response = httpx.post(
                self.url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as exc:
            raise SmsError(f"the SMS gateway could not be reached ({type(exc).__name__})") from None
        if not response.is_success:
            raise SmsError(f"the SMS gateway answered {response.status_code}")


_SENDERS: dict[str, SmsSender] = {}


def register_sender(name: str, sender: SmsSender) -> None:
    _SENDERS[name] = sender


def sender() -> SmsSender:
    name = settings.PORTAL_SMS_SENDER
    if name in _SENDERS:
        return _SENDERS[name]
    if name == "webhook":
        return WebhookSender(settings.PORTAL_SMS_WEBHOOK_URL, settings.PORTAL_SMS_WEBHOOK_SECRET)
    return ConsoleSender()


def send_code(*, to: str, code: str, reference: str, language: str = "en") -> None:
    with translation.override(language):
        text = _("%(organisation)s: your code to confirm this phone number is %(code)s.") % {
            "organisation": settings.PORTAL_ORGANISATION_NAME,
            "code": code,
        }
    sender().send(SmsMessage(to=to, text=text, reference=reference))
