from __future__ import annotations

from django.db import models
from django.utils import timezone


class AccessPackage(models.Model):
    """The ZIP answering an access request: where it is, its checksum, and how long it is kept.

    The file lives under PORTAL_DATA_DIR/packages/<reference>/; after `expires_at` a scheduled
    task deletes it and sets `deleted_at` (the row stays, as the record that it existed).
    """

    request = models.OneToOneField(
        "requests.DataRequest", on_delete=models.PROTECT, related_name="package"
    )
    # Relative to PORTAL_DATA_DIR, so the data directory can move.
    path = models.CharField(max_length=500)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    records = models.PositiveBigIntegerField(default=0)
    # {store: {collection: count}}: what the package holds, never the records themselves.
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"package of request {self.request_id}"

    @property
    def is_expired(self) -> bool:
        return self.deleted_at is not None or timezone.now() >= self.expires_at

    @property
    def is_available(self) -> bool:
        return not self.is_expired


class DownloadCode(models.Model):
    """One single-use code the person asked for to download their package.

    Only a keyed hash of the code is stored. The row is created when the person asks; the send
    task claims it (`send_pending` true -> false), mints the code and emails it, so a task
    delivered twice sends one code. Only the newest code of a package can open it.
    """

    package = models.ForeignKey(AccessPackage, on_delete=models.CASCADE, related_name="codes")
    created_at = models.DateTimeField(default=timezone.now)
    send_pending = models.BooleanField(default=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    code_hash = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"download code {self.pk} of package {self.package_id}"
