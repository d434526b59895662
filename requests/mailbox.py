"""The demo's outbox: with no EMAIL_HOST, mail is kept for staff instead of being sent or logged.

Messages carry codes, links and addresses, so they never go to a log: `DatabaseEmailBackend`
stores them encrypted in the portal's database, and staff read them on the console's Mail page
(`/staff/mail/`), decoded. Only the last KEEP_FOR of mail is kept.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from requests.models import DemoMail

log = logging.getLogger(__name__)

KEEP_FOR = timedelta(days=7)


def _body(message) -> str:
    """The plain-text body, decoded; an HTML-only message shows its HTML source."""
    if message.body:
        return str(message.body)
    for content, mimetype in getattr(message, "alternatives", []) or []:
        if mimetype == "text/plain":
            return str(content)
    return ""


class DatabaseEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        stored = 0
        for message in email_messages:
            DemoMail.objects.create(
                content={
                    "from": str(message.from_email),
                    "to": [str(address) for address in message.recipients()],
                    "subject": str(message.subject),
                    "body": _body(message),
                }
            )
            stored += 1
        if stored:
            DemoMail.objects.filter(sent_at__lt=timezone.now() - KEEP_FOR).delete()
            # Counts only: the messages themselves are for staff eyes on the Mail page.
            log.info("%d message(s) kept for the staff console's Mail page", stored)
        return stored


BACKEND = "requests.mailbox.DatabaseEmailBackend"


def mailbox_is_demo() -> bool:
    return settings.EMAIL_BACKEND == BACKEND
