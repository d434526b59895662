from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A staff API key, kept only as its SHA-256 digest: the key itself is shown once, at creation.

    Keys are 256 random bits, so a fast digest is as good as a slow one against guessing, and
    looking a key up by its digest costs one indexed read per API call.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"API token {self.pk} of user {self.user_id}"
