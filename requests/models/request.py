from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from requests import clock
from requests.crypto import EncryptedJSONField
from requests.states import TERMINAL, Kind, RejectionReason, Status

# 15 random bytes in URL-safe base64: 120 bits, unguessable, 20 characters.
REFERENCE_BYTES = 15


def new_reference() -> str:
    return secrets.token_urlsafe(REFERENCE_BYTES)


class Source(models.TextChoices):
    PUBLIC = "public", "Public page"
    API = "api", "API"
    STAFF = "staff", "Staff"


class DataRequest(models.Model):
    """One data subject request. Its status changes only through `requests.services.lifecycle`."""

    reference = models.CharField(max_length=32, unique=True, default=new_reference, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.AWAITING_VERIFICATION, db_index=True
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.PUBLIC)
    language = models.CharField(max_length=8, default="en")
    # The identity the person gave ({"email": ..., "phone": ..., ...}), encrypted at rest and
    # emptied when an unverified request expires.
    identity = EncryptedJSONField(default=dict, blank=True)
    # A keyed hash of the normalised email: finds a person's earlier requests without decrypting.
    subject_key = models.CharField(max_length=64, blank=True, db_index=True)

    received_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    clock_started_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True, db_index=True)
    extension_months = models.PositiveSmallIntegerField(default=0)
    extension_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the identity above was emptied (expiry, or the retention period after closing).
    identity_purged_at = models.DateTimeField(null=True, blank=True)

    # The staff member handling the request (a DPO or reviewer); set through
    # `requests.services.assignment`, audited.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_requests",
    )
    rejection_reason = models.CharField(max_length=32, choices=RejectionReason.choices, blank=True)
    staff_message = models.TextField(blank=True)
    attention_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_on", "received_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=Kind.values), name="datarequest_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="datarequest_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(extension_months__lte=clock.MAX_EXTENSION_MONTHS),
                name="datarequest_extension_at_most_two_months",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=Status.REJECTED) | ~models.Q(rejection_reason=""),
                name="datarequest_rejection_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} request {self.reference}"

    @property
    def is_closed(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_overdue(self) -> bool:
        return not self.is_closed and clock.is_overdue(self.due_on, today=clock.today())

    @property
    def is_due_soon(self) -> bool:
        return not self.is_closed and clock.is_due_soon(self.due_on, today=clock.today())

    @property
    def email(self) -> str:
        return (self.identity or {}).get("email", "")

    def status_token(self) -> str:
        """The secret in the person's private status link; derived, so nothing is stored."""
        return salted_hmac("status-link", self.reference, secret=settings.SECRET_KEY).hexdigest()[
            :32
        ]

    def status_url(self) -> str:
        from django.urls import reverse

        path = reverse("request-status", args=[self.reference, self.status_token()])
        return f"{settings.PORTAL_BASE_URL}{path}"
