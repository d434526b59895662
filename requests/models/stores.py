from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from requests.crypto import EncryptedTextField


class StoreKind(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"
    REDIS = "redis", "Redis"
    FILES = "files", "File folder"
    WEBHOOK = "webhook", "Downstream service (webhook)"
    MANUAL = "manual", "Manual system"


STORE_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,62}$",
    "Use 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit.",
)


class ConnectedStore(models.Model):
    """A store the portal searches and erases. Its URL is encrypted and never shown back."""

    name = models.CharField(max_length=63, unique=True, validators=[STORE_NAME_VALIDATOR])
    kind = models.CharField(max_length=16, choices=StoreKind.choices)
    url = EncryptedTextField(blank=True)
    # Webhook stores sign every call with this secret (HMAC-SHA256).
    secret = EncryptedTextField(blank=True)
    map_yaml = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    # Celery queue of the workers that can reach this store (a site close to the data).
    queue = models.CharField(max_length=63, blank=True)
    # Non-secret, kind-specific options (e.g. webhook `allow_http`, manual `owner`). Never the
    # portal's own guards (private webhooks, files roots): those come from settings only.
    options = models.JSONField(default=dict, blank=True)
    last_check_ok = models.BooleanField(null=True)
    # A stable code (`ok`, `unavailable`, ...) and a message naming no host, port or path.
    last_check_code = models.CharField(max_length=32, blank=True)
    last_check_message = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Deleted while past requests' jobs still name it: kept (disabled, URL and secret wiped) so
    # their records keep pointing at it; hidden from the API and its name stays taken.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=StoreKind.values), name="store_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name
