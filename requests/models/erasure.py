from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class ErasureCertificate(models.Model):
    """The record of what an erasure did, issued once its verification sweep found nothing left.

    `content` holds stores, collections and counts (deleted, masked, nullified, held with their
    legal basis, kept with the reason), times, recipients told (Art. 19) and the sweep's result:
    never personal data, not even the email. `sha256` is the digest of its canonical JSON; the
    request's `request.completed` audit event carries the same digest, so the hash-chained audit
    trail vouches for the certificate (the event's hash is the chain hash at completion).
    """

    request = models.OneToOneField(
        "requests.DataRequest", on_delete=models.PROTECT, related_name="erasure_certificate"
    )
    issued_at = models.DateTimeField(default=timezone.now)
    content = models.JSONField(encoder=DjangoJSONEncoder)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"erasure certificate of request {self.request_id}"


class SuppressionEntry(models.Model):
    """One erased identifier, kept only as a keyed hash so that a restored backup can be erased
    again (`manage.py erasures reapply`) without the portal keeping the identifier itself.

    `value_hash` is `keyed_hash(normal form, purpose="suppression:<type>")` under PORTAL_HASH_KEY:
    without the key it cannot be reversed or matched. Only identifiers that single out one person
    are kept (email, phone, account id and custom types; never names).
    """

    identity_type = models.CharField(max_length=64)
    value_hash = models.CharField(max_length=64)
    request = models.ForeignKey(
        "requests.DataRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="suppressions",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The last time `erasures reapply` found and erased this identifier's records again.
    last_reapplied_at = models.DateTimeField(null=True, blank=True)
    reapplied = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["identity_type", "value_hash"], name="suppression_one_per_identifier"
            )
        ]

    def __str__(self) -> str:
        return f"suppressed {self.identity_type} {self.value_hash[:12]}"
