"""Appending to and checking the hash-chained audit trail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from requests.models import AuditChainHead, AuditEvent, DataRequest
from requests.models.audit import GENESIS_HASH

SYSTEM = "system"
SUBJECT = "subject"

# Verification streams the chain in pages of this many events: big enough to keep the number of
# queries small, small enough that a chain of millions never sits in memory.
VERIFY_BATCH = 2000


def actor_for_user(user) -> str:
    return f"staff:{user.get_username()}" if user is not None else SYSTEM


@transaction.atomic
def audit_record(
    *,
    action: str,
    actor: str,
    request: DataRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Details must not hold personal data: ids, counts, states, reasons."""
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(id=1)
    # Round-trip through JSON so the hash is computed over exactly what the database returns.
    clean_details = json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder))
    event = AuditEvent(
        sequence=head.sequence + 1,
        request=request,
        actor=actor,
        action=action,
        created_at=timezone.now(),
        details=clean_details,
        prev_hash=head.hash,
    )
    event.hash = event.compute_hash(request.reference if request else None)
    event.save()
    AuditChainHead.objects.filter(id=1).update(sequence=event.sequence, hash=event.hash)
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_sequence: int | None = None
    problem: str = ""


def audit_verify() -> ChainReport:
    """Walk the chain from the start; name the first event whose link or content does not match."""
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    last_sequence = 0
    while True:
        page = list(
            AuditEvent.objects.filter(sequence__gt=last_sequence)
            .select_related("request")
            .order_by("sequence")[:VERIFY_BATCH]
        )
        if not page:
            break
        for event in page:
            if event.sequence != expected_sequence:
                return ChainReport(
                    False,
                    checked,
                    expected_sequence,
                    f"event #{expected_sequence} is missing (next is #{event.sequence})",
                )
            if event.prev_hash != expected_prev:
                return ChainReport(
                    False, checked, event.sequence, "its link to the previous event does not match"
                )
            reference = event.request.reference if event.request else None
            if event.compute_hash(reference) != event.hash:
                return ChainReport(
                    False, checked, event.sequence, "its content was changed after it was written"
                )
            expected_prev = event.hash
            expected_sequence += 1
            checked += 1
        last_sequence = page[-1].sequence
    head = AuditChainHead.objects.filter(id=1).first()
    if head is not None and head.sequence != checked:
        return ChainReport(
            False,
            checked,
            checked + 1,
            f"the chain ends at #{checked} but its head records #{head.sequence}: "
            "events were removed",
        )
    return ChainReport(True, checked)
