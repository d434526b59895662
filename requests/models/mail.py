from __future__ import annotations

from django.db import models
from django.utils import timezone

from requests.crypto import EncryptedJSONField


class DemoMail(models.Model):
    """A message the demo would have sent (no EMAIL_HOST): shown to staff, never logged.

    Sender, recipients, subject and body are encrypted at rest like identity data; messages are
    deleted after `requests.mailbox.KEEP_FOR`."""

    sent_at = models.DateTimeField(default=timezone.now, db_index=True)
    content = EncryptedJSONField()

    class Meta:
        ordering = ["-sent_at", "-pk"]

    def __str__(self) -> str:
        return f"demo mail {self.pk}"


class SubjectNotice(models.Model):
    """An email owed to the person about their request (rejected, extended, completed, ...).

    Made with the change it tells of, in the same transaction. The sending task claims it for
    PORTAL_MAIL_SEND_LEASE before it sends and marks it sent after, so a message delivered twice
    sends one email; a claim whose worker died runs out and the notice is sent again."""

    request = models.ForeignKey(
        "requests.DataRequest", on_delete=models.CASCADE, related_name="notices"
    )
    event = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.event} notice {self.pk}"
