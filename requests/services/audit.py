"""Appending to, sealing and checking the hash-chained audit trail.

Recording and sealing are two steps, so that no request's transaction holds the chain's lock and
no request pays for the sealing:

- `audit_record` inserts the event in the caller's transaction *unsealed*: no sequence, no
  prev_hash, no hash. Recording locks nothing shared, so filings on different web workers never
  wait for each other (before, every filing held the chain head's row lock from its read until its
  commit, which serialised intake).
- `audit_seal_pending` seals: in its own short transaction it locks the chain head and gives every
  pending event, in the order they were recorded (id), the next sequence number and the hash of
  the previous link, written back in one statement: one pass seals everything pending (group
  commit).
- Who seals, and when. After each commit that recorded events, the sealing task
  (`audit_seal_pending`) is queued to run PORTAL_AUDIT_SEAL_DELAY seconds later, unless one is
  due already: every commit made before the queued task runs is covered by it. Processes share
  that knowledge through a claim in the cache's Redis (each process keeps its own without it), so
  a busy portal queues about one sealing a second however many requests it answers, and the
  Celery worker seals them in batches. With the delay at 0 the committing process seals at once
  itself (a request that finds the head locked leaves its events to the process holding it,
  which looks again after releasing it). Either way the sealing never raises into the request. The
  `audit-seal-pending` beat task seals leftovers (a process that died between its commit and
  queuing the sealing, a lost task), `audit verify` seals before it checks, and a certificate
  seals before it names its completion event.
- A sealed event is never written again (`AuditEventQuerySet.seal_many` touches unsealed rows
  only); events still cannot be updated or deleted through the application.

Tamper evidence. Once sealed, an event is covered exactly as before: changing or removing it breaks
its link, and removing the newest events disagrees with the head. An unsealed event is not yet
covered: in the window between its transaction's commit and its sealing (normally the delay plus
the time the task waits for a worker, at most one beat interval, PORTAL_AUDIT_SEAL_SECONDS, when
the task is lost) someone with write access to the database could change or delete it without
`audit verify` noticing. The chain order is the order events were sealed, which can differ from
the recorded order (id) between transactions that commit out of order; within one request's
history the recorded order is what the timeline shows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from requests.cache_redis import claim_due
from requests.models import AuditChainHead, AuditEvent, DataRequest
from requests.models.audit import GENESIS_HASH
from requests.queueing import enqueue

SYSTEM = "system"
SUBJECT = "subject"

# Verification streams the chain in pages of this many events: big enough to keep the number of
# queries small, small enough that a chain of millions never sits in memory.
VERIFY_BATCH = 2000
# One sealing transaction seals at most this many events, so the head's lock is held briefly even
# after a long outage left many behind; the beat task runs several passes.
SEAL_BATCH = 500
# How many sealing passes a committing request makes at most (see audit_seal_after_commit).
AFTER_COMMIT_PASSES = 5

logger = logging.getLogger(__name__)

# Until when (time.monotonic) a sealing task this process queued, or learnt another process
# queued, has not started yet, so it will seal whatever this process commits meanwhile. Per
# process: gunicorn's and Celery's workers are processes; threads racing here queue one task too
# many at worst.
_sealing_queued_until = 0.0
# The cache key that says a sealing task is queued and not started yet, for as long as it lives.
SEALING_DUE_KEY = "audit:sealing-due"


def actor_for_user(user) -> str:
    return f"staff:{user.get_username()}" if user is not None else SYSTEM


@transaction.atomic(savepoint=False)
def audit_record(
    *,
    action: str,
    actor: str,
    request: DataRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one event, unsealed; it is sealed into the chain once this transaction commits.

    Details must not hold personal data: ids, counts, states, reasons.
    """
    # Round-trip through JSON so the hash is computed over exactly what the database returns.
    clean_details = json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder))
    event = AuditEvent(
        request=request,
        actor=actor,
        action=action,
        created_at=timezone.now(),
        details=clean_details,
    )
    event.save()
    transaction.on_commit(audit_seal_soon, robust=True)
    return event


def audit_seal_soon() -> None:
    """After a commit that recorded events: have them sealed, without making the caller wait.

    Queues the sealing task to run PORTAL_AUDIT_SEAL_DELAY seconds from now unless one that has
    not started yet was queued, by this process or (with the cache on Redis) any other: it will
    find this commit's events, as they committed before it runs. So the web and Celery workers
    together queue about one sealing per delay. With the delay at 0, seals in this process at
    once.
    """
    global _sealing_queued_until
    delay = settings.PORTAL_AUDIT_SEAL_DELAY
    if delay <= 0:
        audit_seal_after_commit()
        return
    now = time.monotonic()
    if now < _sealing_queued_until:
        return
    try:
        due_in = _sealing_due_elsewhere(delay)
        if due_in > 0:
            _sealing_queued_until = now + due_in
            return
        enqueue("audit_seal_pending", countdown=delay)
    except Exception:  # the request already committed; its events can wait for the beat task
        logger.warning("could not queue the audit sealing; the beat task will seal the events")
        return
    _sealing_queued_until = now + delay


def _sealing_due_elsewhere(delay: float) -> float:
    """In how many seconds a sealing task another process queued starts; 0 when none is due, and
    then this process has claimed queuing the next one. One round trip to the cache's Redis;
    without Redis, always 0 (each process queues its own).

    The claim lives exactly as long as the task's countdown and is made before the task is
    queued, so while it lives the task has not started. A process that dies between the two
    leaves the events to the beat task.
    """
    return claim_due(SEALING_DUE_KEY, delay)


def audit_seal_after_commit() -> None:
    """Seal what the committed transaction recorded; a failure leaves it to the beat task.

    It does not queue for the head's lock: when another process holds it, that process is sealing
    and looks again for pending events after releasing it, and this transaction committed before
    it tried, so that second look finds its events. Bounded passes keep one request's share short
    under constant load; whatever is left then goes with the next commit or the beat task.
    """
    try:
        for _ in range(AFTER_COMMIT_PASSES):
            if not AuditEvent.objects.filter(sequence__isnull=True).exists():
                return
            if audit_seal_pending(wait=False) is None:
                return
    except Exception:  # the request already committed; its events can wait for the beat task
        logger.warning("audit events left unsealed after commit; the beat task will seal them")


def audit_seal_pending(*, limit: int = SEAL_BATCH, wait: bool = True) -> int | None:
    """Seal up to `limit` pending events in recorded order, in one short transaction; how many.

    With `wait=False`, None when another process holds the chain head (it is sealing already).
    """
    AuditChainHead.objects.get_or_create(id=1)
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update(skip_locked=not wait).filter(id=1).first()
        if head is None:
            return None
        pending = list(
            AuditEvent.objects.filter(sequence__isnull=True)
            .select_related("request")
            .order_by("id")[:limit]
        )
        sequence, link = head.sequence, head.hash
        for event in pending:
            event.sequence, event.prev_hash = sequence + 1, link
            event.hash = event.compute_hash(event.request.reference if event.request else None)
            sequence, link = event.sequence, event.hash
        if pending:
            AuditEvent.objects.seal_many(pending)
            AuditChainHead.objects.filter(id=1).update(sequence=sequence, hash=link)
        return len(pending)


def audit_seal_all(*, max_batches: int | None = None) -> int:
    """Seal pending events batch by batch until none are left (or `max_batches` ran)."""
    sealed = batches = 0
    while max_batches is None or batches < max_batches:
        count = audit_seal_pending() or 0
        sealed += count
        batches += 1
        # Stop only on an empty pass: whoever found the head locked meanwhile relies on this look.
        if count == 0:
            break
    return sealed


def audit_event_sealed(event: AuditEvent) -> AuditEvent:
    """The event with its chain position, sealing what is pending first if it has none yet."""
    if event.sequence is None:
        audit_seal_all()
        event.refresh_from_db()
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_sequence: int | None = None
    problem: str = ""


def audit_verify(*, seal: bool = True) -> ChainReport:
    """Walk the chain from the start; name the first event whose link or content does not match.

    Pending events are sealed first (with `seal`), so the whole recorded trail is checked.
    """
    if seal:
        audit_seal_all()
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
