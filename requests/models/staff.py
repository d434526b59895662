"""What the portal keeps about staff beyond Django's user: their language, and digest claims."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class StaffProfile(models.Model):
    """A staff member's preferences: the language of their console pages and of the mail the
    portal sends them (the daily digest). Empty: the browser's on pages, the portal's default in
    mail. Set on the users page by a DPO or by the staff member with the console's switcher."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)

    def __str__(self) -> str:
        return f"staff profile {self.pk}"


class DigestClaim(models.Model):
    """One row per day whose digest went out: the unique day is the claim, so a beat delivered
    twice (or two schedulers) sends one digest. Made in the transaction that sends; a failed send
    rolls it back and the day's digest can be sent again."""

    day = models.DateField(unique=True)
    claimed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"digest claim {self.day}"
