"""Internal notes staff keep on a request: for staff eyes only, never shown to the person."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from requests.crypto import EncryptedTextField


class RequestNote(models.Model):
    """One note. Written only through `requests.services.notes.note_add`, which audits it (its
    length, never its text) and never changed afterwards."""

    request = models.ForeignKey(
        "requests.DataRequest", on_delete=models.CASCADE, related_name="notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # The audit actor ("staff:<username>"), kept so the note still names its author if the
    # account is deleted.
    actor = models.CharField(max_length=150)
    # Free text about the person's case: it may name them, so it is encrypted at rest.
    text = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"note {self.pk} on request {self.request_id}"
