"""Jobs: the work of an approved request in each connected store.

The database is the source of truth. A job moves queued -> running -> done (or waiting, or
failed) only through these functions; workers claim a job with a conditional UPDATE and hold a
lease they renew while working, so a second delivery of a task does nothing and a job whose
worker died is taken up again once its lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from requests.models import ConnectedStore, DataRequest, Job, JobState, StoreKind
from requests.models.jobs import OPEN_JOB_STATES
from requests.queueing import enqueue
from requests.services.audit import SYSTEM, audit_record
from requests.services.errors import NotFound, ServiceError, TransitionNotAllowed
from requests.states import Kind, Status

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    """What an executor reports: counts per collection, and why the job waits, if it does."""

    counts: dict = field(default_factory=dict)
    waiting_reason: str = ""


# What a job of a kind does in its store (`requests.services.processing.EXECUTORS`).
Executor = Callable[[Job], JobOutcome]
# Returns details for the completion event, or raises ServiceError to flag the request for staff.
Finaliser = Callable[[DataRequest], dict]


def _enqueue_job(job: Job) -> None:
    countdown = 0.0
    if job.not_before is not None:
        countdown = max(0.0, (job.not_before - timezone.now()).total_seconds())
    enqueue("job_run", job.pk, queue=job.store.queue or None, countdown=countdown)


def jobs_create_for_request(*, request: DataRequest) -> list[Job]:
    """One job per enabled store, queued on commit. Runs inside the approval's transaction."""
    jobs = []
    for store in ConnectedStore.objects.filter(enabled=True).order_by("name"):
        job, created = Job.objects.get_or_create(request=request, store=store, kind=request.kind)
        if created:
            jobs.append(job)
    for job in jobs:
        _enqueue_job(job)
    return jobs


def job_claim(*, job_id: int) -> Job | None:
    """Take a job for this worker; None when another worker holds it or it is finished."""
    now = timezone.now()
    claimable = Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, lease_expires_at__lt=now)
    claimed = (
        Job.objects.filter(claimable, pk=job_id)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(request__status=Status.PROCESSING)
        .update(
            state=JobState.RUNNING,
            attempts=F("attempts") + 1,
            lease_expires_at=now + settings.PORTAL_JOB_LEASE,
            started_at=now,
            error="",
        )
    )
    if claimed != 1:
        return None
    return Job.objects.select_related("request", "store").get(pk=job_id)


def job_renew_lease(*, job: Job) -> bool:
    """Called between batches; False means the job was taken away (its lease ran out)."""
    renewed = Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
        lease_expires_at=timezone.now() + settings.PORTAL_JOB_LEASE
    )
    return renewed == 1


@transaction.atomic
def job_finish(*, job: Job, counts: dict, waiting_reason: str = "") -> bool:
    """Record a job's result. False if the job is no longer this worker's to finish."""
    state = JobState.WAITING if waiting_reason else JobState.DONE
    finished = Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
        state=state,
        counts=counts,
        error=waiting_reason,
        finished_at=None if waiting_reason else timezone.now(),
        lease_expires_at=None,
    )
    if finished != 1:
        return False
    audit_record(
        action="job.waiting" if waiting_reason else "job.done",
        actor=SYSTEM,
        request=job.request,
        details={"store": job.store.name, "kind": job.kind, "counts": counts},
    )
    _advance_on_commit(job.request_id)
    return True


@transaction.atomic
def job_retry_later(*, job: Job, reason: str) -> bool:
    """A transient failure: queue the job again after a backoff, or fail it past the cap."""
    if job.attempts >= settings.PORTAL_JOB_MAX_ATTEMPTS:
        return job_fail(job=job, reason=f"{reason} (gave up after {job.attempts} attempts)")
    delay = min(
        settings.PORTAL_JOB_RETRY_BASE * (2 ** (job.attempts - 1)), settings.PORTAL_JOB_RETRY_MAX
    )
    not_before = timezone.now() + timedelta(seconds=delay)
    updated = Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
        state=JobState.QUEUED, error=reason, not_before=not_before, lease_expires_at=None
    )
    if updated != 1:
        return False
    audit_record(
        action="job.retry_scheduled",
        actor=SYSTEM,
        request=job.request,
        details={"store": job.store.name, "attempt": job.attempts, "in_seconds": delay},
    )
    job.not_before = not_before
    _enqueue_job(job)
    return True


@transaction.atomic
def job_fail(*, job: Job, reason: str) -> bool:
    """A permanent failure: the request needs staff, who see the reason and can retry."""
    from requests.services.lifecycle import request_flag_attention

    failed = Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
        state=JobState.FAILED, error=reason, finished_at=timezone.now(), lease_expires_at=None
    )
    if failed != 1:
        return False
    audit_record(
        action="job.failed",
        actor=SYSTEM,
        request=job.request,
        details={"store": job.store.name, "kind": job.kind, "reason": reason},
    )
    request = DataRequest.objects.select_for_update().get(pk=job.request_id)
    if request.status == Status.PROCESSING:
        request_flag_attention(request=request, reason=f"{job.store.name}: {reason}")
    return True


@transaction.atomic
def request_retry_failed_jobs(*, request: DataRequest, actor: str) -> DataRequest:
    """Staff retry: failed jobs are queued again and the request goes back to processing."""
    from requests.services.lifecycle import _transition

    locked = DataRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != Status.NEEDS_ATTENTION:
        raise TransitionNotAllowed("Only a request that needs attention can be retried.")
    failed = list(Job.objects.filter(request=locked, state=JobState.FAILED).select_related("store"))
    if not failed:
        if locked.jobs.filter(state__in=OPEN_JOB_STATES).exists():
            raise ServiceError(
                "No failed job to retry; the request waits for jobs still open.",
                code="nothing_to_retry",
            )
        # Every job is done: what failed came after them (building the package, the sweep).
        # Going back to processing runs that last step again.
        updated = _transition(
            locked,
            to=Status.PROCESSING,
            actor=actor,
            action="request.retried",
            details={"jobs": 0},
            attention_reason="",
        )
        _advance_on_commit(updated.pk)
        return updated
    Job.objects.filter(pk__in=[j.pk for j in failed]).update(
        state=JobState.QUEUED, attempts=0, error="", not_before=None, finished_at=None
    )
    updated = _transition(
        locked,
        to=Status.PROCESSING,
        actor=actor,
        action="request.retried",
        details={"jobs": len(failed)},
        attention_reason="",
    )
    for job in failed:
        job.not_before = None
        _enqueue_job(job)
    return updated


# A staff note on a manual job: what was done in the system (it may name the person).
MAX_NOTE_LENGTH = 5000


@transaction.atomic
def job_confirm_manual(*, request: DataRequest, store_name: str, actor: str, note: str) -> Job:
    """Staff confirm a manual store's job by hand: an access copy sent, an erasure done.

    The note says what was done; it is kept on the job for staff (and shown to the person in the
    access report), never written to the audit trail or an erasure certificate (it may name the
    person). A request that needs attention only because a task was overdue goes back to
    processing once it is confirmed (it stays for staff while a job has failed)."""
    from requests.services.lifecycle import _transition

    note = (note or "").strip()
    if not note:
        raise ServiceError("Say what was done in this system.", field="note")
    if len(note) > MAX_NOTE_LENGTH:
        raise ServiceError(f"At most {MAX_NOTE_LENGTH} characters.", field="note")
    locked = DataRequest.objects.select_for_update().get(pk=request.pk)
    job = (
        Job.objects.select_for_update()
        .select_related("store", "request")
        .filter(request=locked, store__name=store_name)
        .first()
    )
    if job is None:
        raise NotFound("This request has no job for a store of that name.")
    if job.store.kind != StoreKind.MANUAL:
        raise ServiceError(
            "Only jobs of manual stores are confirmed by hand; this store is searched by the "
            "portal.",
            code="not_manual",
        )
    if locked.status not in (Status.PROCESSING, Status.NEEDS_ATTENTION):
        raise TransitionNotAllowed(f"The request is {locked.status}, not processing.")
    if job.state != JobState.WAITING or job.attempts == 0:
        raise TransitionNotAllowed(f"This job is {job.state}, not waiting for confirmation.")
    now = timezone.now()
    job.state = JobState.DONE
    job.counts = {
        **(job.counts or {}),
        "confirmed_by": actor,
        "confirmed_at": now.isoformat(),
        "note": note,
    }
    job.error = ""
    job.finished_at = now
    job.save(update_fields=["state", "counts", "error", "finished_at", "updated_at"])
    audit_record(
        action="job.confirmed",
        actor=actor,
        request=locked,
        details={"store": job.store.name, "kind": job.kind},
    )
    if (
        locked.status == Status.NEEDS_ATTENTION
        and not Job.objects.filter(request=locked, state=JobState.FAILED).exists()
    ):
        _transition(
            locked,
            to=Status.PROCESSING,
            actor=actor,
            action="request.resumed",
            details={"confirmed": job.store.name},
            attention_reason="",
        )
        for queued in Job.objects.filter(request=locked, state=JobState.QUEUED).select_related(
            "store"
        ):
            _enqueue_job(queued)
    _advance_on_commit(locked.pk)
    return job


def _advance_on_commit(request_id: int) -> None:
    enqueue("request_process", request_id)


# The reconciler looks at jobs in pages of this size so a backlog never loads at once.
RECONCILE_BATCH = 500


def jobs_reconcile() -> dict[str, int]:
    """Re-queue jobs the broker lost or whose worker died, and move finished requests on.

    Safe to run at any time and from several schedulers at once: every step is a conditional
    UPDATE or an idempotent task.
    """
    now = timezone.now()
    stale = now - settings.PORTAL_JOB_REQUEUE_AFTER
    requeued = 0
    # Queued jobs whose message has had time to arrive but that nobody started: the broker may
    # have lost it (a Redis restart empties it). A duplicate message is harmless: claims are atomic.
    lost = (
        Job.objects.filter(state=JobState.QUEUED, updated_at__lt=stale)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(request__status=Status.PROCESSING)
        .select_related("store")
        .order_by("pk")[:RECONCILE_BATCH]
    )
    for job in lost:
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(updated_at=now)
        with transaction.atomic():
            _enqueue_job(job)
        requeued += 1
    # Running jobs whose lease ran out: their worker died mid-way.
    expired = (
        Job.objects.filter(state=JobState.RUNNING, lease_expires_at__lt=now)
        .filter(request__status=Status.PROCESSING)
        .select_related("store")
        .order_by("pk")[:RECONCILE_BATCH]
    )
    for job in expired:
        with transaction.atomic():
            _enqueue_job(job)
        requeued += 1
    # Requests whose jobs are all settled but that were not moved on (a lost advance message).
    advanced = 0
    settled = (
        DataRequest.objects.filter(status=Status.PROCESSING, updated_at__lt=stale)
        .exclude(jobs__state__in=[JobState.QUEUED, JobState.RUNNING])
        .values_list("pk", flat=True)[:RECONCILE_BATCH]
    )
    for request_id in settled:
        enqueue("request_process", request_id)
        advanced += 1
    return {"requeued": requeued, "advanced": advanced}


def open_jobs(request: DataRequest):
    return request.jobs.filter(state__in=OPEN_JOB_STATES)


def release_erasures_held_for(*, access_request: DataRequest) -> None:
    """Move on the person's erasures held for this access request (on commit)."""
    if not access_request.subject_key:
        return
    held = (
        DataRequest.objects.filter(
            subject_key=access_request.subject_key,
            kind=Kind.ERASURE,
            status=Status.PROCESSING,
            jobs__state=JobState.WAITING,
            jobs__attempts=0,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    for request_id in held:
        enqueue("request_process", request_id)
