from __future__ import annotations

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

GENESIS_HASH = "0" * 64


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # pragma: no cover - a guard, exercised by tests
        raise TypeError("audit events are append-only")

    def delete(self):
        raise TypeError("audit events are append-only")

    def seal(self, *, pk: int, sequence: int, prev_hash: str, hash: str) -> int:
        """Give one unsealed event its chain position: the only write an event ever gets.

        It matches unsealed rows only, so a sealed event can never be moved or rewritten here.
        """
        unsealed = self.filter(pk=pk, sequence__isnull=True)
        return models.QuerySet.update(unsealed, sequence=sequence, prev_hash=prev_hash, hash=hash)

    def seal_many(self, events: list[AuditEvent]) -> int:
        """Write the chain positions set on `events` (unsealed rows only), in one statement."""

        def by_pk(field: str, output: models.Field) -> models.Case:
            whens = [models.When(pk=e.pk, then=models.Value(getattr(e, field))) for e in events]
            return models.Case(*whens, output_field=output)

        unsealed = self.filter(pk__in=[e.pk for e in events], sequence__isnull=True)
        return models.QuerySet.update(
            unsealed,
            sequence=by_pk("sequence", models.PositiveBigIntegerField()),
            prev_hash=by_pk("prev_hash", models.CharField()),
            hash=by_pk("hash", models.CharField()),
        )


class AuditEvent(models.Model):
    """One entry in the append-only, hash-chained audit trail.

    `hash` covers the previous event's hash and this event's content, so changing or removing any
    event breaks every link after it; `manage.py audit verify` finds the first broken one. Details
    never hold personal data: only ids, counts, states and reasons.

    An event is written "unsealed" (no sequence, prev_hash or hash) in the caller's transaction
    and sealed into the chain just after it commits (see `requests/services/audit.py`). The id is
    the order events were recorded in; `sequence` is their order in the chain.
    """

    sequence = models.PositiveBigIntegerField(unique=True, null=True, blank=True)
    request = models.ForeignKey(
        "requests.DataRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
    )
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    details = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        if self.sequence is None:
            return f"(unsealed) {self.action}"
        return f"#{self.sequence} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit events are append-only")

    def compute_hash(self, request_reference: str | None) -> str:
        payload = json.dumps(
            {
                "sequence": self.sequence,
                "request": request_reference,
                "actor": self.actor,
                "action": self.action,
                "created_at": self.created_at.isoformat(),
                "details": self.details,
            },
            sort_keys=True,
            separators=(",", ":"),
            cls=DjangoJSONEncoder,
        )
        return hashlib.sha256(f"{self.prev_hash}|{payload}".encode()).hexdigest()


class AuditChainHead(models.Model):
    """A single row holding the newest link; sealing locks it so the chain never forks."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single")]

    def __str__(self) -> str:
        return f"audit head #{self.sequence}"
