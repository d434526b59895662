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
