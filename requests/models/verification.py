from __future__ import annotations

from django.db import models
from django.utils import timezone


class IdentityVerification(models.Model):
    """The email check for one request. Only hashes of the code and link token are stored."""

    request = models.OneToOneField(
        "requests.DataRequest", on_delete=models.CASCADE, related_name="verification"
    )
    code_hash = models.CharField(max_length=64, blank=True)
    link_hash = models.CharField(max_length=64, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # A new code is owed to the person. The flag is cleared only once the email went out, so a
    # task that dies or hits a database error leaves it owed, and the reconciler sends it again.
    send_pending = models.BooleanField(default=True)
    # A send task holds the owed email until then (a lease, so a dead task does not hold it).
    send_claimed_until = models.DateTimeField(null=True, blank=True)
    # When a send task was last queued; the reconciler queues another if it is still owed later.
    send_queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    sends = models.PositiveSmallIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"verification of request {self.request_id}"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None
