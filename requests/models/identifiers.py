"""Which of a request's identifiers the person proved, and how (identity assurance).

The email is proven by the emailed code or link (`requests.services.verification`), a phone by a
code sent by text message (`requests.services.identifiers`), and any identifier by staff who saw
proof (a note says what). An identifier with no row here, or a row that is not `verified`, was
only typed: it is never searched on its own (see `requests.assurance.searchable_identity`).
"""

from __future__ import annotations

from django.db import models

from requests.crypto import EncryptedTextField


class IdentifierState(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    # A code was sent (a phone's text message) and not yet typed back.
    CODE_SENT = "code_sent", "Code sent"
    VERIFIED = "verified", "Verified"


class IdentifierMethod(models.TextChoices):
    EMAIL_CODE = "email_code", "Emailed code"
    EMAIL_LINK = "email_link", "Emailed link"
    SMS_CODE = "sms_code", "Text message code"
    STAFF = "staff", "Confirmed by staff"


# A verified identifier stays verified: nothing un-proves what the person proved.
ALLOWED_IDENTIFIER_TRANSITIONS: dict[str, frozenset[str]] = {
    IdentifierState.UNVERIFIED: frozenset({IdentifierState.CODE_SENT, IdentifierState.VERIFIED}),
    IdentifierState.CODE_SENT: frozenset({IdentifierState.CODE_SENT, IdentifierState.VERIFIED}),
    IdentifierState.VERIFIED: frozenset(),
}


class IdentifierVerification(models.Model):
    """One identifier type of one request: whether and how it was proven. Holds no value."""

    request = models.ForeignKey(
        "requests.DataRequest", on_delete=models.CASCADE, related_name="identifier_checks"
    )
    identity_type = models.CharField(max_length=64)
    state = models.CharField(
        max_length=16, choices=IdentifierState.choices, default=IdentifierState.UNVERIFIED
    )
    method = models.CharField(max_length=16, choices=IdentifierMethod.choices, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # "subject" or "staff:<username>".
    verified_by = models.CharField(max_length=150, blank=True)
    # Staff's note of the proof they saw; it may name documents, so it is encrypted at rest,
    # shown to staff only, never audited (only its length is) and emptied with the identity.
    note = EncryptedTextField(blank=True)
    # The text-message code: only its hash is kept, with the same expiry and lock as the email's.
    code_hash = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    sends = models.PositiveSmallIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request", "identity_type"], name="identifier_verification_one_per_type"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=IdentifierState.values),
                name="identifier_verification_state_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(state=IdentifierState.VERIFIED)
                | (~models.Q(method="") & models.Q(verified_at__isnull=False)),
                name="identifier_verification_verified_has_method",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identity_type} of request {self.request_id}: {self.state}"

    @property
    def is_verified(self) -> bool:
        return self.state == IdentifierState.VERIFIED

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None
