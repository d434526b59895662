from __future__ import annotations

from django.db import models
from django.utils import timezone

from requests.crypto import EncryptedTextField


class SubjectReply(models.Model):
    """The person's answer, from their status page, to staff asking for more information.

    Its text may hold anything the person chose to write (a document number, an address), so it
    is encrypted at rest like identity data; the audit trail records only its length."""

    request = models.ForeignKey(
        "requests.DataRequest", on_delete=models.CASCADE, related_name="subject_replies"
    )
    received_at = models.DateTimeField(default=timezone.now)
    # What staff had asked, kept beside the answer: a later question replaces the request's
    # staff_message, and the reply must still read against its own question.
    question = EncryptedTextField(blank=True)
    body = EncryptedTextField()

    class Meta:
        ordering = ["received_at", "pk"]

    def __str__(self) -> str:
        return f"reply {self.pk} to request {self.request_id}"
